//! DHCP: one `dhcp.log` line per exchange (a transaction id), aggregated over every
//! connection that carries its messages, as Zeek's `base/protocols/dhcp/main.zeek` does.
//!
//! A [`DhcpAnalyzer`] serves one connection: it parses each datagram and confirms `dhcp` as
//! the connection's service. A DHCP exchange spans connections (a client broadcasts from
//! 0.0.0.0, the server answers by broadcast or unicast), so the messages go to the run's
//! [`Transactions`] (in [`super::SharedState`]), which merges them by transaction id:
//! what the client said (host name, FQDN, client identifier, requested address, its own
//! address when it has one) and what the server said (assigned address, lease, domain,
//! server address). An exchange is written once no message came for 5 s, checked 10 s after
//! it began and every 5 s after that, or after 30 s in all, at 10 connections or 50 messages,
//! or at the end of the capture (Zeek's `join_data` expiry and `zeek_done`).
//!
//! Detection follows Zeek's `dhcp_cookie` signature: a UDP payload with the magic cookie at
//! offset 236, on any port.
//!
//! Layout: `parser` reads the wire format, `consts` holds the message type names, `log` the
//! row; this file is the semantics.

mod consts;
mod log;
mod parser;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo};
use crate::analyzer::log::{Interval, LogSink, Set, Time, Vector};
use consts::message_type_name;
pub use log::{DhcpRow, DHCP_SCHEMA};
pub use parser::has_cookie;
use parser::{fmt_mac, parse_message, Message};

/// An exchange is first checked this long after its first message (`&create_expire`) ...
const FIRST_CHECK_SECS: f64 = 10.0;
/// ... then this often (what `join_data_expiration` returns) ...
const RECHECK_SECS: f64 = 5.0;
/// ... and written once no message came for this long ...
const IDLE_SECS: f64 = 5.0;
/// ... or once it is older than `DHCP::max_txid_watch_time`.
const MAX_WATCH_SECS: f64 = 30.0;
/// `DHCP::max_uids_per_log_entry`.
const MAX_UIDS: usize = 10;
/// `DHCP::max_msg_types_per_log_entry`.
const MAX_MSG_TYPES: usize = 50;
/// `DHCP::max_tracked_transactions`: beyond it the oldest exchange is written early.
const MAX_TRACKED: usize = 100_000;

const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;
/// Option 61's hardware type for Ethernet.
const HWTYPE_ETHERNET: u8 = 1;

/// The DHCP analyzer of one connection.
#[derive(Debug, Default)]
pub struct DhcpAnalyzer {
    confirmed: bool,
}

impl DhcpAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }
}

impl AppAnalyzer for DhcpAnalyzer {
    fn service(&self) -> Option<&'static str> {
        self.confirmed.then_some("dhcp")
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        // Zeek raises no event (and logs no weird) for a message its parser rejects.
        let Ok(msg) = parse_message(data) else {
            return;
        };
        self.confirmed = true;
        if out.logs.wants(DHCP_SCHEMA.path) {
            out.shared.dhcp.message(ts, conn, is_orig, &msg, out.logs);
        }
    }

    fn finish(&mut self, _conn: &ConnInfo, _ts: f64, _out: &mut AppOutput<'_>) {}

    fn logs(&self) -> &'static [&'static str] {
        &["dhcp"]
    }
}

/// One exchange being aggregated (Zeek's `DHCP::Info`).
#[derive(Debug, Default)]
struct Exchange {
    /// Opening order, for writing in a stable order.
    serial: u64,
    ts: f64,
    last_ts: f64,
    /// When the expiry check next looks at it.
    check_at: f64,
    uids: Vec<String>,
    client_addr: Option<IpAddr>,
    server_addr: Option<IpAddr>,
    mac: Option<String>,
    host_name: Option<String>,
    client_fqdn: Option<String>,
    domain: Option<String>,
    requested_addr: Option<IpAddr>,
    assigned_addr: Option<IpAddr>,
    lease_time: Option<f64>,
    client_message: Option<String>,
    server_message: Option<String>,
    msg_types: Vec<Cow<'static, str>>,
    /// The client's `chaddr`, the MAC when nothing better was seen.
    client_chaddr: Option<String>,
}

impl Exchange {
    /// What one message adds (the body of Zeek's `DHCP::aggregate_msgs`).
    fn add(&mut self, ts: f64, conn: &ConnInfo, is_orig: bool, msg: &Message<'_>) {
        let uid = conn.uid.as_str();
        if !self.uids.iter().any(|u| u == uid) {
            self.uids.push(uid.to_owned());
        }
        self.msg_types.push(message_type_name(msg.options.msg_type));
        self.last_ts = ts;
        let o = &msg.options;
        // Messages of a server broadcasting (so the originator) are not the client's.
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let is_client = is_orig
            && (conn.orig_h == unspecified
                || conn.orig_p == CLIENT_PORT
                || conn.resp_p == SERVER_PORT);
        if let Some(message) = o.message {
            let text = Some(escape_bytes(message));
            if is_client {
                self.client_message = text;
            } else {
                self.server_message = text;
            }
        }
        if is_client {
            if conn.orig_h != unspecified && conn.orig_h != IpAddr::V4(Ipv4Addr::BROADCAST) {
                self.client_addr = Some(conn.orig_h);
            }
            if let Some(name) = o.host_name {
                self.host_name = Some(escape_bytes(name));
            }
            if let Some(fqdn) = o.client_fqdn {
                self.client_fqdn = Some(escape_bytes(fqdn));
            }
            match o.client_id {
                Some(id) if id.hwtype == HWTYPE_ETHERNET => self.mac = Some(fmt_mac(id.hwaddr)),
                _ => self.client_chaddr = Some(fmt_mac(msg.chaddr)),
            }
            if let Some(addr) = o.addr_request {
                self.requested_addr = Some(IpAddr::V4(addr));
            }
        } else {
            let assigned = !msg.yiaddr.is_unspecified();
            if assigned {
                // A broadcasting server is the originator; one sending unicast was made the
                // responder by the likely-server-port rule.
                self.server_addr = Some(if is_orig { conn.orig_h } else { conn.resp_h });
            }
            let chaddr = fmt_mac(msg.chaddr);
            if !chaddr.is_empty() && self.mac.is_none() {
                self.mac = Some(chaddr);
            }
            if assigned {
                self.assigned_addr = Some(IpAddr::V4(msg.yiaddr));
            }
            if self.client_addr.is_none() {
                self.client_addr = self.assigned_addr;
            }
            if let Some(domain) = o.domain_name {
                self.domain = Some(escape_bytes(trim_domain(domain)));
            }
            if let Some(lease) = o.lease {
                self.lease_time = Some(f64::from(lease));
            }
        }
    }

    /// Whether it is full enough to be written at once.
    fn is_full(&self) -> bool {
        self.uids.len() >= MAX_UIDS || self.msg_types.len() >= MAX_MSG_TYPES
    }

    fn write(&self, logs: &mut dyn LogSink) {
        let uids: Vec<&str> = self.uids.iter().map(String::as_str).collect();
        let msg_types: Vec<&str> = self.msg_types.iter().map(|t| t.as_ref()).collect();
        let mac = self.mac.as_deref().or(self.client_chaddr.as_deref());
        logs.write(&DhcpRow {
            ts: Time(self.ts),
            uids: Set(&uids),
            client_addr: self.client_addr,
            server_addr: self.server_addr,
            mac,
            host_name: self.host_name.as_deref(),
            client_fqdn: self.client_fqdn.as_deref(),
            domain: self.domain.as_deref(),
            requested_addr: self.requested_addr,
            assigned_addr: self.assigned_addr,
            lease_time: self.lease_time.map(Interval),
            client_message: self.client_message.as_deref(),
            server_message: self.server_message.as_deref(),
            msg_types: Vector(&msg_types),
            duration: Interval(self.last_ts - self.ts),
        });
    }
}

/// Option 15 as Zeek keeps it: cut after the last non-NUL byte, and empty when that byte is
/// the first (a quirk of its loop, kept to log the same).
fn trim_domain(domain: &[u8]) -> &[u8] {
    match domain.iter().rposition(|&b| b != 0) {
        Some(last) if last > 0 => &domain[..=last],
        _ => &[],
    }
}

/// The DHCP exchanges of one run, by transaction id (Zeek's `DHCP::join_data`).
#[derive(Debug)]
pub struct Transactions {
    open: HashMap<u32, Exchange>,
    /// Transaction ids in opening order with their serial (entries of exchanges already
    /// written are skipped), to find the oldest when [`MAX_TRACKED`] is reached.
    order: VecDeque<(u32, u64)>,
    serial: u64,
    /// The earliest `check_at` of the open exchanges.
    next_check: f64,
}

impl Default for Transactions {
    fn default() -> Self {
        Transactions {
            open: HashMap::new(),
            order: VecDeque::new(),
            serial: 0,
            next_check: f64::INFINITY,
        }
    }
}

impl Transactions {
    /// Adds a message seen at capture time `ts` on `conn` to its exchange.
    fn message(
        &mut self,
        ts: f64,
        conn: &ConnInfo,
        is_orig: bool,
        msg: &Message<'_>,
        logs: &mut dyn LogSink,
    ) {
        if !self.open.contains_key(&msg.xid) {
            if self.open.len() >= MAX_TRACKED {
                self.write_oldest(logs);
            }
            self.serial += 1;
            let check_at = ts + FIRST_CHECK_SECS;
            self.next_check = self.next_check.min(check_at);
            self.order.push_back((msg.xid, self.serial));
            self.open.insert(
                msg.xid,
                Exchange {
                    serial: self.serial,
                    ts,
                    check_at,
                    ..Exchange::default()
                },
            );
        }
        let Some(exchange) = self.open.get_mut(&msg.xid) else {
            return;
        };
        exchange.add(ts, conn, is_orig, msg);
        if exchange.is_full() {
            exchange.write(logs);
            self.open.remove(&msg.xid);
        }
    }

    fn write_oldest(&mut self, logs: &mut dyn LogSink) {
        while let Some((xid, serial)) = self.order.pop_front() {
            if self.open.get(&xid).is_some_and(|e| e.serial == serial) {
                if let Some(exchange) = self.open.remove(&xid) {
                    exchange.write(logs);
                }
                return;
            }
        }
    }

    /// Writes the exchanges that are over by capture time `now`. Cheap when none is due.
    pub fn expire(&mut self, now: f64, logs: &mut dyn LogSink) {
        if now < self.next_check {
            return;
        }
        let mut done = Vec::new();
        let mut next = f64::INFINITY;
        for (&xid, exchange) in self.open.iter_mut() {
            if exchange.check_at <= now {
                if now - exchange.last_ts > IDLE_SECS || now - exchange.ts > MAX_WATCH_SECS {
                    done.push((exchange.serial, xid));
                    continue;
                }
                exchange.check_at = now + RECHECK_SECS;
            }
            next = next.min(exchange.check_at);
        }
        self.next_check = next;
        done.sort_unstable();
        for (_, xid) in done {
            if let Some(exchange) = self.open.remove(&xid) {
                exchange.write(logs);
            }
        }
        if self.open.is_empty() {
            self.order.clear();
        }
    }

    /// End of the capture: every exchange still open is written, oldest first.
    pub fn flush(&mut self, logs: &mut dyn LogSink) {
        let mut rest: Vec<Exchange> = self.open.drain().map(|(_, e)| e).collect();
        rest.sort_unstable_by_key(|e| e.serial);
        for exchange in rest {
            exchange.write(logs);
        }
        self.order.clear();
        self.next_check = f64::INFINITY;
    }
}

#[cfg(test)]
mod tests {
    use super::parser::tests::message;
    use super::*;
    use crate::analyzer::app::tests::Collect;
    use crate::analyzer::app::{SharedState, Transport};
    use crate::analyzer::log::tests::OwnedValue;
    use crate::analyzer::uid::Uid;

    const MAC: [u8; 6] = [0x90, 0xb1, 0x1c, 0x99, 0x49, 0x29];

    fn conn(uid: &'static str, orig: ([u8; 4], u16), resp: ([u8; 4], u16)) -> ConnInfo {
        ConnInfo {
            uid: Uid::from_static(uid),
            orig_h: IpAddr::from(orig.0),
            orig_p: orig.1,
            resp_h: IpAddr::from(resp.0),
            resp_p: resp.1,
            transport: Transport::Udp,
        }
    }

    /// Delivers one message on `c` through a fresh analyzer, as the flow table would.
    fn deliver(
        shared: &mut SharedState,
        sink: &mut Collect,
        c: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
    ) -> Option<&'static str> {
        let mut weirds = Vec::new();
        let mut out = AppOutput {
            logs: sink,
            weirds: &mut weirds,
            shared,
        };
        let mut a = DhcpAnalyzer::new();
        a.deliver(c, ts, is_orig, data, &mut out);
        a.service()
    }

    #[test]
    fn a_lease_is_one_line_over_several_connections() {
        let mut shared = SharedState::default();
        let mut sink = Collect::default();
        let broadcast = conn("Cbcast", ([0, 0, 0, 0], 68), ([255, 255, 255, 255], 67));
        let server = conn("Cserver", ([10, 0, 0, 1], 67), ([255, 255, 255, 255], 68));
        let discover = message(
            1,
            7,
            [0; 4],
            MAC,
            &[53, 1, 1, 12, 4, b'h', b'o', b's', b't', 50, 4, 10, 0, 0, 50],
        );
        let offer = message(
            2,
            7,
            [10, 0, 0, 50],
            MAC,
            &[
                53, 1, 2, 51, 4, 0, 0, 0x0e, 0x10, 15, 8, b'e', b'x', b'a', b'm', b'p', b'l', b'e',
                0,
            ],
        );
        let request = message(1, 7, [0; 4], MAC, &[53, 1, 3, 61, 7, 1, 2, 2, 2, 2, 2, 2]);
        let ack = message(
            2,
            7,
            [10, 0, 0, 50],
            MAC,
            &[53, 1, 5, 51, 4, 0, 0, 0x0e, 0x10],
        );
        assert_eq!(
            deliver(&mut shared, &mut sink, &broadcast, 100.0, true, &discover),
            Some("dhcp")
        );
        deliver(&mut shared, &mut sink, &server, 100.5, true, &offer);
        deliver(&mut shared, &mut sink, &broadcast, 101.0, true, &request);
        deliver(&mut shared, &mut sink, &server, 101.25, true, &ack);
        // An unrelated exchange (INFORM from a configured client, unicast).
        let unicast = conn("Cinform", ([10, 0, 0, 50], 68), ([10, 0, 0, 1], 67));
        deliver(
            &mut shared,
            &mut sink,
            &unicast,
            102.0,
            true,
            &message(1, 9, [0; 4], MAC, &[53, 1, 8]),
        );
        // Not yet due: nothing written.
        shared.expire(105.0, &mut sink);
        assert!(sink.of("dhcp").is_empty());
        // 10 s after the first message, 5 s idle: the lease is written, the INFORM waits.
        shared.expire(110.5, &mut sink);
        let rows = sink.of("dhcp");
        assert_eq!(rows.len(), 1);
        let r = rows[0];
        let addr = |a: &str| OwnedValue::Addr(a.parse().expect("addr"));
        let s = |t: &str| OwnedValue::Str(t.into());
        assert_eq!(r[0], OwnedValue::Time(100.0));
        assert_eq!(r[1], OwnedValue::Set(vec![s("Cbcast"), s("Cserver")]));
        assert_eq!(r[2], addr("10.0.0.50")); // client_addr: the assigned address
        assert_eq!(r[3], addr("10.0.0.1"));
        assert_eq!(r[4], s("02:02:02:02:02:02")); // the client identifier wins over chaddr
        assert_eq!(r[5], s("host"));
        assert_eq!(r[6], OwnedValue::Unset);
        assert_eq!(r[7], s("example"));
        assert_eq!(
            (r[8].clone(), r[9].clone()),
            (addr("10.0.0.50"), addr("10.0.0.50"))
        );
        assert_eq!(r[10], OwnedValue::Interval(3600.0));
        assert_eq!(
            r[13],
            OwnedValue::Vector(["DISCOVER", "OFFER", "REQUEST", "ACK"].map(s).to_vec())
        );
        assert_eq!(r[14], OwnedValue::Interval(1.25));
        shared.finish(&mut sink);
        let rows = sink.of("dhcp");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][2], addr("10.0.0.50"));
        assert_eq!(rows[1][4], s("90:b1:1c:99:49:29")); // from chaddr
        assert_eq!(rows[1][13], OwnedValue::Vector(vec![s("INFORM")]));
    }

    #[test]
    fn long_exchanges_are_written_when_full_or_old() {
        let mut shared = SharedState::default();
        let mut sink = Collect::default();
        let c = conn("Cx", ([0, 0, 0, 0], 68), ([255, 255, 255, 255], 67));
        let discover = message(1, 1, [0; 4], MAC, &[53, 1, 1]);
        for i in 0..MAX_MSG_TYPES {
            let t = i as f64 / 10.0;
            shared.expire(t, &mut sink);
            deliver(&mut shared, &mut sink, &c, t, true, &discover);
        }
        // 50 messages, each within 5 s of the last: written because full, at the 50th.
        assert_eq!(sink.of("dhcp").len(), 1);
        // Every 4 s for 40 s: never idle, written once older than 30 s.
        for i in 0..10 {
            let t = 1000.0 + 4.0 * f64::from(i);
            // Expiry runs before a packet's messages, as Zeek's timers do.
            shared.expire(t, &mut sink);
            deliver(&mut shared, &mut sink, &c, t, true, &discover);
        }
        assert_eq!(sink.of("dhcp").len(), 2);
        assert_eq!(
            sink.of("dhcp")[1][13],
            OwnedValue::Vector(vec![OwnedValue::Str("DISCOVER".into()); 9])
        );
    }

    #[test]
    fn domain_is_trimmed_as_zeek_does() {
        assert_eq!(trim_domain(b"example\0\0"), b"example");
        assert_eq!(trim_domain(b"x\0"), b"");
        assert_eq!(trim_domain(b""), b"");
    }
}
