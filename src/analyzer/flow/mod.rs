//! The connection table: turns decoded IP packets into Zeek connections, applies Zeek's
//! direction, state, history and byte-accounting rules, feeds application analyzers with
//! in-order payload, and writes one conn.log line per connection when it is removed
//! (end of connection after the close/reset delay, connection-attempt timeout, inactivity
//! timeout, reuse of the 5-tuple, or end of capture).
//!
//! Layout: `conn` (one connection: key, sides, timers, its conn.log summary), `conn_state`
//! (Zeek's `conn_state` decision), `history`
//! (history letters), `tcp_rules` (the per-segment TCP rules), `tcp` (endpoint sequence
//! space and stream reassembly), `direction` (who is the originator), `expiry` (when
//! connections are due).
//!
//! Connections live in a slab indexed by a compact hash index (`index`) of their direction-agnostic key, so
//! nothing is moved when the map grows and a packet costs one lookup. Memory is proportional
//! to live connections: every 10 s of capture time the connections whose timers fired are
//! removed, found through the expiry queue rather than by scanning the table.

mod conn;
mod conn_state;
pub mod direction;
mod expiry;
mod history;
mod index;
mod slab;
pub mod tcp;
mod tcp_rules;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::app::{self, AppAnalyzer, AppOutput, ConnInfo, SharedState, Transport};
use super::decode::{self, IpPacket, ACK, SYN};
use super::icmp::icmp_ports;
use super::log::LogSink;
use super::uid::UidGenerator;
use super::weird::WeirdLog;
use conn::{secs, AppState, Conn, ConnKey, Detection, Proto, Timer, TCP_ATTEMPT_DELAY_NS};
use direction::{flip_at_creation, ntp_mode_says_flip};
use expiry::{Due, ExpiryQueue};
use history::Once;
use index::{key_hash, FlowIndex};
use slab::{Slab, Slot};
use tcp::{EndpointState, StreamEvent};
use tcp_rules::Segment;

/// How often (in capture time) idle connections are swept out of the table.
const SWEEP_INTERVAL_NS: i64 = 10 * conn::NS;
/// How many connections ahead a sweep prefetches (see `prefetch`).
const SWEEP_PREFETCH: usize = 8;
/// Application detection gives up after this many payload bytes per side ...
const DETECT_MAX_BYTES_PER_SIDE: usize = 4096;
/// ... or this many payload chunks in total (or twice the per-side bytes held in total).
const DETECT_MAX_CHUNKS: u32 = 16;

/// Most announced connections awaited at once (Zeek's `FTP::max_expected_data_channels`);
/// an announcement past it is dropped.
const MAX_AWAITED: usize = 100_000;
/// How long an announced connection is awaited (Zeek schedules the analyzer for 5 min).
const AWAIT_NS: i64 = 300 * conn::NS;

/// A connection an analyzer announced, awaited at its responder address and port.
struct Awaited {
    orig_h: IpAddr,
    until_ns: i64,
    start: Box<dyn Fn() -> Box<dyn AppAnalyzer> + Send>,
}

/// The index hash of `key`: `hint` when the packet's prefetch computed it already.
fn hash_of(key: &ConnKey, hint: Option<u32>) -> u32 {
    match hint {
        Some(hash) => {
            debug_assert_eq!(
                hash,
                key_hash(key),
                "a prefetch hint is the packet's key hash"
            );
            hash
        }
        None => key_hash(key),
    }
}

/// Which logs the table produces.
#[derive(Debug, Clone, Copy)]
pub struct TableOptions {
    pub ignore_checksums: bool,
    pub write_conn: bool,
    pub write_weird: bool,
    /// The seed of conn.log's `community_id`, or `None` for no such column.
    pub community_id: Option<u16>,
}

/// The connection table of one analysis run.
pub struct FlowTable {
    index: FlowIndex,
    /// Live connections.
    slots: Slab<Conn>,
    expiry: ExpiryQueue,
    ends: Ends,
    uids: UidGenerator,
    serial: u64,
    next_sweep_ns: Option<i64>,
    events: Vec<StreamEvent>,
    /// Expiry entries that came up in one sweep, and the connections it removes (by serial);
    /// reused between sweeps.
    entries: Vec<Due>,
    due: Vec<(u64, Slot)>,
    /// Announced connections by responder address and port (the last announcement of one
    /// wins, as in Zeek's `ftp_data_expected`).
    awaited: HashMap<(IpAddr, u16), Awaited>,
    /// Live connections whose analyzer ends promptly, by slot and serial, and the earliest
    /// of their deadlines: a sweep runs then, not only every [`SWEEP_INTERVAL_NS`].
    prompt: Vec<(Slot, u64)>,
    prompt_due_ns: i64,
}

impl FlowTable {
    pub fn new(opts: TableOptions) -> Self {
        FlowTable {
            index: FlowIndex::default(),
            slots: Slab::default(),
            expiry: ExpiryQueue::default(),
            ends: Ends {
                opts,
                weirds: WeirdLog::default(),
                app_weirds: Vec::new(),
                shared: SharedState::default(),
                connections: 0,
                services: BTreeMap::new(),
            },
            uids: UidGenerator::default(),
            serial: 0,
            next_sweep_ns: None,
            events: Vec::new(),
            entries: Vec::new(),
            due: Vec::new(),
            awaited: HashMap::new(),
            prompt: Vec::new(),
            prompt_due_ns: i64::MAX,
        }
    }

    /// Connections logged so far.
    pub fn connections(&self) -> u64 {
        self.ends.connections
    }

    /// Connections logged per service ("-" for none), leaving the table's count empty.
    pub fn take_services(&mut self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.ends.services)
    }

    /// Live connections.
    pub fn live(&self) -> usize {
        self.slots.len()
    }

    /// Processes one (reassembled, if fragmented) IP packet. `hash_hint` is what
    /// [`FlowTable::prefetch_index`] returned for it, if it was asked: the hash is not
    /// computed twice.
    pub fn packet(
        &mut self,
        ts_ns: i64,
        ip: &IpPacket<'_>,
        hash_hint: Option<u32>,
        sink: &mut dyn LogSink,
    ) {
        self.sweep(ts_ns, sink);
        // Before the packet, as Zeek's timers run before its events.
        self.ends.shared.expire(secs(ts_ns), sink);
        let slot = match ip.proto {
            6 => self.tcp_packet(ts_ns, ip, hash_hint, sink),
            17 => self.udp_packet(ts_ns, ip, hash_hint, sink),
            1 if ip.src.is_ipv4() => self.icmp_packet(ts_ns, ip, sink),
            58 if ip.src.is_ipv6() => self.icmp_packet(ts_ns, ip, sink),
            _ => None,
        };
        if let Some(slot) = slot {
            self.reschedule(slot);
        }
    }

    /// The first half of a prefetch for a packet that comes a few packets later: the hash of
    /// its connection's key (TCP and UDP; `None` for anything else), whose index entry starts
    /// loading now. [`FlowTable::prefetch_conn`] with that hash, a little later, starts
    /// loading the connection. Hints only: the packet is processed as if none were given.
    pub fn prefetch_index(&self, ip: &IpPacket<'_>) -> Option<u32> {
        if !matches!(ip.proto, 6 | 17) || ip.fragment.is_some() {
            return None;
        }
        let ports = ip.payload.get(..4)?;
        let sport = u16::from_be_bytes([ports[0], ports[1]]);
        let dport = u16::from_be_bytes([ports[2], ports[3]]);
        let hash = key_hash(&ConnKey::new(ip.src, sport, ip.dst, dport, ip.proto));
        self.index.prefetch(hash);
        Some(hash)
    }

    /// The second half: starts loading the connection the index entry of `hash` points to.
    pub fn prefetch_conn(&self, hash: u32) {
        if let Some(slot) = self.index.first_with_hash(hash) {
            self.slots.prefetch(slot);
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
        if self.ends.opts.write_weird {
            self.ends
                .weirds
                .unattached(sink, secs(ts_ns), flow, name, source);
        }
    }

    /// End of capture: every remaining connection is logged, oldest first.
    pub fn finish(&mut self, sink: &mut dyn LogSink) {
        let mut rest: Vec<(u64, Slot)> = self
            .slots
            .iter()
            .map(|(slot, c)| (c.serial, slot))
            .collect();
        rest.sort_unstable();
        self.index.clear();
        for (_, slot) in rest {
            self.end_slot(slot, sink);
        }
        self.slots.clear();
        self.ends.shared.finish(sink);
    }

    fn conn(&mut self, slot: Slot) -> Option<&mut Conn> {
        self.slots.get_mut(slot)
    }

    /// Logs the connection in `slot` and drops it where it lies (connections are large; they
    /// are not moved out to be logged). The caller has removed its key from the index.
    fn end_slot(&mut self, slot: Slot, sink: &mut dyn LogSink) {
        if let Some(conn) = self.slots.get_mut(slot) {
            let ts_ns = conn.last_ns;
            self.ends.end(conn, sink);
            self.await_announced(ts_ns);
        }
        self.slots.discard(slot);
    }

    /// Takes the connections analyzers announced during the last call into the table.
    fn await_announced(&mut self, ts_ns: i64) {
        for e in self.ends.shared.expected.drain(..) {
            let key = (e.resp_h, e.resp_p);
            if self.awaited.len() >= MAX_AWAITED && !self.awaited.contains_key(&key) {
                self.awaited.retain(|_, a| a.until_ns > ts_ns);
                if self.awaited.len() >= MAX_AWAITED {
                    continue;
                }
            }
            self.awaited.insert(
                key,
                Awaited {
                    orig_h: e.orig_h,
                    until_ns: ts_ns.saturating_add(AWAIT_NS),
                    start: e.start,
                },
            );
        }
    }

    /// Gives a new TCP connection the analyzer announced for it, if any (Zeek's
    /// `scheduled_analyzer_applied`): its service is known from the start.
    fn attach_awaited(&mut self, slot: Slot, ts_ns: i64) {
        if self.awaited.is_empty() {
            return;
        }
        let Some(conn) = self.slots.get_mut(slot) else {
            return;
        };
        let key = (conn.info.resp_h, conn.info.resp_p);
        let Some(a) = self.awaited.get(&key) else {
            return;
        };
        if a.until_ns <= ts_ns {
            self.awaited.remove(&key);
            return;
        }
        if a.orig_h != conn.info.orig_h {
            return;
        }
        let analyzer = (a.start)();
        conn.service = analyzer.service();
        if analyzer.ends_promptly() {
            self.prompt.push((slot, conn.serial));
        }
        conn.app = AppState::Active(analyzer);
    }

    /// Pushes the connection's deadline to the expiry queue if it moved earlier than the one
    /// scheduled (a later one is found when the old entry comes up).
    fn reschedule(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else {
            return;
        };
        let at_ns = conn.deadline_ns();
        let serial = conn.serial;
        if !self.prompt.is_empty() && self.prompt.contains(&(slot, serial)) {
            self.prompt_due_ns = self.prompt_due_ns.min(at_ns);
        }
        let Some(conn) = self.conn(slot) else {
            return;
        };
        if at_ns < conn.scheduled_ns {
            conn.scheduled_ns = at_ns;
            let serial = conn.serial;
            self.expiry.schedule(Due {
                at_ns,
                serial,
                slot,
            });
        }
    }

    fn sweep(&mut self, now_ns: i64, sink: &mut dyn LogSink) {
        let due_at = *self
            .next_sweep_ns
            .get_or_insert(now_ns.saturating_add(SWEEP_INTERVAL_NS));
        if now_ns < due_at && now_ns < self.prompt_due_ns {
            return;
        }
        if now_ns >= due_at {
            self.next_sweep_ns = Some(now_ns.saturating_add(SWEEP_INTERVAL_NS));
        }
        let mut entries = std::mem::take(&mut self.entries);
        self.expiry.drain_due(now_ns, &mut entries);
        let mut due = std::mem::take(&mut self.due);
        // Connections come up in deadline order, scattered over the slab, and are cold: each
        // is asked for a few entries before it is looked at (as are their index entries
        // below), so the misses overlap.
        for i in 0..entries.len() {
            if let Some(ahead) = entries.get(i + SWEEP_PREFETCH) {
                self.slots.prefetch(ahead.slot);
            }
            let entry = entries[i];
            let Some(conn) = self.slots.get_mut(entry.slot) else {
                continue;
            };
            // Gone (slot reused) or superseded by an earlier entry: nothing to do.
            if conn.serial != entry.serial || conn.scheduled_ns != entry.at_ns {
                continue;
            }
            if conn.expired(now_ns) {
                conn.scheduled_ns = i64::MIN;
                due.push((conn.serial, entry.slot));
            } else {
                // Active since it was scheduled: check again at its current deadline.
                conn.scheduled_ns = i64::MAX;
                self.reschedule(entry.slot);
            }
        }
        entries.clear();
        due.sort_unstable();
        for (i, &(_, slot)) in due.iter().enumerate() {
            if let Some(&(_, further)) = due.get(i + 2 * SWEEP_PREFETCH) {
                self.slots.prefetch(further);
            }
            if let Some(&(_, ahead)) = due.get(i + SWEEP_PREFETCH) {
                if let Some(conn) = self.slots.get(ahead) {
                    self.index.prefetch(key_hash(&conn.key()));
                }
            }
            if let Some(conn) = self.slots.get(slot) {
                self.index.remove(key_hash(&conn.key()), slot);
            }
            self.end_slot(slot, sink);
        }
        due.clear();
        self.due = due;
        self.entries = entries;
        self.update_prompt_due();
    }

    /// The earliest deadline of the live connections that end promptly (see
    /// [`AppAnalyzer::ends_promptly`]); forgets those that are gone.
    fn update_prompt_due(&mut self) {
        let slots = &self.slots;
        self.prompt
            .retain(|&(slot, serial)| slots.get(slot).is_some_and(|c| c.serial == serial));
        self.prompt_due_ns = self
            .prompt
            .iter()
            .filter_map(|&(slot, _)| slots.get(slot).map(Conn::deadline_ns))
            .min()
            .unwrap_or(i64::MAX);
    }

    /// Finds the connection of `key`, first removing (and logging) it if one of its timers
    /// has fired by `now_ns` or `reuse` says the 5-tuple starts a new connection.
    fn lookup(
        &mut self,
        key: &ConnKey,
        hash: u32,
        now_ns: i64,
        reuse: impl FnOnce(&Conn) -> bool,
        sink: &mut dyn LogSink,
    ) -> Option<Slot> {
        let slots = &self.slots;
        let slot = self
            .index
            .find(hash, |s| slots.get(s).is_some_and(|c| c.key() == *key))?;
        let conn = self.slots.get(slot)?;
        if reuse(conn) || conn.expired(now_ns) {
            self.index.remove(hash, slot);
            self.end_slot(slot, sink);
            return None;
        }
        Some(slot)
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        key: ConnKey,
        hash: u32,
        ts_ns: i64,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: Proto,
        ip_proto: u8,
        flip: bool,
    ) -> Slot {
        self.serial += 1;
        let info = ConnInfo {
            uid: self.uids.next_uid(),
            orig_h: src,
            orig_p: sport,
            resp_h: dst,
            resp_p: dport,
            transport: if proto == Proto::Tcp {
                Transport::Tcp
            } else {
                Transport::Udp
            },
        };
        let mut conn = Conn::new(info, proto, ip_proto, self.serial, ts_ns);
        debug_assert!(
            conn.key() == key,
            "a connection's key follows from its ends"
        );
        if flip {
            conn.flip();
        }
        let slot = self.slots.insert(conn);
        self.index.insert(hash, slot);
        slot
    }

    fn tcp_packet(
        &mut self,
        ts_ns: i64,
        ip: &IpPacket<'_>,
        hint: Option<u32>,
        sink: &mut dyn LogSink,
    ) -> Option<Slot> {
        let seg = match decode::parse_tcp(ip) {
            Ok(s) => s,
            Err(name) => {
                self.unattached_weird(sink, ts_ns, Some((ip.src, ip.dst)), name, "TCP");
                return None;
            }
        };
        let key = ConnKey::new(ip.src, seg.src_port, ip.dst, seg.dst_port, 6);
        let hash = hash_of(&key, hint);
        let pure_syn = seg.flags & (SYN | ACK) == SYN;
        let found = self.lookup(
            &key,
            hash,
            ts_ns,
            |c| pure_syn && is_tcp_reuse(c, seg.seq),
            sink,
        );
        let slot = match found {
            Some(slot) => slot,
            None => {
                let flip = flip_at_creation(
                    true,
                    seg.src_port,
                    ip.dst,
                    seg.dst_port,
                    pure_syn,
                    seg.flags & SYN != 0,
                );
                let slot = self.create(
                    key,
                    hash,
                    ts_ns,
                    ip.src,
                    seg.src_port,
                    ip.dst,
                    seg.dst_port,
                    Proto::Tcp,
                    6,
                    flip,
                );
                self.attach_awaited(slot, ts_ns);
                slot
            }
        };
        let check = !self.ends.opts.ignore_checksums && ip.complete();
        let conn = self.slots.get_mut(slot)?;
        let mut is_orig = conn.is_orig(ip.src, seg.src_port);
        conn.last_activity_ns = ts_ns;
        if check && !decode::transport_checksum_ok(ip) {
            conn.scaled_history(is_orig, b'C', |s| &mut s.checksum_errors);
            self.conn_weird(slot, ts_ns, "bad_TCP_checksum", String::new(), "TCP", sink);
            return Some(slot);
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
            conn.attempt_deadline_ns = Timer::at(ts_ns.saturating_add(TCP_ATTEMPT_DELAY_NS));
        }
        {
            let side = conn.side(is_orig);
            side.pkts += 1;
            side.ip_bytes += u64::from(ip.ip_len);
        }
        if !(conn.orig.tcp.did_close && conn.resp.tcp.did_close) {
            conn.last_ns = ts_ns;
        }
        let segment = Segment {
            flags: seg.flags,
            seq: seg.seq,
            ack: seg.ack,
            window: seg.window,
            payload: seg.payload,
            payload_len: seg.payload_len,
        };
        let peer_events_start = tcp_rules::apply(conn, is_orig, &segment, ts_ns, &mut self.events);
        if let Some(shift) = seg.window_scale.filter(|&s| s > 14) {
            self.conn_weird(
                slot,
                ts_ns,
                "TCP_scale_range",
                shift.to_string(),
                "TCP",
                sink,
            );
        }
        self.dispatch_stream_events(slot, is_orig, peer_events_start, seg.payload, ts_ns, sink);
        Some(slot)
    }

    /// Hands stream events collected by the TCP rules (own data, and gaps found on either
    /// side) to the application layer. The peer's events go first, as in Zeek, which
    /// processes a segment's acknowledgement (releasing the peer's data held behind a hole)
    /// before the segment's own data: a reply released by an ack precedes the request that
    /// carries the ack.
    fn dispatch_stream_events(
        &mut self,
        slot: Slot,
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
        let start = peer_events_start.min(events.len());
        let (own, peer) = events.split_at(start);
        let ordered = peer
            .iter()
            .map(|ev| (!is_orig, ev))
            .chain(own.iter().map(|ev| (is_orig, ev)));
        for (side_is_orig, ev) in ordered {
            match ev {
                StreamEvent::Gap(len) => {
                    if let Some(conn) = self.slots.get_mut(slot) {
                        conn.missed_bytes += len;
                        conn.scaled_history(side_is_orig, b'G', |s| &mut s.tcp.gaps);
                        match &mut conn.app {
                            AppState::Active(a) => {
                                let mut out = AppOutput {
                                    logs: &mut *sink,
                                    weirds: &mut self.ends.app_weirds,
                                    shared: &mut self.ends.shared,
                                };
                                a.gap(&conn.info, secs(ts_ns), side_is_orig, *len, &mut out);
                            }
                            AppState::Detecting(_) | AppState::Undetected => {
                                conn.app = AppState::Off
                            }
                            AppState::Settled | AppState::Off => {}
                        }
                    }
                    self.await_announced(ts_ns);
                    self.flush_app_weirds(slot, ts_ns, sink);
                }
                StreamEvent::Data(data) => self.deliver_app(slot, side_is_orig, ts_ns, data, sink),
                StreamEvent::Current(skip) => {
                    let fresh = payload.get(*skip..).unwrap_or_default();
                    self.deliver_app(slot, side_is_orig, ts_ns, fresh, sink);
                }
            }
        }
        let mut events = events;
        events.clear();
        self.events = events;
    }

    fn udp_packet(
        &mut self,
        ts_ns: i64,
        ip: &IpPacket<'_>,
        hint: Option<u32>,
        sink: &mut dyn LogSink,
    ) -> Option<Slot> {
        let dg = match decode::parse_udp(ip) {
            Ok(d) => d,
            Err(name) => {
                self.unattached_weird(sink, ts_ns, Some((ip.src, ip.dst)), name, "UDP");
                return None;
            }
        };
        let key = ConnKey::new(ip.src, dg.src_port, ip.dst, dg.dst_port, 17);
        let hash = hash_of(&key, hint);
        let slot = match self.lookup(&key, hash, ts_ns, |_| false, sink) {
            Some(slot) => slot,
            None => {
                let flip = flip_at_creation(false, dg.src_port, ip.dst, dg.dst_port, false, false);
                self.create(
                    key,
                    hash,
                    ts_ns,
                    ip.src,
                    dg.src_port,
                    ip.dst,
                    dg.dst_port,
                    Proto::Udp,
                    17,
                    flip,
                )
            }
        };
        let check = !self.ends.opts.ignore_checksums && ip.complete();
        let conn = self.slots.get_mut(slot)?;
        let mut is_orig = conn.is_orig(ip.src, dg.src_port);
        conn.last_activity_ns = ts_ns;
        if check && !decode::transport_checksum_ok(ip) {
            conn.scaled_history(is_orig, b'C', |s| &mut s.checksum_errors);
            self.conn_weird(slot, ts_ns, "bad_UDP_checksum", String::new(), "UDP", sink);
            return Some(slot);
        }
        conn.last_ns = ts_ns;
        conn.history.once(is_orig, Once::Data, b'D');
        // Zeek's NTP analyzer flips the roles while the packet is delivered, before its
        // ConnSize analyzer counts it: the packet counts under the role it arrived with (see
        // `Conn::flip_during_udp_delivery`), the NTP analyzer sees it with the new roles. The
        // DNS response-first flip is the DNS analyzer's (`take_role_flip`).
        let flow = usize::from(is_orig);
        let counted_as_orig = is_orig;
        if !conn.ntp_flipped[flow]
            && ntp_mode_says_flip(conn.info.orig_p, conn.info.resp_p, is_orig, dg.payload)
        {
            conn.ntp_flipped[flow] = true;
            conn.flip_during_udp_delivery();
            is_orig = !is_orig;
        }
        let side = conn.side(counted_as_orig);
        side.pkts += 1;
        side.ip_bytes += u64::from(ip.ip_len);
        side.payload_bytes += u64::from(dg.payload_len);
        if !dg.payload.is_empty() {
            self.deliver_app(slot, is_orig, ts_ns, dg.payload, sink);
        }
        Some(slot)
    }

    fn icmp_packet(
        &mut self,
        ts_ns: i64,
        ip: &IpPacket<'_>,
        sink: &mut dyn LogSink,
    ) -> Option<Slot> {
        let msg = match decode::parse_icmp(ip) {
            Ok(m) => m,
            Err(name) => {
                self.unattached_weird(sink, ts_ns, Some((ip.src, ip.dst)), name, "ICMP");
                return None;
            }
        };
        let (sport, dport) = icmp_ports(ip.src.is_ipv6(), msg.icmp_type, msg.code);
        let key = ConnKey::new(ip.src, sport, ip.dst, dport, ip.proto);
        let hash = key_hash(&key);
        let slot = match self.lookup(&key, hash, ts_ns, |_| false, sink) {
            Some(slot) => slot,
            None => self.create(
                key,
                hash,
                ts_ns,
                ip.src,
                sport,
                ip.dst,
                dport,
                Proto::Icmp,
                ip.proto,
                false,
            ),
        };
        let check = !self.ends.opts.ignore_checksums && ip.complete();
        let conn = self.slots.get_mut(slot)?;
        let is_orig = conn.is_orig(ip.src, sport);
        conn.last_activity_ns = ts_ns;
        if check && !decode::transport_checksum_ok(ip) {
            self.conn_weird(
                slot,
                ts_ns,
                "bad_ICMP_checksum",
                String::new(),
                "ICMP",
                sink,
            );
            return Some(slot);
        }
        conn.last_ns = ts_ns;
        let side = conn.side(is_orig);
        side.pkts += 1;
        side.ip_bytes += u64::from(ip.ip_len);
        side.payload_bytes += u64::from(ip.payload_len.saturating_sub(8));
        Some(slot)
    }

    fn deliver_app(
        &mut self,
        slot: Slot,
        is_orig: bool,
        ts_ns: i64,
        data: &[u8],
        sink: &mut dyn LogSink,
    ) {
        let Some(conn) = self.slots.get_mut(slot) else {
            return;
        };
        let ts = secs(ts_ns);
        let mut out = AppOutput {
            logs: &mut *sink,
            weirds: &mut self.ends.app_weirds,
            shared: &mut self.ends.shared,
        };
        match &mut conn.app {
            AppState::Off | AppState::Settled => return,
            AppState::Active(a) => {
                a.deliver(&conn.info, ts, is_orig, data, &mut out);
                // A service may grow (SMTP after STARTTLS is "smtp,ssl"), or go on a
                // protocol violation.
                if let Some(service) = a.service() {
                    conn.service = Some(service);
                } else if a.failed() {
                    conn.service = None;
                }
                if a.take_role_flip() {
                    conn.flip();
                }
            }
            AppState::Undetected => {
                // The first payload: claimed at once in the usual case, so nothing is copied.
                let probe = match conn.proto {
                    Proto::Tcp => &data[..data.len().min(DETECT_MAX_BYTES_PER_SIDE)],
                    _ => data,
                };
                if let Some(mut analyzer) = app::detect(&conn.info, is_orig, probe) {
                    analyzer.deliver(&conn.info, ts, is_orig, data, &mut out);
                    if analyzer.take_role_flip() {
                        conn.flip();
                    }
                    conn.service = conn.service.or(analyzer.service());
                    conn.app = AppState::Active(analyzer);
                } else {
                    let mut d = Box::<Detection>::default();
                    d.chunks = 1;
                    d.seen_bytes = data.len();
                    d.seen.push((is_orig, ts, data.to_vec()));
                    if conn.proto == Proto::Tcp {
                        d.prefix[usize::from(!is_orig)].extend_from_slice(probe);
                    }
                    conn.app = if gives_up(&d) {
                        AppState::Off
                    } else {
                        AppState::Detecting(d)
                    };
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
                } else if gives_up(d) {
                    conn.app = AppState::Off;
                }
            }
        }
        if let AppState::Active(a) = &conn.app {
            let quiet = !self.ends.opts.write_weird && a.logs().iter().all(|l| !sink.wants(l));
            if quiet && conn.service.is_some() && a.conn_settled() {
                conn.app = AppState::Settled;
            }
        }
        self.await_announced(ts_ns);
        self.flush_app_weirds(slot, ts_ns, sink);
    }

    fn flush_app_weirds(&mut self, slot: Slot, ts_ns: i64, sink: &mut dyn LogSink) {
        if self.ends.app_weirds.is_empty() {
            return;
        }
        for (name, addl) in std::mem::take(&mut self.ends.app_weirds) {
            let source = self
                .conn(slot)
                .map(|c| app_weird_source(c, name))
                .unwrap_or_default();
            self.conn_weird(slot, ts_ns, name, addl, &source, sink);
        }
    }

    /// Logs a weird for a connection, once per name per connection.
    fn conn_weird(
        &mut self,
        slot: Slot,
        ts_ns: i64,
        name: &'static str,
        addl: String,
        source: &str,
        sink: &mut dyn LogSink,
    ) {
        if !self.ends.opts.write_weird {
            return;
        }
        let Some(conn) = self.slots.get_mut(slot) else {
            return;
        };
        if !conn.first_time_weird(name) {
            return;
        }
        self.ends
            .weirds
            .conn(sink, secs(ts_ns), &conn.weird_conn(), name, &addl, source);
    }
}

/// What the table keeps across connections to log them when they end.
struct Ends {
    opts: TableOptions,
    weirds: WeirdLog,
    /// Weirds an analyzer raised during one call, written by the table.
    app_weirds: Vec<(&'static str, String)>,
    /// What the analyzers keep across connections (DHCP exchanges).
    shared: SharedState,
    /// Connections logged so far.
    connections: u64,
    /// Connections per service ("-" for none).
    services: BTreeMap<String, u64>,
}

impl Ends {
    /// Hands a connection's remaining payload to its analyzer, lets the analyzer finish, and
    /// writes its weirds and its conn.log line.
    fn end(&mut self, conn: &mut Conn, sink: &mut dyn LogSink) {
        // Whatever is still buffered reaches the analyzer before it finishes.
        if conn.proto == Proto::Tcp && conn.app.wants_data() {
            let mut events = Vec::new();
            conn.orig.tcp.stream.flush(true, &mut events);
            let split = events.len();
            conn.resp.tcp.stream.flush(true, &mut events);
            if let AppState::Active(a) = &mut conn.app {
                let mut out = AppOutput {
                    logs: &mut *sink,
                    weirds: &mut self.app_weirds,
                    shared: &mut self.shared,
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
                shared: &mut self.shared,
            };
            a.finish(&conn.info, secs(conn.last_ns), &mut out);
            if let Some(service) = a.service() {
                conn.service = Some(service);
            }
        }
        if !self.app_weirds.is_empty() && self.opts.write_weird {
            for (name, addl) in std::mem::take(&mut self.app_weirds) {
                let source = app_weird_source(conn, name);
                if conn.first_time_weird(name) {
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
        let service = conn.service.unwrap_or("-");
        match self.services.get_mut(service) {
            Some(count) => *count += 1,
            None => {
                self.services.insert(service.to_owned(), 1);
            }
        }
        if self.opts.write_conn {
            conn.summary().write(sink, self.opts.community_id);
        }
    }
}

/// weird.log's `source` of a weird an application analyzer raised: what the analyzer says,
/// else its protocol, the connection's (first) service in upper case.
fn app_weird_source(conn: &Conn, name: &'static str) -> String {
    if let AppState::Active(a) = &conn.app {
        if let Some(source) = a.weird_source(name) {
            return source.to_string();
        }
    }
    conn.service
        .and_then(|s| s.split(',').next())
        .map(str::to_ascii_uppercase)
        .unwrap_or_default()
}

/// Detection gives up on a connection after enough chunks or bytes without a match.
fn gives_up(d: &Detection) -> bool {
    d.chunks >= DETECT_MAX_CHUNKS
        || d.seen_bytes >= 2 * DETECT_MAX_BYTES_PER_SIDE
        || d.prefix
            .iter()
            .any(|p| p.len() >= DETECT_MAX_BYTES_PER_SIDE)
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
