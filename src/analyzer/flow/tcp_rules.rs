//! Zeek's per-packet TCP rules, in the order the flow table applies them to each segment:
//! the history letters ([`record_history`]), the endpoint state machine
//! ([`advance_endpoint_states`]), the sequence accounting and stream reassembly
//! ([`account_sequence`]), then the removal timers ([`arm_removal`]). [`apply`] runs them
//! all; each part is a function of the connection and the segment so it can be tested alone.

use super::conn::{Conn, Timer, TCP_CLOSE_DELAY_NS};
use super::history::Once;
use super::tcp::{EndpointState, StreamEvent};
use crate::analyzer::decode::{ACK, FIN, RST, SYN};

/// What the rules need of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub payload: &'a [u8],
    /// Payload length per the IP header (the captured payload may be shorter).
    pub payload_len: u32,
}

impl Segment<'_> {
    fn syn(&self) -> bool {
        self.flags & SYN != 0
    }
    fn fin(&self) -> bool {
        self.flags & FIN != 0
    }
    fn rst(&self) -> bool {
        self.flags & RST != 0
    }
    fn ack_flag(&self) -> bool {
        self.flags & ACK != 0
    }
}

/// Applies every rule for one segment sent by the originator (`is_orig`) or the responder.
/// Stream events of the sender are pushed to `events` first; the returned index is where
/// the peer's events (gaps found through the sender's acks) start.
pub fn apply(
    conn: &mut Conn,
    is_orig: bool,
    seg: &Segment<'_>,
    ts_ns: i64,
    events: &mut Vec<StreamEvent>,
) -> usize {
    {
        let me = &mut conn.side(is_orig).tcp;
        if !me.initialized {
            me.init(seg.seq, seg.syn());
        }
    }
    let rel = conn.side(is_orig).tcp.rel(seg.seq);
    record_history(conn, is_orig, seg, rel);
    let reversal = advance_endpoint_states(conn, is_orig, seg, rel);
    let peer_events_start = account_sequence(conn, is_orig, seg, rel, events);
    if reversal {
        conn.flip();
    }
    arm_removal(conn, seg, ts_ns);
    peer_events_start
}

/// History letters: two or more of SYN/FIN/RST give `I` (FIN+RST) or `Q`, once; otherwise
/// SYN gives `S` (`H` with ACK), FIN `F`, RST `R`, repeated only when the sequence number
/// differs from the last such packet; no flag gives `D` with payload or `A` for a bare ACK,
/// once per side. A zero window adds `W` on the logarithmic scale. `rel` is the segment's
/// relative sequence number.
pub fn record_history(conn: &mut Conn, is_orig: bool, seg: &Segment<'_>, rel: u64) {
    let (syn, fin, rst, ack) = (seg.syn(), seg.fin(), seg.rst(), seg.ack_flag());
    let len = u64::from(seg.payload_len);
    let bits = u8::from(syn) + u8::from(fin) + u8::from(rst);
    if bits > 1 {
        if fin && rst {
            conn.history.once(is_orig, Once::FinRst, b'I');
        } else {
            conn.history.once(is_orig, Once::MultiFlag, b'Q');
        }
    } else if bits == 1 {
        if syn {
            let code = if ack { b'H' } else { b'S' };
            let last = conn.side(is_orig).tcp.hist_last_syn;
            if conn.history.once(is_orig, Once::Syn, code) && last != Some(rel) {
                conn.history.push(is_orig, code);
            }
            conn.side(is_orig).tcp.hist_last_syn = Some(rel);
        }
        if fin {
            let at = rel + len;
            let last = conn.side(is_orig).tcp.hist_last_fin;
            if conn.history.once(is_orig, Once::Fin, b'F') && last != Some(at) {
                conn.history.push(is_orig, b'F');
            }
            conn.side(is_orig).tcp.hist_last_fin = Some(at);
        }
        if rst {
            let last = conn.side(is_orig).tcp.hist_last_rst;
            if conn.history.once(is_orig, Once::Rst, b'R') && last != Some(rel) {
                conn.history.push(is_orig, b'R');
            }
            conn.side(is_orig).tcp.hist_last_rst = Some(rel);
        }
    } else if len > 0 {
        conn.history.once(is_orig, Once::Data, b'D');
    } else if ack {
        conn.history.once(is_orig, Once::Ack, b'A');
    }
    if seg.window == 0 && !syn && !rst {
        conn.scaled_history(is_orig, b'W', |s| &mut s.tcp.zero_windows);
    }
}

/// Zeek's endpoint state machine for the sender and its peer. Returns true when the segment
/// shows the roles reversed (a SYN answering the originator's SYN-ACK): the caller flips the
/// connection after the sequence accounting.
pub fn advance_endpoint_states(
    conn: &mut Conn,
    is_orig: bool,
    seg: &Segment<'_>,
    rel: u64,
) -> bool {
    let (syn, fin, rst, ack) = (seg.syn(), seg.fin(), seg.rst(), seg.ack_flag());
    let len = u64::from(seg.payload_len);
    let (me, peer) = conn.sides(is_orig);
    let (me, peer) = (&mut me.tcp, &mut peer.tcp);
    let mut reversal = false;
    if syn && !ack && me.state == EndpointState::Inactive {
        if !is_orig && peer.state == EndpointState::SynAckSent {
            // The SYN/SYN-ACK pair arrived reversed: establish and flip.
            me.set_state(EndpointState::Established);
            peer.set_state(EndpointState::Established);
            reversal = true;
        } else {
            me.set_state(EndpointState::SynSent);
        }
    } else if syn
        && ack
        && matches!(
            me.state,
            EndpointState::Inactive | EndpointState::SynSent | EndpointState::Partial
        )
    {
        if matches!(
            peer.state,
            EndpointState::SynSent | EndpointState::Established
        ) {
            me.set_state(EndpointState::Established);
            peer.set_state(EndpointState::Established);
        } else if me.state == EndpointState::Inactive {
            me.set_state(EndpointState::SynAckSent);
        }
    }
    if !syn && !fin && !rst && me.state == EndpointState::Inactive {
        // An ACK or data answering a SYN-ACK whose SYN was missed establishes both sides;
        // anything else without a SYN is mid-stream traffic.
        if peer.state == EndpointState::SynAckSent {
            me.set_state(EndpointState::Established);
            peer.set_state(EndpointState::Established);
        } else {
            me.set_state(EndpointState::Partial);
        }
    }
    if fin && !rst {
        me.fin_count += 1;
        if me.fin_rel.is_none() {
            me.fin_rel = Some(rel + u64::from(syn) + len);
        }
        if me.state != EndpointState::Reset {
            if me.state == EndpointState::Inactive {
                me.set_state(EndpointState::Partial);
            }
            me.set_state(EndpointState::Closed);
        }
        me.did_close = true;
    }
    if rst {
        if me.state == EndpointState::Inactive {
            me.set_state(EndpointState::Partial);
        }
        me.set_state(EndpointState::Reset);
        // A reset closes this side too: later packets no longer extend `duration`.
        me.did_close = true;
    }
    reversal
}

/// Sequence accounting: the highest sequence sent, the peer's acknowledgements (which reveal
/// content gaps), retransmissions (`T`), and the in-order stream handed to the application
/// layer when one wants it. Returns where the peer's events start in `events`.
pub fn account_sequence(
    conn: &mut Conn,
    is_orig: bool,
    seg: &Segment<'_>,
    rel: u64,
    events: &mut Vec<StreamEvent>,
) -> usize {
    let (syn, fin, rst, ack) = (seg.syn(), seg.fin(), seg.rst(), seg.ack_flag());
    let len = u64::from(seg.payload_len);
    let wants_data = conn.app.wants_data();
    let (me, peer) = conn.sides(is_orig);
    let (me, peer) = (&mut me.tcp, &mut peer.tcp);
    let seq_len = len + u64::from(syn) + u64::from(fin);
    let retransmission = len > 0 && !syn && rel < me.last_rel;
    let end = rel + seq_len;
    if end > me.last_rel {
        me.last_rel = end;
    }
    me.advance_base(seg.seq);
    let data_rel = rel + u64::from(syn);
    if !seg.payload.is_empty() {
        me.stream.add(data_rel, seg.payload, wants_data, events);
    }
    let peer_events_start = events.len();
    if ack && !rst && peer.initialized {
        let acked = peer.rel(seg.ack);
        if acked > peer.ack_rel {
            peer.ack_rel = acked;
        }
        let data_end = peer.fin_rel.map_or(acked, |f| acked.min(f));
        peer.stream.acked(data_end, wants_data, events);
    }
    if retransmission {
        conn.scaled_history(is_orig, b'T', |s| &mut s.tcp.retransmissions);
    }
    peer_events_start
}

/// Removal timers: a reset, or both sides closed, ends the connection after a short linger.
pub fn arm_removal(conn: &mut Conn, seg: &Segment<'_>, ts_ns: i64) {
    let (o, r) = (conn.orig.tcp.state, conn.resp.tcp.state);
    let closed = |s: EndpointState| matches!(s, EndpointState::Closed | EndpointState::Reset);
    if conn.remove_at_ns.get().is_none() && (seg.rst() || (closed(o) && closed(r))) {
        conn.remove_at_ns = Timer::at(ts_ns.saturating_add(TCP_CLOSE_DELAY_NS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::{ConnInfo, Transport};
    use crate::analyzer::flow::conn::{AppState, Proto, NS};
    use crate::analyzer::uid::Uid;
    use std::net::IpAddr;

    fn conn() -> Conn {
        let info = ConnInfo {
            uid: Uid::from_static("Ctest"),
            orig_h: IpAddr::from([10, 0, 0, 1]),
            orig_p: 40000,
            resp_h: IpAddr::from([10, 0, 0, 2]),
            resp_p: 80,
            transport: Transport::Tcp,
        };
        let mut c = Conn::new(info, Proto::Tcp, 6, 1, 0);
        c.app = AppState::Off;
        c
    }

    fn seg(flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Segment<'_> {
        Segment {
            flags,
            seq,
            ack,
            window: 1024,
            payload,
            payload_len: payload.len() as u32,
        }
    }

    /// Feeds (is_orig, segment) pairs through `apply` and returns the history.
    fn run(c: &mut Conn, segs: &[(bool, Segment<'_>)]) -> String {
        let mut events = Vec::new();
        for (i, (is_orig, s)) in segs.iter().enumerate() {
            apply(c, *is_orig, s, i as i64 * NS, &mut events);
        }
        c.history.as_str().to_owned()
    }

    #[test]
    fn handshake_data_and_close() {
        let mut c = conn();
        let h = run(
            &mut c,
            &[
                (true, seg(SYN, 100, 0, b"")),
                (false, seg(SYN | ACK, 500, 101, b"")),
                (true, seg(ACK, 101, 501, b"")),
                (true, seg(ACK, 101, 501, b"hello")),
                (false, seg(ACK, 501, 106, b"world")),
                (true, seg(FIN | ACK, 106, 506, b"")),
                (false, seg(FIN | ACK, 506, 107, b"")),
            ],
        );
        assert_eq!(h, "ShADdFf");
        assert_eq!(
            (c.orig.tcp.state, c.resp.tcp.state),
            (EndpointState::Closed, EndpointState::Closed)
        );
        assert_eq!(
            (
                c.orig.tcp.size(c.resp.tcp.state),
                c.resp.tcp.size(c.orig.tcp.state)
            ),
            (5, 5)
        );
        assert_eq!(c.remove_at_ns.get(), Some(6 * NS + TCP_CLOSE_DELAY_NS));
    }

    #[test]
    fn repeated_flags_repeat_letters_only_at_new_sequence_numbers() {
        let mut c = conn();
        let h = run(
            &mut c,
            &[
                (true, seg(SYN, 100, 0, b"")),
                (true, seg(SYN, 100, 0, b"")), // retransmitted SYN: no second S
                (true, seg(SYN, 900, 0, b"")), // another ISN: S again
                (false, seg(RST | ACK, 0, 901, b"")),
                (false, seg(RST | ACK, 0, 901, b"")),
                (true, seg(FIN | RST, 901, 0, b"")),
            ],
        );
        assert_eq!(h, "SSrI");
    }

    #[test]
    fn endpoint_states_for_reversed_pair_and_midstream() {
        // The originator's SYN-ACK, then the responder's SYN: reversed pair, flipped.
        let mut c = conn();
        let mut events = Vec::new();
        apply(&mut c, true, &seg(SYN | ACK, 500, 101, b""), 0, &mut events);
        assert_eq!(c.orig.tcp.state, EndpointState::SynAckSent);
        let s = seg(SYN, 100, 0, b"");
        let rel = c.resp.tcp.rel(100);
        c.resp.tcp.init(100, true);
        assert!(advance_endpoint_states(&mut c, false, &s, rel));

        // Data without a SYN is mid-stream: Partial.
        let mut m = conn();
        apply(&mut m, true, &seg(ACK, 7, 9, b"abc"), 0, &mut events);
        assert_eq!(m.orig.tcp.state, EndpointState::Partial);
        assert_eq!(m.history.as_str(), "D");
    }

    #[test]
    fn sequence_accounting_counts_holes_and_retransmissions() {
        let mut c = conn();
        let h = run(
            &mut c,
            &[
                (true, seg(SYN, 0, 0, b"")),
                (false, seg(SYN | ACK, 0, 1, b"")),
                (true, seg(ACK, 1, 1, b"aaaa")),
                (true, seg(ACK, 1, 1, b"aaaa")), // retransmission: T
                (false, seg(ACK, 1, 21, b"")),   // acks 20 bytes, 4 seen: a hole
            ],
        );
        assert_eq!(h, "ShDTa");
        assert_eq!(c.orig.tcp.size(c.resp.tcp.state), 20);
    }

    #[test]
    fn zero_window_scaled_and_reset_arms_removal() {
        let mut c = conn();
        let mut events = Vec::new();
        for i in 0..10 {
            let mut s = seg(ACK, 1 + i, 1, b"");
            s.window = 0;
            apply(&mut c, true, &s, 0, &mut events);
        }
        assert_eq!(c.history.as_str(), "AWW");
        assert_eq!(c.remove_at_ns.get(), None);
        apply(&mut c, false, &seg(RST, 5, 0, b""), 2 * NS, &mut events);
        assert_eq!(c.remove_at_ns.get(), Some(2 * NS + TCP_CLOSE_DELAY_NS));
    }
}
