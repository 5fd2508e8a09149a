//! conn.log: its row and schema, and how a [`ConnSummary`] becomes a line. (Zeek's
//! `conn_state` decision is the flow table's: `flow/conn_state.rs`.)
//!
//! `community_id` is the last column, as Zeek's `policy/protocols/conn/community-id-logging`
//! adds it; with `[Analyzer] community_id = false` the line is written through
//! [`CONN_SCHEMA_NO_COMMUNITY_ID`], which is the same schema without that column.

use std::net::IpAddr;

use super::community_id::{community_id_v1, Endpoint};
use super::log::{
    flatten, log_row, width, ConnId, Enum, FieldSpec, Interval, LogRow, LogSchema, LogSink, Set,
    Time, Value,
};

log_row! {
    /// One conn.log line (Zeek's `Conn::Info`, `base/protocols/conn/main.zeek`).
    pub struct ConnRow<'a> => CONN_SCHEMA("conn") {
        ts: Time,
        id: ConnId<'a>,
        proto: Enum,
        service: Option<&'a str>,
        duration: Option<Interval>,
        orig_bytes: Option<u64>,
        resp_bytes: Option<u64>,
        conn_state: &'a str,
        /// No local networks are configured: always unset.
        local_orig: Option<bool>,
        local_resp: Option<bool>,
        missed_bytes: u64,
        history: Option<&'a str>,
        orig_pkts: u64,
        orig_ip_bytes: u64,
        resp_pkts: u64,
        resp_ip_bytes: u64,
        /// Tunnels are not decapsulated: always unset.
        tunnel_parents: Option<Set<'a, &'a str>>,
        ip_proto: u64,
        /// The Community ID v1 of the 5-tuple (`community_id.rs`).
        community_id: Option<&'a str>,
    }
}

/// conn.log's columns with `community_id` (the last one).
const CONN_FIELDS: &[FieldSpec] = &{
    const WIDTH: usize = width(<ConnRow<'static>>::COLUMNS);
    flatten::<WIDTH>(<ConnRow<'static>>::COLUMNS)
};

/// conn.log without `community_id` (`[Analyzer] community_id = false`): Zeek without the
/// community-id-logging script.
pub static CONN_SCHEMA_NO_COMMUNITY_ID: LogSchema = LogSchema {
    path: "conn",
    fields: match CONN_FIELDS.split_last() {
        Some((_, rest)) => rest,
        None => &[],
    },
};

/// A conn.log row written without its last column.
struct WithoutCommunityId<'r, 'a>(&'r ConnRow<'a>);

impl LogRow for WithoutCommunityId<'_, '_> {
    fn schema(&self) -> &'static LogSchema {
        &CONN_SCHEMA_NO_COMMUNITY_ID
    }
    fn for_each_value(&self, out: &mut dyn FnMut(Value<'_>)) {
        let mut left = CONN_SCHEMA_NO_COMMUNITY_ID.fields.len();
        self.0.for_each_value(&mut |v| {
            if left > 0 {
                left -= 1;
                out(v);
            }
        });
    }
}

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
    /// The conn.log row of this connection, borrowing from it.
    pub fn row(&self) -> ConnRow<'_> {
        let d = self.duration;
        ConnRow {
            ts: Time(self.ts),
            id: ConnId {
                uid: self.uid,
                orig_h: self.orig_h,
                orig_p: self.orig_p,
                resp_h: self.resp_h,
                resp_p: self.resp_p,
            },
            proto: Enum(self.proto),
            service: self.service,
            duration: d.map(|d| Interval(d.seconds)),
            orig_bytes: d.map(|d| d.orig_bytes),
            resp_bytes: d.map(|d| d.resp_bytes),
            conn_state: self.conn_state,
            local_orig: None,
            local_resp: None,
            missed_bytes: self.missed_bytes,
            history: (!self.history.is_empty()).then_some(self.history),
            orig_pkts: self.orig_pkts,
            orig_ip_bytes: self.orig_ip_bytes,
            resp_pkts: self.resp_pkts,
            resp_ip_bytes: self.resp_ip_bytes,
            tunnel_parents: None,
            ip_proto: u64::from(self.ip_proto),
            community_id: None,
        }
    }

    /// Writes the conn.log line; `community_id` is the seed of its Community ID, or `None`
    /// for a conn.log without that column.
    pub fn write(&self, sink: &mut dyn LogSink, community_id: Option<u16>) {
        let row = self.row();
        match community_id {
            Some(seed) => {
                let orig = Endpoint {
                    addr: self.orig_h,
                    port: self.orig_p,
                };
                let resp = Endpoint {
                    addr: self.resp_h,
                    port: self.resp_p,
                };
                let id = community_id_v1(seed, self.ip_proto, orig, resp);
                sink.write(&ConnRow {
                    community_id: Some(id.as_str()),
                    ..row
                });
            }
            None => sink.write(&WithoutCommunityId(&row)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::log::tests::{
        assert_fully_set_row_matches_schema, checked_values, OwnedValue,
    };

    fn summary() -> ConnSummary<'static> {
        ConnSummary {
            ts: 10.5,
            uid: "CtestUid",
            orig_h: "10.0.0.1".parse().expect("addr"),
            orig_p: 40000,
            resp_h: "10.0.0.2".parse().expect("addr"),
            resp_p: 80,
            proto: "tcp",
            service: Some("http"),
            duration: Some(ConnDuration {
                seconds: 1.25,
                orig_bytes: 10,
                resp_bytes: 20,
            }),
            conn_state: "SF",
            missed_bytes: 0,
            history: "ShADadFf",
            orig_pkts: 5,
            orig_ip_bytes: 300,
            resp_pkts: 4,
            resp_ip_bytes: 400,
            ip_proto: 6,
        }
    }

    #[test]
    fn conn_row_matches_its_schema() {
        let s = summary();
        let mut row = s.row();
        row.local_orig = Some(false);
        row.local_resp = Some(false);
        row.tunnel_parents = Some(Set(&["CparentUid"]));
        row.community_id = Some("1:wCb3OG7yAFWelaUydu0D+125CLM=");
        assert_fully_set_row_matches_schema(&row);
        let values = checked_values(&s.row());
        assert_eq!(values[6], OwnedValue::Enum("tcp".into()));
        assert_eq!(values[8], OwnedValue::Interval(1.25));
        assert_eq!(values[15], OwnedValue::Str("ShADadFf".into()));
        assert_eq!(values[21], OwnedValue::Count(6));
        let instant = ConnSummary {
            duration: None,
            history: "",
            ..summary()
        };
        let values = checked_values(&instant.row());
        assert_eq!(
            values[8..11],
            [OwnedValue::Unset, OwnedValue::Unset, OwnedValue::Unset]
        );
        assert_eq!(values[15], OwnedValue::Unset);
    }

    #[test]
    fn community_id_is_the_last_column_or_left_out() {
        use crate::analyzer::app::tests::Collect;
        let names = |schema: &LogSchema| schema.fields.iter().map(|f| f.name).collect::<Vec<_>>();
        let with = names(&CONN_SCHEMA);
        let without = names(&CONN_SCHEMA_NO_COMMUNITY_ID);
        assert_eq!(with.last(), Some(&"community_id"));
        assert_eq!(with[..with.len() - 1], without[..]);
        assert_eq!(without.last(), Some(&"ip_proto"));

        let mut sink = Collect::default();
        summary().write(&mut sink, Some(0));
        summary().write(&mut sink, None);
        let rows = sink.of("conn");
        assert_eq!(rows[0].len(), with.len());
        assert_eq!(rows[1].len(), without.len());
        // 10.0.0.1:40000 > 10.0.0.2:80/tcp, per the spec (SHA-1 of seed, addresses, proto, pad, ports).
        assert_eq!(
            rows[0].last(),
            Some(&OwnedValue::Str("1:3k1SoWXs/FltHw2aBCgUTgbDQF4=".into()))
        );
        assert_eq!(rows[0][..without.len()], rows[1][..]);
    }
}
