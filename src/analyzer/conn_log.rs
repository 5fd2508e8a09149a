//! conn.log: its schema and Zeek's `conn_state` decision, kept as pure functions so the
//! rules can be tested without packets.

use std::net::IpAddr;

use super::flow::tcp::EndpointState;
use super::log::{field, LogSchema, LogSink, Value};

pub static CONN_SCHEMA: LogSchema = LogSchema {
    path: "conn",
    fields: &[
        field("ts", "time"),
        field("uid", "string"),
        field("id.orig_h", "addr"),
        field("id.orig_p", "port"),
        field("id.resp_h", "addr"),
        field("id.resp_p", "port"),
        field("proto", "enum"),
        field("service", "string"),
        field("duration", "interval"),
        field("orig_bytes", "count"),
        field("resp_bytes", "count"),
        field("conn_state", "string"),
        field("local_orig", "bool"),
        field("local_resp", "bool"),
        field("missed_bytes", "count"),
        field("history", "string"),
        field("orig_pkts", "count"),
        field("orig_ip_bytes", "count"),
        field("resp_pkts", "count"),
        field("resp_ip_bytes", "count"),
        field("tunnel_parents", "set[string]"),
        field("ip_proto", "count"),
    ],
};

/// A connection as conn.log reports it, handed over by the flow table when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnSummary<'a> {
    /// First packet, seconds since the epoch.
    pub ts: f64,
    pub uid: &'a str,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    /// `tcp`, `udp` or `icmp`.
    pub proto: &'static str,
    pub service: Option<&'static str>,
    /// Unset (with the byte counts) when the connection lasted no time.
    pub duration: Option<ConnDuration>,
    pub conn_state: &'static str,
    pub missed_bytes: u64,
    /// Empty = unset.
    pub history: &'a str,
    pub orig_pkts: u64,
    pub orig_ip_bytes: u64,
    pub resp_pkts: u64,
    pub resp_ip_bytes: u64,
    pub ip_proto: u8,
}

/// conn.log's `duration`, `orig_bytes` and `resp_bytes`, which are set or unset together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnDuration {
    pub seconds: f64,
    pub orig_bytes: u64,
    pub resp_bytes: u64,
}

impl ConnSummary<'_> {
    /// Writes the conn.log line.
    pub fn write(&self, sink: &mut dyn LogSink) {
        let d = self.duration;
        sink.write(
            &CONN_SCHEMA,
            vec![
                Value::Time(self.ts),
                self.uid.into(),
                Value::Addr(self.orig_h),
                Value::Port(self.orig_p),
                Value::Addr(self.resp_h),
                Value::Port(self.resp_p),
                Value::Enum(self.proto),
                self.service.map_or(Value::Unset, Value::from),
                d.map_or(Value::Unset, |d| Value::Interval(d.seconds)),
                d.map_or(Value::Unset, |d| Value::Count(d.orig_bytes)),
                d.map_or(Value::Unset, |d| Value::Count(d.resp_bytes)),
                self.conn_state.into(),
                Value::Unset,
                Value::Unset,
                Value::Count(self.missed_bytes),
                if self.history.is_empty() {
                    Value::Unset
                } else {
                    self.history.into()
                },
                Value::Count(self.orig_pkts),
                Value::Count(self.orig_ip_bytes),
                Value::Count(self.resp_pkts),
                Value::Count(self.resp_ip_bytes),
                Value::Unset,
                Value::Count(u64::from(self.ip_proto)),
            ],
        );
    }
}

/// TCP `conn_state` from both endpoint states and the history string.
pub fn tcp_conn_state(
    os: EndpointState,
    rs: EndpointState,
    orig_size: u64,
    resp_size: u64,
    history: &str,
) -> &'static str {
    use EndpointState::*;
    if rs == Reset {
        if matches!(os, SynSent | SynAckSent) || (os == Reset && orig_size == 0 && resp_size == 0) {
            "REJ"
        } else if os.inactive() {
            "RSTRH"
        } else {
            "RSTR"
        }
    } else if os == Reset {
        if rs.inactive() {
            if history_is_syn_then_reset(history) {
                "RSTOS0"
            } else {
                "OTH"
            }
        } else {
            "RSTO"
        }
    } else if rs == Closed && os == Closed {
        "SF"
    } else if os == Closed {
        if rs.inactive() {
            "SH"
        } else {
            "S2"
        }
    } else if rs == Closed {
        if os.inactive() {
            "SHR"
        } else {
            "S3"
        }
    } else if os == SynSent && rs == Inactive {
        "S0"
    } else if os == Established && rs == Established {
        "S1"
    } else {
        "OTH"
    }
}

/// UDP `conn_state`: which sides sent anything.
pub fn udp_conn_state(orig_active: bool, resp_active: bool) -> &'static str {
    match (orig_active, resp_active) {
        (true, true) => "SF",
        (true, false) => "S0",
        (false, true) => "SHR",
        (false, false) => "OTH",
    }
}

/// The whole history matches `^?S[^HAFGIQ]*R.*`: an originator SYN, then nothing that shows
/// an answer or a close from the originator, then an originator reset.
fn history_is_syn_then_reset(history: &str) -> bool {
    let h = history.strip_prefix('^').unwrap_or(history);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::EndpointState::*;
    use super::*;

    #[test]
    fn documented_examples() {
        assert_eq!(tcp_conn_state(SynSent, Reset, 0, 0, "Sr"), "REJ");
        assert_eq!(tcp_conn_state(Reset, Inactive, 0, 0, "SR"), "RSTOS0");
        assert_eq!(tcp_conn_state(Reset, Partial, 0, 0, "SaR"), "RSTOS0");
        assert_eq!(tcp_conn_state(Reset, Inactive, 0, 0, "R"), "OTH");
        assert_eq!(tcp_conn_state(Reset, Partial, 0, 0, "SaFR"), "OTH");
        assert_eq!(tcp_conn_state(Reset, Established, 5, 5, "ShADadfR"), "RSTO");
        assert_eq!(tcp_conn_state(Partial, Reset, 5, 0, "Dr"), "RSTRH");
        assert_eq!(tcp_conn_state(Closed, Reset, 5, 5, "ShADadFr"), "RSTR");
        assert_eq!(tcp_conn_state(Closed, Inactive, 5, 0, "SADF"), "SH");
        assert_eq!(tcp_conn_state(SynSent, Inactive, 5, 0, "SAD"), "S0");
        assert_eq!(tcp_conn_state(Inactive, Closed, 0, 5, "^hdaf"), "SHR");
        assert_eq!(tcp_conn_state(Closed, Closed, 5, 5, "^hADdFaf"), "SF");
        assert_eq!(
            tcp_conn_state(Established, Established, 5, 5, "ShADad"),
            "S1"
        );
        assert_eq!(tcp_conn_state(Inactive, Inactive, 0, 0, "C"), "OTH");
    }

    #[test]
    fn udp_states() {
        assert_eq!(udp_conn_state(true, false), "S0");
        assert_eq!(udp_conn_state(true, true), "SF");
        assert_eq!(udp_conn_state(false, true), "SHR");
        assert_eq!(udp_conn_state(false, false), "OTH");
    }
}
