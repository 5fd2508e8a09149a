//! The connection table: turns decoded IP packets into Zeek connections, applies Zeek's
//! direction, state, history and byte-accounting rules, feeds application analyzers with
//! in-order payload, and writes one conn.log line per connection when it is removed
//! (end of connection after the close/reset delay, connection-attempt timeout, inactivity
//! timeout, reuse of the 5-tuple, or end of capture).
//!
//! Memory is proportional to live connections: idle ones are expired by capture time in
//! periodic sweeps, so a long capture with many short flows stays small.

pub mod direction;
pub mod tcp;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::app::{self, AppAnalyzer, AppOutput, ConnInfo, Transport};
use super::conn_log::{tcp_conn_state, udp_conn_state, ConnDuration, ConnSummary};
use super::decode::{self, IpPacket, ACK, FIN, RST, SYN};
use super::hash::FxBuildHasher;
use super::log::LogSink;
use super::uid::UidGenerator;
use super::weird::{WeirdConn, WeirdLog};
use direction::{flip_at_creation, ntp_mode_says_flip};
use tcp::{Endpoint, EndpointState, StreamEvent};

const NS: i64 = 1_000_000_000;
const TCP_INACTIVITY_NS: i64 = 300 * NS;
/// Interactive/long-lived services get an hour (Zeek's `Conn::port_inactivity_timeouts`).
const LONG_INACTIVITY_NS: i64 = 3600 * NS;
const UDP_INACTIVITY_NS: i64 = 60 * NS;
const ICMP_INACTIVITY_NS: i64 = 60 * NS;
/// `tcp_attempt_delay`: a SYN unanswered this long ends the connection attempt.
const TCP_ATTEMPT_DELAY_NS: i64 = 5 * NS;
/// `tcp_close_delay` / `tcp_reset_delay`: how long a closed or reset connection lingers.
const TCP_CLOSE_DELAY_NS: i64 = 5 * NS;
/// How often (in capture time) idle connections are swept out of the table.
const SWEEP_INTERVAL_NS: i64 = 10 * NS;
/// Application detection gives up after this many payload bytes per side ...
const DETECT_MAX_BYTES_PER_SIDE: usize = 4096;
/// ... or this many payload chunks in total (or twice the per-side bytes held in total).
const DETECT_MAX_CHUNKS: u32 = 16;

/// Transport of a connection as Zeek logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// Direction-agnostic connection key: the lower (addr, port) endpoint first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey {
    a: IpAddr,
    b: IpAddr,
    a_port: u16,
    b_port: u16,
    ip_proto: u8,
}

impl ConnKey {
    fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, ip_proto: u8) -> Self {
        if (src, sport) <= (dst, dport) {
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

/// Per-direction counters.
#[derive(Debug, Default)]
struct Side {
    pkts: u64,
    ip_bytes: u64,
    /// Payload bytes for UDP/ICMP (TCP uses sequence numbers instead).
    payload_bytes: u64,
    tcp: Endpoint,
    checksum_errors: u32,
    checksum_threshold: u32,
    retransmissions: u32,
    retransmission_threshold: u32,
    zero_windows: u32,
    zero_window_threshold: u32,
    gaps: u32,
    gap_threshold: u32,
}

impl Side {
    fn new() -> Self {
        Side {
            checksum_threshold: 1,
            retransmission_threshold: 1,
            zero_window_threshold: 1,
            gap_threshold: 1,
            ..Side::default()
        }
    }
}

enum AppState {
    Detecting(Box<Detection>),
    Active(Box<dyn AppAnalyzer>),
    Off,
}

/// Payload seen while no analyzer has claimed the connection; replayed to the analyzer
/// that finally does.
#[derive(Default)]
struct Detection {
    seen: Vec<(bool, f64, Vec<u8>)>,
    /// The in-order prefix of each side's TCP stream (orig, resp).
    prefix: [Vec<u8>; 2],
    chunks: u32,
    /// Bytes held in `seen`; capped so undetected connections stay small.
    seen_bytes: usize,
}

/// History letters recorded at most once per direction; bit position per letter.
#[derive(Clone, Copy)]
enum Once {
    Syn = 0,
    Fin = 1,
    Rst = 2,
    Data = 3,
    Ack = 4,
    FinRst = 5,
    MultiFlag = 6,
}

struct Conn {
    info: ConnInfo,
    proto: Proto,
    ip_proto: u8,
    serial: u64,
    start_ns: i64,
    /// Time of the last packet that counts for `duration`.
    last_ns: i64,
    /// Time of the last packet at all (inactivity).
    last_activity_ns: i64,
    orig: Side,
    resp: Side,
    history: String,
    /// Once-per-direction letters seen: bit `Once as u8` for the originator, +16 for the
    /// responder (swapped on a flip).
    hist_seen: u32,
    missed_bytes: u64,
    service: Option<&'static str>,
    app: AppState,
    first_message_checked: bool,
    weirds_logged: Vec<&'static str>,
    attempt_deadline_ns: Option<i64>,
    remove_at_ns: Option<i64>,
}

impl Conn {
    fn is_orig(&self, src: IpAddr, sport: u16) -> bool {
        if self.info.orig_h != self.info.resp_h {
            src == self.info.orig_h
        } else {
            sport == self.info.orig_p
        }
    }

    fn sides(&mut self, is_orig: bool) -> (&mut Side, &mut Side) {
        if is_orig {
            (&mut self.orig, &mut self.resp)
        } else {
            (&mut self.resp, &mut self.orig)
        }
    }

    fn add_history(&mut self, is_orig: bool, letter: u8) {
        let c = if is_orig {
            letter.to_ascii_uppercase()
        } else {
            letter.to_ascii_lowercase()
        };
        self.history.push(char::from(c));
    }

    /// Records a once-per-direction letter; returns whether it had been seen before.
    fn check_history(&mut self, is_orig: bool, once: Once, letter: u8) -> bool {
        let bit = 1u32 << (once as u32 + if is_orig { 0 } else { 16 });
        if self.hist_seen & bit != 0 {
            return true;
        }
        self.hist_seen |= bit;
        self.add_history(is_orig, letter);
        false
    }

    /// Letters that scale logarithmically: added at the 1st, 10th, 100th, ... occurrence.
    fn scaled_history(
        &mut self,
        is_orig: bool,
        letter: u8,
        pick: fn(&mut Side) -> (&mut u32, &mut u32),
    ) {
        let side = if is_orig {
            &mut self.orig
        } else {
            &mut self.resp
        };
        let (count, threshold) = pick(side);
        *count = count.saturating_add(1);
        if *count == *threshold {
            *threshold = threshold.saturating_mul(10);
            self.add_history(is_orig, letter);
        }
    }

    /// Swaps originator and responder (Zeek's `FlipRoles`).
    fn flip(&mut self) {
        std::mem::swap(&mut self.orig, &mut self.resp);
        std::mem::swap(&mut self.info.orig_h, &mut self.info.resp_h);
        std::mem::swap(&mut self.info.orig_p, &mut self.info.resp_p);
        self.hist_seen = self.hist_seen.rotate_left(16);
        if self.history == "H" {
            // A connection that began with a SYN-ACK is rewritten as seen from the real
            // originator.
            self.history = "^h".to_owned();
        } else {
            self.history.push('^');
        }
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

    /// Whether a timer of this connection has fired by `now_ns`.
    fn expired(&self, now_ns: i64) -> bool {
        if self.remove_at_ns.is_some_and(|t| now_ns >= t) {
            return true;
        }
        if let Some(deadline) = self.attempt_deadline_ns {
            if now_ns >= deadline
                && matches!(
                    self.orig.tcp.state,
                    EndpointState::SynSent | EndpointState::SynAckSent
                )
                && self.resp.tcp.state == EndpointState::Inactive
            {
                return true;
            }
        }
        now_ns.saturating_sub(self.last_activity_ns) >= self.inactivity_timeout_ns()
    }

    fn weird_conn(&self) -> WeirdConn<'_> {
        WeirdConn {
            uid: &self.info.uid,
            orig_h: self.info.orig_h,
            orig_p: self.info.orig_p,
            resp_h: self.info.resp_h,
            resp_p: self.info.resp_p,
        }
    }
}

/// Which logs the table produces.
#[derive(Debug, Clone, Copy)]
pub struct TableOptions {
    pub ignore_checksums: bool,
    pub write_conn: bool,
    pub write_weird: bool,
}

/// The connection table of one analysis run.
pub struct FlowTable {
    conns: HashMap<ConnKey, Conn, FxBuildHasher>,
    opts: TableOptions,
    uids: UidGenerator,
    serial: u64,
    pub weirds: WeirdLog,
    next_sweep_ns: Option<i64>,
    /// Connections logged so far.
    pub connections: u64,
    /// Connections per service ("-" for none).
    pub services: BTreeMap<String, u64>,
    events: Vec<StreamEvent>,
    app_weirds: Vec<(&'static str, String)>,
}

impl FlowTable {
    pub fn new(opts: TableOptions) -> Self {
        FlowTable {
            conns: HashMap::default(),
            opts,
            uids: UidGenerator::default(),
            serial: 0,
            weirds: WeirdLog::default(),
            next_sweep_ns: None,
            connections: 0,
            services: BTreeMap::new(),
            events: Vec::new(),
            app_weirds: Vec::new(),
        }
    }

    /// Live connections.
    pub fn live(&self) -> usize {
        self.conns.len()
    }

    /// Processes one (reassembled, if fragmented) IP packet.
    pub fn packet(&mut self, ts_ns: i64, ip: &IpPacket<'_>, sink: &mut dyn LogSink) {
        self.sweep(ts_ns, sink);
        match ip.proto {
            6 => self.tcp_packet(ts_ns, ip, sink),
            17 => self.udp_packet(ts_ns, ip, sink),
            1 if ip.src.is_ipv4() => self.icmp_packet(ts_ns, ip, sink),
            58 if ip.src.is_ipv6() => self.icmp_packet(ts_ns, ip, sink),
            _ => {}
        }
    }

    /// A weird about a packet that could not be attributed to a connection.
    pub fn unattached_weird(
        &mut self,
        sink: &mut dyn LogSink,
        ts_ns: i64,
        flow: Option<(IpAddr, IpAddr)>,
        name: &'static str,
        source: &str,
    ) {
        if self.opts.write_weird {
            self.weirds
                .unattached(sink, secs(ts_ns), flow, name, source);
        }
    }

    /// End of capture: every remaining connection is logged, oldest first.
    pub fn finish(&mut self, sink: &mut dyn LogSink) {
        let mut rest: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        rest.sort_by_key(|c| c.serial);
        for conn in rest {
            self.finish_conn(conn, sink);
        }
    }

    fn sweep(&mut self, now_ns: i64, sink: &mut dyn LogSink) {
        let due = *self
            .next_sweep_ns
            .get_or_insert(now_ns.saturating_add(SWEEP_INTERVAL_NS));
        if now_ns < due {
            return;
        }
        self.next_sweep_ns = Some(now_ns.saturating_add(SWEEP_INTERVAL_NS));
        let expired: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, c)| c.expired(now_ns))
            .map(|(k, _)| *k)
            .collect();
        let mut done: Vec<Conn> = expired
            .iter()
            .filter_map(|k| self.conns.remove(k))
            .collect();
        done.sort_by_key(|c| c.serial);
        for conn in done {
            self.finish_conn(conn, sink);
        }
    }

    /// Removes the connection under `key` if one of its timers has fired by `now_ns` (or
    /// `force` says it is being reused), logging it.
    fn expire_key(&mut self, key: &ConnKey, now_ns: i64, force: bool, sink: &mut dyn LogSink) {
        let due = self
            .conns
            .get(key)
            .is_some_and(|c| force || c.expired(now_ns));
        if due {
            if let Some(conn) = self.conns.remove(key) {
                self.finish_conn(conn, sink);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        key: ConnKey,
        ts_ns: i64,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: Proto,
        ip_proto: u8,
        flip: bool,
    ) {
        let uid = self.uids.next_uid();
        self.serial += 1;
        let transport = if proto == Proto::Tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let mut conn = Conn {
            info: ConnInfo {
                uid,
                orig_h: src,
                orig_p: sport,
                resp_h: dst,
                resp_p: dport,
                transport,
            },
            proto,
            ip_proto,
            serial: self.serial,
            start_ns: ts_ns,
            last_ns: ts_ns,
            last_activity_ns: ts_ns,
            orig: Side::new(),
            resp: Side::new(),
            history: String::new(),
            hist_seen: 0,
            missed_bytes: 0,
            service: None,
            app: if proto == Proto::Icmp {
                AppState::Off
            } else {
                AppState::Detecting(Box::default())
            },
            first_message_checked: false,
            weirds_logged: Vec::new(),
            attempt_deadline_ns: None,
            remove_at_ns: None,
        };
        if flip {
            conn.flip();
        }
        self.conns.insert(key, conn);
    }

    fn tcp_packet(&mut self, ts_ns: i64, ip: &IpPacket<'_>, sink: &mut dyn LogSink) {
        let seg = match decode::parse_tcp(ip) {
            Ok(s) => s,
            Err(name) => {
                return self.unattached_weird(sink, ts_ns, Some((ip.src, ip.dst)), name, "TCP")
            }
        };
        let key = ConnKey::new(ip.src, seg.src_port, ip.dst, seg.dst_port, 6);
        let pure_syn = seg.flags & (SYN | ACK) == SYN;
        let reuse = pure_syn
            && self
                .conns
                .get(&key)
                .is_some_and(|c| is_tcp_reuse(c, seg.seq));
        self.expire_key(&key, ts_ns, reuse, sink);
        let is_new = !self.conns.contains_key(&key);
        if is_new {
            let flip = flip_at_creation(
                true,
                seg.src_port,
                ip.dst,
                seg.dst_port,
                pure_syn,
                seg.flags & SYN != 0,
            );
            self.create(
                key,
                ts_ns,
                ip.src,
                seg.src_port,
                ip.dst,
                seg.dst_port,
                Proto::Tcp,
                6,
                flip,
            );
        }
        let check = !self.opts.ignore_checksums && ip.complete();
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let mut is_orig = conn.is_orig(ip.src, seg.src_port);
        conn.last_activity_ns = ts_ns;
        if check && !decode::transport_checksum_ok(ip) {
            conn.scaled_history(is_orig, b'C', |s| {
                (&mut s.checksum_errors, &mut s.checksum_threshold)
            });
            return self.conn_weird(&key, ts_ns, "bad_TCP_checksum", String::new(), "TCP", sink);
        }
        // A connection that began with a SYN-ACK: the first non-SYN packet from the other
        // side shows who the originator really is.
        if !is_orig
            && seg.flags & SYN == 0
            && conn.orig.tcp.state == EndpointState::SynAckSent
            && conn.resp.tcp.state == EndpointState::Inactive
        {
            conn.flip();
            is_orig = true;
        }
        // Zeek arms the connection-attempt timer when the originator's first packet is a
        // SYN (with or without ACK).
        if is_orig && seg.flags & SYN != 0 && conn.orig.tcp.state == EndpointState::Inactive {
            conn.attempt_deadline_ns = Some(ts_ns.saturating_add(TCP_ATTEMPT_DELAY_NS));
        }
        {
            let (side, _) = conn.sides(is_orig);
            side.pkts += 1;
            side.ip_bytes += u64::from(ip.ip_len);
        }
        if !(conn.orig.tcp.did_close && conn.resp.tcp.did_close) {
            conn.last_ns = ts_ns;
        }
        let scale_weird = seg.window_scale.filter(|&s| s > 14);
        let mut peer_events_start = 0;
        tcp_update(
            conn,
            is_orig,
            &seg,
            ts_ns,
            &mut self.events,
            &mut peer_events_start,
        );
        if let Some(shift) = scale_weird {
            self.conn_weird(
                &key,
                ts_ns,
                "TCP_scale_range",
                shift.to_string(),
                "TCP",
                sink,
            );
        }
        self.dispatch_stream_events(&key, is_orig, peer_events_start, seg.payload, ts_ns, sink);
    }

    /// Hands stream events collected by `tcp_update` (own data, and gaps found on either
    /// side) to the application layer.
    fn dispatch_stream_events(
        &mut self,
        key: &ConnKey,
        is_orig: bool,
        peer_events_start: usize,
        payload: &[u8],
        ts_ns: i64,
        sink: &mut dyn LogSink,
    ) {
        if self.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.events);
        for (i, ev) in events.iter().enumerate() {
            let side_is_orig = if i < peer_events_start {
                is_orig
            } else {
                !is_orig
            };
            match ev {
                StreamEvent::Gap(len) => {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.missed_bytes += len;
                        conn.scaled_history(side_is_orig, b'G', |s| {
                            (&mut s.gaps, &mut s.gap_threshold)
                        });
                        match &mut conn.app {
                            AppState::Active(a) => {
                                let mut out = AppOutput {
                                    logs: &mut *sink,
                                    weirds: &mut self.app_weirds,
                                };
                                a.gap(&conn.info, secs(ts_ns), side_is_orig, *len, &mut out);
                            }
                            AppState::Detecting(_) => conn.app = AppState::Off,
                            AppState::Off => {}
                        }
                    }
                    self.flush_app_weirds(key, ts_ns, sink);
                }
                StreamEvent::Data(data) => self.deliver_app(key, side_is_orig, ts_ns, data, sink),
                StreamEvent::Current(skip) => {
                    let fresh = payload.get(*skip..).unwrap_or_default();
                    self.deliver_app(key, side_is_orig, ts_ns, fresh, sink);
                }
            }
        }
        let mut events = events;
        events.clear();
        self.events = events;
    }

    fn udp_packet(&mut self, ts_ns: i64, ip: &IpPacket<'_>, sink: &mut dyn LogSink) {
        let dg = match decode::parse_udp(ip) {
            Ok(d) => d,
            Err(name) => {
                return self.unattached_weird(sink, ts_ns, Some((ip.src, ip.dst)), name, "UDP")
            }
        };
        let key = ConnKey::new(ip.src, dg.src_port, ip.dst, dg.dst_port, 17);
        self.expire_key(&key, ts_ns, false, sink);
        if !self.conns.contains_key(&key) {
            let flip = flip_at_creation(false, dg.src_port, ip.dst, dg.dst_port, false, false);
            self.create(
                key,
                ts_ns,
                ip.src,
                dg.src_port,
                ip.dst,
                dg.dst_port,
                Proto::Udp,
                17,
                flip,
            );
        }
        let check = !self.opts.ignore_checksums && ip.complete();
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let is_orig = conn.is_orig(ip.src, dg.src_port);
        conn.last_activity_ns = ts_ns;
        if check && !decode::transport_checksum_ok(ip) {
            conn.scaled_history(is_orig, b'C', |s| {
                (&mut s.checksum_errors, &mut s.checksum_threshold)
            });
            return self.conn_weird(&key, ts_ns, "bad_UDP_checksum", String::new(), "UDP", sink);
        }
        conn.last_ns = ts_ns;
        let (side, _) = conn.sides(is_orig);
        side.pkts += 1;
        side.ip_bytes += u64::from(ip.ip_len);
        side.payload_bytes += u64::from(dg.payload_len);
        conn.check_history(is_orig, Once::Data, b'D');
        let mut is_orig = is_orig;
        if !conn.first_message_checked && !dg.payload.is_empty() {
            conn.first_message_checked = true;
            // NTP has no analyzer here, so its mode-based flip is applied by the table; the
            // DNS response-first flip is the DNS analyzer's (`take_role_flip`).
            if ntp_mode_says_flip(conn.info.orig_p, conn.info.resp_p, is_orig, dg.payload) {
                conn.flip();
                is_orig = !is_orig;
            }
        }
        if !dg.payload.is_empty() {
            self.deliver_app(&key, is_orig, ts_ns, dg.payload, sink);
        }
    }

    fn icmp_packet(&mut self, ts_ns: i64, ip: &IpPacket<'_>, sink: &mut dyn LogSink) {
        let msg = match decode::parse_icmp(ip) {
            Ok(m) => m,
            Err(name) => {
                return self.unattached_weird(sink, ts_ns, Some((ip.src, ip.dst)), name, "ICMP")
            }
        };
        let (sport, dport) = icmp_ports(ip.src.is_ipv6(), msg.icmp_type, msg.code);
        let key = ConnKey::new(ip.src, sport, ip.dst, dport, ip.proto);
        self.expire_key(&key, ts_ns, false, sink);
        if !self.conns.contains_key(&key) {
            self.create(
                key,
                ts_ns,
                ip.src,
                sport,
                ip.dst,
                dport,
                Proto::Icmp,
                ip.proto,
                false,
            );
        }
        let check = !self.opts.ignore_checksums && ip.complete();
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let is_orig = conn.is_orig(ip.src, sport);
        conn.last_activity_ns = ts_ns;
        if check && !decode::transport_checksum_ok(ip) {
            return self.conn_weird(
                &key,
                ts_ns,
                "bad_ICMP_checksum",
                String::new(),
                "ICMP",
                sink,
            );
        }
        conn.last_ns = ts_ns;
        let (side, _) = conn.sides(is_orig);
        side.pkts += 1;
        side.ip_bytes += u64::from(ip.ip_len);
        side.payload_bytes += u64::from(ip.payload_len.saturating_sub(8));
    }

    fn deliver_app(
        &mut self,
        key: &ConnKey,
        is_orig: bool,
        ts_ns: i64,
        data: &[u8],
        sink: &mut dyn LogSink,
    ) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let ts = secs(ts_ns);
        match &mut conn.app {
            AppState::Off => return,
            AppState::Active(a) => {
                let mut out = AppOutput {
                    logs: &mut *sink,
                    weirds: &mut self.app_weirds,
                };
                a.deliver(&conn.info, ts, is_orig, data, &mut out);
                if conn.service.is_none() {
                    conn.service = a.service();
                }
                if a.take_role_flip() {
                    conn.flip();
                }
            }
            AppState::Detecting(d) => {
                d.chunks += 1;
                d.seen_bytes += data.len();
                d.seen.push((is_orig, ts, data.to_vec()));
                let side = usize::from(!is_orig);
                let probe: &[u8] = if conn.proto == Proto::Tcp {
                    let room = DETECT_MAX_BYTES_PER_SIDE.saturating_sub(d.prefix[side].len());
                    d.prefix[side].extend_from_slice(&data[..data.len().min(room)]);
                    &d.prefix[side]
                } else {
                    data
                };
                if let Some(mut analyzer) = app::detect(&conn.info, is_orig, probe) {
                    let mut out = AppOutput {
                        logs: &mut *sink,
                        weirds: &mut self.app_weirds,
                    };
                    let seen = std::mem::take(&mut d.seen);
                    // Roles may flip during the replay; the side of each chunk was recorded
                    // with the roles of its time, so it flips along.
                    let mut flipped = false;
                    for (o, t, bytes) in seen {
                        analyzer.deliver(&conn.info, t, o != flipped, &bytes, &mut out);
                        if analyzer.take_role_flip() {
                            conn.flip();
                            flipped = !flipped;
                        }
                    }
                    conn.service = conn.service.or(analyzer.service());
                    conn.app = AppState::Active(analyzer);
                } else if d.chunks >= DETECT_MAX_CHUNKS
                    || d.seen_bytes >= 2 * DETECT_MAX_BYTES_PER_SIDE
                    || d.prefix
                        .iter()
                        .any(|p| p.len() >= DETECT_MAX_BYTES_PER_SIDE)
                {
                    conn.app = AppState::Off;
                }
            }
        }
        self.flush_app_weirds(key, ts_ns, sink);
    }

    fn flush_app_weirds(&mut self, key: &ConnKey, ts_ns: i64, sink: &mut dyn LogSink) {
        if self.app_weirds.is_empty() {
            return;
        }
        let source = self
            .conns
            .get(key)
            .and_then(|c| c.service)
            .map(str::to_ascii_uppercase)
            .unwrap_or_default();
        for (name, addl) in std::mem::take(&mut self.app_weirds) {
            self.conn_weird(key, ts_ns, name, addl, &source, sink);
        }
    }

    /// Logs a weird for a connection, once per name per connection.
    fn conn_weird(
        &mut self,
        key: &ConnKey,
        ts_ns: i64,
        name: &'static str,
        addl: String,
        source: &str,
        sink: &mut dyn LogSink,
    ) {
        if !self.opts.write_weird {
            return;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.weirds_logged.contains(&name) {
            return;
        }
        conn.weirds_logged.push(name);
        self.weirds
            .conn(sink, secs(ts_ns), &conn.weird_conn(), name, &addl, source);
    }

    fn finish_conn(&mut self, mut conn: Conn, sink: &mut dyn LogSink) {
        // Whatever is still buffered reaches the analyzer before it finishes.
        if conn.proto == Proto::Tcp && !matches!(conn.app, AppState::Off) {
            let mut events = Vec::new();
            let buffer = !matches!(conn.app, AppState::Off);
            conn.orig.tcp.stream.flush(buffer, &mut events);
            let split = events.len();
            conn.resp.tcp.stream.flush(buffer, &mut events);
            if let AppState::Active(a) = &mut conn.app {
                let mut out = AppOutput {
                    logs: &mut *sink,
                    weirds: &mut self.app_weirds,
                };
                for (i, ev) in events.iter().enumerate() {
                    let is_orig = i < split;
                    match ev {
                        StreamEvent::Data(d) => {
                            a.deliver(&conn.info, secs(conn.last_ns), is_orig, d, &mut out)
                        }
                        StreamEvent::Gap(len) => {
                            a.gap(&conn.info, secs(conn.last_ns), is_orig, *len, &mut out)
                        }
                        // Flushing only releases buffered bytes, never a current segment.
                        StreamEvent::Current(_) => {}
                    }
                }
            }
        }
        if let AppState::Active(a) = &mut conn.app {
            let mut out = AppOutput {
                logs: &mut *sink,
                weirds: &mut self.app_weirds,
            };
            a.finish(&conn.info, secs(conn.last_ns), &mut out);
            if conn.service.is_none() {
                conn.service = a.service();
            }
        }
        if !self.app_weirds.is_empty() && self.opts.write_weird {
            let source = conn
                .service
                .map(str::to_ascii_uppercase)
                .unwrap_or_default();
            for (name, addl) in std::mem::take(&mut self.app_weirds) {
                if !conn.weirds_logged.contains(&name) {
                    conn.weirds_logged.push(name);
                    self.weirds.conn(
                        sink,
                        secs(conn.last_ns),
                        &conn.weird_conn(),
                        name,
                        &addl,
                        &source,
                    );
                }
            }
        }
        self.app_weirds.clear();
        self.connections += 1;
        *self
            .services
            .entry(conn.service.unwrap_or("-").to_owned())
            .or_insert(0) += 1;
        if self.opts.write_conn {
            conn_summary(&conn).write(sink);
        }
    }
}

/// A pure SYN on an existing connection starts a new one if either side already closed or
/// reset it; on an open connection only if it is not a retransmission of the originator's
/// initial SYN nor the SYN of a reversed SYN/SYN-ACK pair.
fn is_tcp_reuse(conn: &Conn, seq: u32) -> bool {
    let orig = &conn.orig.tcp;
    if orig.did_close || conn.resp.tcp.did_close {
        return true;
    }
    if !orig.initialized {
        return false;
    }
    if seq == orig.start_seq {
        return false;
    }
    let reversed =
        orig.state == EndpointState::SynAckSent && conn.resp.tcp.state == EndpointState::Inactive;
    !reversed
}

/// The TCP per-packet rules: history letters, endpoint state machine, sequence accounting
/// and stream reassembly. Stream events of the sender are pushed to `events` first; events
/// of the peer (gaps found through the sender's acks) start at `*peer_events_start`.
fn tcp_update(
    conn: &mut Conn,
    is_orig: bool,
    seg: &decode::TcpSegment<'_>,
    ts_ns: i64,
    events: &mut Vec<StreamEvent>,
    peer_events_start: &mut usize,
) {
    let flags = seg.flags;
    let (syn, fin, rst, ack) = (
        flags & SYN != 0,
        flags & FIN != 0,
        flags & RST != 0,
        flags & ACK != 0,
    );
    let wants_data = !matches!(conn.app, AppState::Off);
    {
        let (me, _) = conn.sides(is_orig);
        if !me.tcp.initialized {
            me.tcp.init(seg.seq, syn);
        }
    }
    let rel = conn.sides(is_orig).0.tcp.rel(seg.seq);
    let len = u64::from(seg.payload_len);

    // History.
    let bits = u8::from(syn) + u8::from(fin) + u8::from(rst);
    if bits > 1 {
        if fin && rst {
            conn.check_history(is_orig, Once::FinRst, b'I');
        } else {
            conn.check_history(is_orig, Once::MultiFlag, b'Q');
        }
    } else if bits == 1 {
        if syn {
            let code = if ack { b'H' } else { b'S' };
            let last = conn.sides(is_orig).0.tcp.hist_last_syn;
            if conn.check_history(is_orig, Once::Syn, code) && last != Some(rel) {
                conn.add_history(is_orig, code);
            }
            conn.sides(is_orig).0.tcp.hist_last_syn = Some(rel);
        }
        if fin {
            let at = rel + len;
            let last = conn.sides(is_orig).0.tcp.hist_last_fin;
            if conn.check_history(is_orig, Once::Fin, b'F') && last != Some(at) {
                conn.add_history(is_orig, b'F');
            }
            conn.sides(is_orig).0.tcp.hist_last_fin = Some(at);
        }
        if rst {
            let last = conn.sides(is_orig).0.tcp.hist_last_rst;
            if conn.check_history(is_orig, Once::Rst, b'R') && last != Some(rel) {
                conn.add_history(is_orig, b'R');
            }
            conn.sides(is_orig).0.tcp.hist_last_rst = Some(rel);
        }
    } else if len > 0 {
        conn.check_history(is_orig, Once::Data, b'D');
    } else if ack {
        conn.check_history(is_orig, Once::Ack, b'A');
    }
    if seg.window == 0 && !syn && !rst {
        conn.scaled_history(is_orig, b'W', |s| {
            (&mut s.zero_windows, &mut s.zero_window_threshold)
        });
    }

    // Endpoint state machine.
    let reversal = {
        let (me, peer) = conn.sides(is_orig);
        let mut reversal = false;
        if syn && !ack && me.tcp.state == EndpointState::Inactive {
            if !is_orig && peer.tcp.state == EndpointState::SynAckSent {
                // The SYN/SYN-ACK pair arrived reversed: establish and flip below.
                me.tcp.set_state(EndpointState::Established);
                peer.tcp.set_state(EndpointState::Established);
                reversal = true;
            } else {
                me.tcp.set_state(EndpointState::SynSent);
            }
        } else if syn
            && ack
            && matches!(
                me.tcp.state,
                EndpointState::Inactive | EndpointState::SynSent | EndpointState::Partial
            )
        {
            if matches!(
                peer.tcp.state,
                EndpointState::SynSent | EndpointState::Established
            ) {
                me.tcp.set_state(EndpointState::Established);
                peer.tcp.set_state(EndpointState::Established);
            } else if me.tcp.state == EndpointState::Inactive {
                me.tcp.set_state(EndpointState::SynAckSent);
            }
        }
        if !syn && !fin && !rst && me.tcp.state == EndpointState::Inactive {
            // An ACK or data answering a SYN-ACK whose SYN was missed establishes both
            // sides; anything else without a SYN is mid-stream traffic.
            if peer.tcp.state == EndpointState::SynAckSent {
                me.tcp.set_state(EndpointState::Established);
                peer.tcp.set_state(EndpointState::Established);
            } else {
                me.tcp.set_state(EndpointState::Partial);
            }
        }
        if fin && !rst {
            me.tcp.fin_count += 1;
            if me.tcp.fin_rel.is_none() {
                me.tcp.fin_rel = Some(rel + u64::from(syn) + len);
            }
            if me.tcp.state != EndpointState::Reset {
                if me.tcp.state == EndpointState::Inactive {
                    me.tcp.set_state(EndpointState::Partial);
                }
                me.tcp.set_state(EndpointState::Closed);
            }
            me.tcp.did_close = true;
        }
        if rst {
            if me.tcp.state == EndpointState::Inactive {
                me.tcp.set_state(EndpointState::Partial);
            }
            me.tcp.set_state(EndpointState::Reset);
            // A reset closes this side too: later packets no longer extend `duration`.
            me.tcp.did_close = true;
        }

        // Sequence accounting.
        let seq_len = len + u64::from(syn) + u64::from(fin);
        let retransmission = len > 0 && !syn && rel < me.tcp.last_rel;
        let end = rel + seq_len;
        if end > me.tcp.last_rel {
            me.tcp.last_rel = end;
        }
        me.tcp.advance_base(seg.seq);
        let data_rel = rel + u64::from(syn);
        if !seg.payload.is_empty() {
            me.tcp.stream.add(data_rel, seg.payload, wants_data, events);
        }
        *peer_events_start = events.len();
        if ack && !rst && peer.tcp.initialized {
            let acked = peer.tcp.rel(seg.ack);
            if acked > peer.tcp.ack_rel {
                peer.tcp.ack_rel = acked;
            }
            let data_end = peer.tcp.fin_rel.map_or(acked, |f| acked.min(f));
            peer.tcp.stream.acked(data_end, wants_data, events);
        }
        if retransmission {
            conn.scaled_history(is_orig, b'T', |s| {
                (&mut s.retransmissions, &mut s.retransmission_threshold)
            });
        }
        reversal
    };
    if reversal {
        conn.flip();
    }

    // Removal timers: a reset or a full close ends the connection after a short linger.
    let (o, r) = (conn.orig.tcp.state, conn.resp.tcp.state);
    let closed = |s: EndpointState| matches!(s, EndpointState::Closed | EndpointState::Reset);
    if conn.remove_at_ns.is_none() && (rst || (closed(o) && closed(r))) {
        conn.remove_at_ns = Some(ts_ns.saturating_add(TCP_CLOSE_DELAY_NS));
    }
}

/// ICMP "ports": the type, and the counterpart type of request/response pairs or the code
/// of one-way messages.
fn icmp_ports(v6: bool, icmp_type: u8, code: u8) -> (u16, u16) {
    let counterpart = if v6 {
        match icmp_type {
            128 => Some(129),
            129 => Some(128),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            130 => Some(131),
            131 => Some(130),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    } else {
        match icmp_type {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    };
    (u16::from(icmp_type), u16::from(counterpart.unwrap_or(code)))
}

/// What conn.log says about a connection that ended.
fn conn_summary(conn: &Conn) -> ConnSummary<'_> {
    let duration_ns = conn.last_ns.saturating_sub(conn.start_ns);
    let (orig_size, resp_size, state) = match conn.proto {
        Proto::Tcp => {
            let o = conn.orig.tcp.size(conn.resp.tcp.state);
            let r = conn.resp.tcp.size(conn.orig.tcp.state);
            (
                o,
                r,
                tcp_conn_state(
                    conn.orig.tcp.state,
                    conn.resp.tcp.state,
                    o,
                    r,
                    &conn.history,
                ),
            )
        }
        Proto::Udp => (
            conn.orig.payload_bytes,
            conn.resp.payload_bytes,
            udp_conn_state(conn.orig.pkts > 0, conn.resp.pkts > 0),
        ),
        Proto::Icmp => (conn.orig.payload_bytes, conn.resp.payload_bytes, "OTH"),
    };
    ConnSummary {
        ts: secs(conn.start_ns),
        uid: &conn.info.uid,
        orig_h: conn.info.orig_h,
        orig_p: conn.info.orig_p,
        resp_h: conn.info.resp_h,
        resp_p: conn.info.resp_p,
        proto: match conn.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        },
        service: conn.service,
        duration: (duration_ns > 0).then(|| ConnDuration {
            seconds: duration_ns as f64 / 1e9,
            orig_bytes: orig_size,
            resp_bytes: resp_size,
        }),
        conn_state: state,
        missed_bytes: conn.missed_bytes,
        history: &conn.history,
        orig_pkts: conn.orig.pkts,
        orig_ip_bytes: conn.orig.ip_bytes,
        resp_pkts: conn.resp.pkts,
        resp_ip_bytes: conn.resp.ip_bytes,
        ip_proto: conn.ip_proto,
    }
}

fn secs(ts_ns: i64) -> f64 {
    ts_ns as f64 / 1e9
}
