//! NTP over UDP: parses each datagram and writes one `ntp.log` line per synchronisation
//! message (modes 1-5), as Zeek's `base/protocols/ntp/main.zeek` does.
//!
//! Zeek attaches its NTP analyzer by port (123/udp, no content signature); here the analyzer
//! claims a UDP connection with port 123 whose payload parses as NTP, and confirms `ntp` as
//! its service with the first message. The role flip Zeek's analyzer makes (a server-mode
//! message from the originator, a client-mode one from the responder) changes conn.log's
//! counters in Zeek's particular way, so the flow table applies it
//! (`flow::direction::ntp_mode_says_flip`, `Conn::flip_during_udp_delivery`) before this
//! analyzer sees the message: lines are written with the flipped roles, as Zeek's are.
//!
//! Control (mode 6) and private (mode 7) messages confirm the service but go to
//! `ntp_control.log`/`ntp_private.log` in Zeek, which are not written here.
//!
//! Layout: `parser` reads the wire format, `log` holds the row; this file is the semantics.

mod log;
mod parser;

use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo};
use crate::analyzer::log::{Interval, Time};
pub use log::{NtpRow, NTP_SCHEMA};
use parser::{parse_message, Body, ShortTime, Standard, Timestamp};

/// Zeek's `NTP::ports`.
pub const NTP_PORT: u16 = 123;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: f64 = 2_208_988_800.0;

/// Whether a UDP datagram starts an NTP connection: one of the ports is 123 (Zeek's port
/// registration) and the payload parses as an NTP message.
pub fn looks_like_ntp(conn: &ConnInfo, data: &[u8]) -> bool {
    (conn.resp_p == NTP_PORT || conn.orig_p == NTP_PORT) && parse_message(data).is_ok()
}

/// The NTP analyzer of one connection.
#[derive(Debug, Default)]
pub struct NtpAnalyzer {
    confirmed: bool,
}

impl NtpAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }
}

impl AppAnalyzer for NtpAnalyzer {
    fn service(&self) -> Option<&'static str> {
        self.confirmed.then_some("ntp")
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        _is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        // A datagram Zeek's parser rejects raises no event; there is no weird for it.
        let Ok(msg) = parse_message(data) else {
            return;
        };
        self.confirmed = true;
        let Body::Standard(std) = &msg.body else {
            return;
        };
        let ref_id = reference_id(std);
        out.logs.write(&NtpRow {
            ts: Time(ts),
            id: conn.id(),
            version: msg.version.into(),
            mode: msg.mode.into(),
            stratum: std.stratum.into(),
            poll: Interval(2f64.powi(std.poll.into())),
            precision: Interval(2f64.powi(std.precision.into())),
            root_delay: Interval(short_time(std.root_delay)),
            root_disp: Interval(short_time(std.root_dispersion)),
            ref_id: &ref_id,
            ref_time: Time(timestamp(std.reference)),
            org_time: Time(timestamp(std.origin)),
            rec_time: Time(timestamp(std.receive)),
            xmt_time: Time(timestamp(std.transmit)),
            num_exts: std.extensions,
        });
    }

    fn finish(&mut self, _conn: &ConnInfo, _ts: f64, _out: &mut AppOutput<'_>) {}

    fn logs(&self) -> &'static [&'static str] {
        &["ntp"]
    }
}

/// `ref_id` as Zeek logs it: the kiss code (stratum 0) or reference clock name (stratum 1)
/// as bytes, otherwise the IPv4 address of the reference.
fn reference_id(std: &Standard) -> String {
    let id = std.reference_id;
    match std.stratum {
        0 | 1 => escape_bytes(&id),
        _ => std::net::Ipv4Addr::from(id).to_string(),
    }
}

/// Seconds of a short time, Zeek's way (both halves signed).
fn short_time(t: ShortTime) -> f64 {
    f64::from(t.seconds) + f64::from(t.fraction) / 65536.0
}

/// A timestamp as Unix time; the all-zero timestamp ("unknown") stays 0.
fn timestamp(t: Timestamp) -> f64 {
    if t.seconds == 0 && t.fraction == 0 {
        return 0.0;
    }
    f64::from(t.seconds) - NTP_UNIX_OFFSET + f64::from(t.fraction) / 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::parser::tests::client_request;
    use super::*;
    use crate::analyzer::app::tests::{conn, Driver};
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::OwnedValue;

    #[test]
    fn a_client_request_and_a_server_reply_are_two_lines() {
        let c = conn(Transport::Udp, NTP_PORT);
        let request = client_request();
        assert!(looks_like_ntp(&c, &request));
        assert!(!looks_like_ntp(&conn(Transport::Udp, 5000), &request));
        assert!(!looks_like_ntp(&c, &request[..20]));
        let mut reply = request.clone();
        reply[0] = 0x24; // version 4, mode 4
        reply[1] = 1; // stratum 1: a reference clock name
        reply[12..16].copy_from_slice(b"GPS\0");
        let mut d = Driver::with(NtpAnalyzer::new(), c);
        assert_eq!(d.a.service(), None);
        d.send(10.0, true, &request);
        d.send(10.5, false, &reply);
        d.send(10.6, false, b"\x24short");
        d.finish(11.0);
        assert_eq!(d.a.service(), Some("ntp"));
        let rows = d.sink.of("ntp");
        assert_eq!(rows.len(), 2);
        let r = rows[0];
        assert_eq!(r[0], OwnedValue::Time(10.0));
        assert_eq!(
            &r[6..9],
            &[
                OwnedValue::Count(4),
                OwnedValue::Count(3),
                OwnedValue::Count(0)
            ]
        );
        assert_eq!(r[9], OwnedValue::Interval(64.0));
        assert_eq!(r[10], OwnedValue::Interval(2f64.powi(-23)));
        assert_eq!(r[13], OwnedValue::Str("\\x00\\x00\\x00\\x00".into()));
        // 0xe0a1b2c3.8 seconds after 1900.
        assert_eq!(
            r[17],
            OwnedValue::Time(f64::from(0xe0a1_b2c3u32) - NTP_UNIX_OFFSET + 0.5)
        );
        assert_eq!(r[14], OwnedValue::Time(0.0));
        assert_eq!(rows[1][7], OwnedValue::Count(4));
        assert_eq!(rows[1][13], OwnedValue::Str("GPS\\x00".into()));
    }

    #[test]
    fn secondary_servers_name_their_reference_by_address_and_short_times_are_signed() {
        let mut m = client_request();
        m[1] = 3;
        m[8..12].copy_from_slice(&[0, 1, 0x80, 0]);
        m[12..16].copy_from_slice(&[85, 199, 214, 99]);
        let mut d = Driver::with(NtpAnalyzer::new(), conn(Transport::Udp, NTP_PORT));
        d.send(1.0, true, &m);
        let rows = d.sink.of("ntp");
        assert_eq!(rows[0][12], OwnedValue::Interval(0.5));
        assert_eq!(rows[0][13], OwnedValue::Str("85.199.214.99".into()));
    }
}
