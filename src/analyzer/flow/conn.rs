//! One connection of the flow table: its key, both sides' counters, history, application
//! state and timers, and what conn.log says about it when it ends.

use std::net::IpAddr;

use super::conn_state::{tcp_conn_state, udp_conn_state};
use super::history::{History, Scaled};
use super::tcp::{Endpoint, EndpointState};
use crate::analyzer::app::{AppAnalyzer, ConnInfo};
use crate::analyzer::conn_log::{ConnDuration, ConnSummary};
use crate::analyzer::weird::WeirdConn;

pub const NS: i64 = 1_000_000_000;
const TCP_INACTIVITY_NS: i64 = 300 * NS;
/// Interactive/long-lived services get an hour (Zeek's `Conn::port_inactivity_timeouts`).
const LONG_INACTIVITY_NS: i64 = 3600 * NS;
const UDP_INACTIVITY_NS: i64 = 60 * NS;
const ICMP_INACTIVITY_NS: i64 = 60 * NS;
/// `tcp_attempt_delay`: a SYN unanswered this long ends the connection attempt.
pub const TCP_ATTEMPT_DELAY_NS: i64 = 5 * NS;
/// `tcp_close_delay` / `tcp_reset_delay`: how long a closed or reset connection lingers.
pub const TCP_CLOSE_DELAY_NS: i64 = 5 * NS;

/// Transport of a connection as Zeek logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// Direction-agnostic connection key: the lower (addr, port) endpoint first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnKey {
    a: IpAddr,
    b: IpAddr,
    a_port: u16,
    b_port: u16,
    ip_proto: u8,
}

impl ConnKey {
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, ip_proto: u8) -> Self {
        let src_first = match (src, dst) {
            // The common case as one integer compare: an IPv4 address orders as its
            // big-endian value, then the port.
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                (u64::from(u32::from(s)) << 16 | u64::from(sport))
                    <= (u64::from(u32::from(d)) << 16 | u64::from(dport))
            }
            _ => (src, sport) <= (dst, dport),
        };
        if src_first {
            ConnKey {
                a: src,
                b: dst,
                a_port: sport,
                b_port: dport,
                ip_proto,
            }
        } else {
            ConnKey {
                a: dst,
                b: src,
                a_port: dport,
                b_port: sport,
                ip_proto,
            }
        }
    }
}

/// Hashed as a few whole words (the derived hash would feed every address byte, length
/// prefix and enum tag to the hasher separately, on every packet).
impl std::hash::Hash for ConnKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let ports = u64::from(self.a_port) << 24 | u64::from(self.b_port) << 8;
        match (self.a, self.b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                state.write_u64(u64::from(u32::from(a)) << 32 | u64::from(u32::from(b)));
                state.write_u64(ports | u64::from(self.ip_proto));
            }
            (a, b) => {
                for addr in [a, b] {
                    let bits = match addr {
                        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
                        IpAddr::V6(v6) => u128::from(v6),
                    };
                    state.write_u64(bits as u64);
                    state.write_u64((bits >> 64) as u64);
                }
                state.write_u64(ports | u64::from(self.ip_proto) | 1 << 63);
            }
        }
    }
}

/// Per-direction counters.
#[derive(Debug, Default)]
pub struct Side {
    pub pkts: u64,
    pub ip_bytes: u64,
    /// Payload bytes for UDP/ICMP (TCP uses sequence numbers instead).
    pub payload_bytes: u64,
    pub tcp: TcpSide,
    /// Bad checksums, for the history's scaled letter `C` (the TCP-only `T`, `W` and `G`
    /// count in the endpoint, so a UDP connection does not carry them).
    pub checksum_errors: Scaled,
}

/// A side's TCP state, allocated when it is first changed: UDP and ICMP connections (all
/// of a DNS-heavy capture's) never pay for it, which keeps a connection at about half the
/// size. Reading it before then gives the state of a side nothing was seen of.
#[derive(Debug, Default)]
pub struct TcpSide(Option<Box<Endpoint>>);

/// What an untouched side's TCP state reads as.
static UNTOUCHED: std::sync::LazyLock<Endpoint> = std::sync::LazyLock::new(Endpoint::default);

impl std::ops::Deref for TcpSide {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        self.0.as_deref().unwrap_or(&UNTOUCHED)
    }
}

impl std::ops::DerefMut for TcpSide {
    fn deref_mut(&mut self) -> &mut Endpoint {
        self.0.get_or_insert_with(Box::default)
    }
}

/// Which application analyzer serves the connection.
pub enum AppState {
    /// No payload seen yet (nothing held, nothing allocated).
    Undetected,
    /// Payload seen, no analyzer has claimed it yet.
    Detecting(Box<Detection>),
    Active(Box<dyn AppAnalyzer>),
    /// The analyzer was dropped: conn.log needs nothing more from it and none of its logs is
    /// kept (`--logs conn`). Payload is still reassembled, so content gaps count the same.
    Settled,
    Off,
}

impl AppState {
    /// Whether anything still wants this connection's payload.
    pub fn wants_data(&self) -> bool {
        !matches!(self, AppState::Off)
    }
}

/// Payload seen while no analyzer has claimed the connection; replayed to the analyzer
/// that finally does.
#[derive(Default)]
pub struct Detection {
    pub seen: Vec<(bool, f64, Vec<u8>)>,
    /// The in-order prefix of each side's TCP stream (orig, resp).
    pub prefix: [Vec<u8>; 2],
    pub chunks: u32,
    /// Bytes held in `seen`; capped so undetected connections stay small.
    pub seen_bytes: usize,
}

/// When a timer fires (capture time, ns), or that it is unset: an `i64` that reserves
/// `i64::MAX` for "unset", half the size of an `Option<i64>` (a connection carries two, and
/// memory follows the connections alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer(i64);

impl Timer {
    pub const UNSET: Timer = Timer(i64::MAX);

    /// A timer firing at `ns` (`i64::MAX`, a saturated time, never fires: unset).
    pub fn at(ns: i64) -> Timer {
        Timer(ns)
    }

    pub fn get(self) -> Option<i64> {
        (self.0 != i64::MAX).then_some(self.0)
    }
}

pub struct Conn {
    pub info: ConnInfo,
    pub proto: Proto,
    pub ip_proto: u8,
    /// Creation order; unique within a run.
    pub serial: u64,
    pub start_ns: i64,
    /// Time of the last packet that counts for `duration`.
    pub last_ns: i64,
    /// Time of the last packet at all (inactivity).
    pub last_activity_ns: i64,
    pub orig: Side,
    pub resp: Side,
    pub history: History,
    pub missed_bytes: u64,
    pub service: Option<&'static str>,
    pub app: AppState,
    /// NTP: whether a message of each flow (`[resp, orig]`, by the `is_orig` it arrived
    /// with) already flipped the roles; Zeek's NTP analyzer flips at most once per flow.
    pub ntp_flipped: [bool; 2],
    /// The weirds logged for this connection (each is logged once); boxed, since most
    /// connections have none: 8 bytes in the connection instead of a `Vec`'s 24.
    #[allow(clippy::box_collection)]
    weirds_logged: Option<Box<Vec<&'static str>>>,
    /// The connection-attempt timer (an unanswered SYN) and the removal after a close or
    /// reset.
    pub attempt_deadline_ns: Timer,
    pub remove_at_ns: Timer,
    /// The deadline the expiry queue holds for this connection (see `expiry`).
    pub scheduled_ns: i64,
}

impl Conn {
    pub fn new(info: ConnInfo, proto: Proto, ip_proto: u8, serial: u64, ts_ns: i64) -> Conn {
        Conn {
            info,
            proto,
            ip_proto,
            serial,
            start_ns: ts_ns,
            last_ns: ts_ns,
            last_activity_ns: ts_ns,
            orig: Side::default(),
            resp: Side::default(),
            history: History::default(),
            missed_bytes: 0,
            service: None,
            app: if proto == Proto::Icmp {
                AppState::Off
            } else {
                AppState::Undetected
            },
            ntp_flipped: [false; 2],
            weirds_logged: None,
            attempt_deadline_ns: Timer::UNSET,
            remove_at_ns: Timer::UNSET,
            scheduled_ns: i64::MAX,
        }
    }

    /// The table's key of this connection, from its ends (it does not change on a flip); not
    /// stored, as the addresses and ports are already in `info`.
    pub fn key(&self) -> ConnKey {
        ConnKey::new(
            self.info.orig_h,
            self.info.orig_p,
            self.info.resp_h,
            self.info.resp_p,
            self.ip_proto,
        )
    }

    /// Whether weird `name` is logged for this connection for the first time (and so is
    /// to be logged); records it.
    pub fn first_time_weird(&mut self, name: &'static str) -> bool {
        let logged = self.weirds_logged.get_or_insert_with(Box::default);
        if logged.contains(&name) {
            return false;
        }
        logged.push(name);
        true
    }

    pub fn is_orig(&self, src: IpAddr, sport: u16) -> bool {
        if self.info.orig_h != self.info.resp_h {
            src == self.info.orig_h
        } else {
            sport == self.info.orig_p
        }
    }

    /// (the sender's side, the peer's side).
    pub fn sides(&mut self, is_orig: bool) -> (&mut Side, &mut Side) {
        if is_orig {
            (&mut self.orig, &mut self.resp)
        } else {
            (&mut self.resp, &mut self.orig)
        }
    }

    pub fn side(&mut self, is_orig: bool) -> &mut Side {
        self.sides(is_orig).0
    }

    /// Counts an occurrence of a scaled letter (`C`, `T`, `W`, `G`) of one side and adds the
    /// letter at the 1st, 10th, 100th, ... occurrence.
    pub fn scaled_history(
        &mut self,
        is_orig: bool,
        letter: u8,
        pick: fn(&mut Side) -> &mut Scaled,
    ) {
        if pick(self.side(is_orig)).hit() {
            self.history.push(is_orig, letter);
        }
    }

    /// Swaps originator and responder (Zeek's `FlipRoles`).
    pub fn flip(&mut self) {
        std::mem::swap(&mut self.orig, &mut self.resp);
        std::mem::swap(&mut self.info.orig_h, &mut self.info.resp_h);
        std::mem::swap(&mut self.info.orig_p, &mut self.info.resp_p);
        self.history.flip();
    }

    /// Zeek's `FlipRoles` as the NTP analyzer calls it on a UDP connection, in the middle of
    /// delivering a packet: the addresses and ports swap and `^` is added, but the UDP
    /// payload byte counts and the history's once-bits stay where they are (Zeek's UDP
    /// session keeps them by slot, not by endpoint). The packet and IP byte counts of earlier
    /// packets swap (Zeek's ConnSize analyzer flips them); the caller then counts the packet
    /// being delivered under the role it arrived with, as Zeek's ConnSize does after the NTP
    /// analyzer returned.
    pub fn flip_during_udp_delivery(&mut self) {
        std::mem::swap(&mut self.info.orig_h, &mut self.info.resp_h);
        std::mem::swap(&mut self.info.orig_p, &mut self.info.resp_p);
        std::mem::swap(&mut self.orig.pkts, &mut self.resp.pkts);
        std::mem::swap(&mut self.orig.ip_bytes, &mut self.resp.ip_bytes);
        self.history.mark_flip();
    }

    fn inactivity_timeout_ns(&self) -> i64 {
        match self.proto {
            Proto::Tcp
                if matches!(self.info.resp_p, 21 | 22 | 23 | 513)
                    || matches!(self.service, Some("ssh" | "ftp")) =>
            {
                LONG_INACTIVITY_NS
            }
            Proto::Tcp => TCP_INACTIVITY_NS,
            Proto::Udp => UDP_INACTIVITY_NS,
            Proto::Icmp => ICMP_INACTIVITY_NS,
        }
    }

    /// Whether the connection-attempt timer applies: the originator sent a SYN (or SYN-ACK)
    /// and the responder nothing.
    fn attempt_pending(&self) -> bool {
        matches!(
            self.orig.tcp.state,
            EndpointState::SynSent | EndpointState::SynAckSent
        ) && self.resp.tcp.state == EndpointState::Inactive
    }

    /// The earliest capture time at which one of the connection's timers fires, given its
    /// state now: `expired(t)` holds exactly for `t >= deadline_ns()`.
    pub fn deadline_ns(&self) -> i64 {
        let mut at = self
            .last_activity_ns
            .saturating_add(self.inactivity_timeout_ns());
        if let Some(remove_at) = self.remove_at_ns.get() {
            at = at.min(remove_at);
        }
        if let Some(deadline) = self.attempt_deadline_ns.get() {
            if self.attempt_pending() {
                at = at.min(deadline);
            }
        }
        at
    }

    /// Whether a timer of this connection has fired by `now_ns`.
    pub fn expired(&self, now_ns: i64) -> bool {
        now_ns >= self.deadline_ns()
    }

    pub fn weird_conn(&self) -> WeirdConn<'_> {
        WeirdConn {
            uid: &self.info.uid,
            orig_h: self.info.orig_h,
            orig_p: self.info.orig_p,
            resp_h: self.info.resp_h,
            resp_p: self.info.resp_p,
        }
    }

    /// What conn.log says about the connection.
    pub fn summary(&self) -> ConnSummary<'_> {
        let duration_ns = self.last_ns.saturating_sub(self.start_ns);
        let (orig_size, resp_size, state) = match self.proto {
            Proto::Tcp => {
                let o = self.orig.tcp.size(self.resp.tcp.state);
                let r = self.resp.tcp.size(self.orig.tcp.state);
                let state = tcp_conn_state(
                    self.orig.tcp.state,
                    self.resp.tcp.state,
                    o,
                    r,
                    self.history.as_str(),
                );
                (o, r, state)
            }
            Proto::Udp => (
                self.orig.payload_bytes,
                self.resp.payload_bytes,
                udp_conn_state(self.orig.pkts > 0, self.resp.pkts > 0),
            ),
            Proto::Icmp => (self.orig.payload_bytes, self.resp.payload_bytes, "OTH"),
        };
        ConnSummary {
            ts: secs(self.start_ns),
            uid: &self.info.uid,
            orig_h: self.info.orig_h,
            orig_p: self.info.orig_p,
            resp_h: self.info.resp_h,
            resp_p: self.info.resp_p,
            proto: match self.proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
                Proto::Icmp => "icmp",
            },
            service: self.service,
            duration: (duration_ns > 0).then(|| ConnDuration {
                seconds: duration_ns as f64 / 1e9,
                orig_bytes: orig_size,
                resp_bytes: resp_size,
            }),
            conn_state: state,
            missed_bytes: self.missed_bytes,
            history: self.history.as_str(),
            orig_pkts: self.orig.pkts,
            orig_ip_bytes: self.orig.ip_bytes,
            resp_pkts: self.resp.pkts,
            resp_ip_bytes: self.resp.ip_bytes,
            ip_proto: self.ip_proto,
        }
    }
}

/// Nanoseconds to the seconds the logs and analyzers use.
pub fn secs(ts_ns: i64) -> f64 {
    ts_ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::Transport;
    use crate::analyzer::uid::Uid;

    fn conn(proto: Proto, resp_p: u16) -> Conn {
        let info = ConnInfo {
            uid: Uid::from_static("Ctest"),
            orig_h: IpAddr::from([10, 0, 0, 1]),
            orig_p: 40000,
            resp_h: IpAddr::from([10, 0, 0, 2]),
            resp_p,
            transport: if proto == Proto::Tcp {
                Transport::Tcp
            } else {
                Transport::Udp
            },
        };
        Conn::new(info, proto, 6, 1, 100 * NS)
    }

    #[test]
    fn key_order_fast_path_agrees_with_address_order() {
        let addrs: Vec<IpAddr> = [
            "10.0.0.1",
            "10.0.0.2",
            "9.255.255.255",
            "200.1.1.1",
            "::1",
            "10.0.0.1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for &a in &addrs {
            for &b in &addrs {
                for (pa, pb) in [(1, 2), (2, 1), (80, 80), (0, 65535)] {
                    let key = ConnKey::new(a, pa, b, pb, 6);
                    let (first, second) = if (a, pa) <= (b, pb) {
                        ((a, pa), (b, pb))
                    } else {
                        ((b, pb), (a, pa))
                    };
                    assert_eq!(
                        (key.a, key.a_port, key.b, key.b_port),
                        (first.0, first.1, second.0, second.1)
                    );
                }
            }
        }
    }

    #[test]
    fn deadline_is_exactly_when_expired_turns_true() {
        let mut c = conn(Proto::Tcp, 80);
        assert_eq!(c.deadline_ns(), 400 * NS);
        assert!(!c.expired(400 * NS - 1) && c.expired(400 * NS));
        // An unanswered SYN: the attempt timer comes first while the responder is silent.
        c.orig.tcp.set_state(EndpointState::SynSent);
        c.attempt_deadline_ns = Timer::at(105 * NS);
        assert_eq!(c.deadline_ns(), 105 * NS);
        c.resp.tcp.set_state(EndpointState::Established);
        assert_eq!(c.deadline_ns(), 400 * NS);
        c.remove_at_ns = Timer::at(110 * NS);
        assert_eq!(c.deadline_ns(), 110 * NS);
    }

    #[test]
    fn inactivity_depends_on_port_service_and_transport() {
        assert_eq!(conn(Proto::Tcp, 22).deadline_ns(), 3700 * NS);
        let mut ftp = conn(Proto::Tcp, 2121);
        ftp.service = Some("ftp");
        assert_eq!(ftp.deadline_ns(), 3700 * NS);
        assert_eq!(conn(Proto::Udp, 53).deadline_ns(), 160 * NS);
        assert_eq!(conn(Proto::Icmp, 0).deadline_ns(), 160 * NS);
    }

    #[test]
    fn flip_swaps_sides_and_endpoints() {
        let mut c = conn(Proto::Udp, 53);
        c.orig.pkts = 3;
        c.flip();
        assert_eq!((c.resp.pkts, c.info.orig_p, c.info.resp_p), (3, 53, 40000));
        assert_eq!(c.history.as_str(), "^");
    }
}
