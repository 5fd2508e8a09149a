//! One side of a TCP connection: Zeek's endpoint state, sequence-number accounting (the
//! `orig_bytes`/`resp_bytes` of conn.log come from here, not from payload sums) and the
//! in-order stream reassembly that feeds application analyzers.
//!
//! Sequence numbers are tracked relative to the side's initial sequence number as 64-bit
//! values, advanced by signed 32-bit deltas, so wrap-around is handled and a side can carry
//! more than 4 GiB.

use std::collections::BTreeMap;

use super::history::Scaled;

/// Out-of-order bytes held per side before the hole is declared a content gap.
pub const MAX_BUFFERED_PER_SIDE: usize = 256 * 1024;

/// Zeek's TCP endpoint states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointState {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

impl EndpointState {
    /// Zeek's notion of "inactive" in `conn_state`: nothing seen, or only mid-stream data.
    pub fn inactive(self) -> bool {
        matches!(self, EndpointState::Inactive | EndpointState::Partial)
    }
}

/// A chunk of in-order stream data or a hole, produced by [`Stream`].
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// Bytes that had been buffered out of order.
    Data(Vec<u8>),
    /// In-order bytes of the segment just added: its payload from this offset on (handed
    /// over without a copy).
    Current(usize),
    Gap(u64),
}

/// Reassembly of one direction: hands out bytes in sequence order, buffers a bounded amount
/// of out-of-order data and reports holes as gaps.
#[derive(Debug, Default)]
pub struct Stream {
    /// Relative sequence number of the next byte to deliver.
    next: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
}

impl Stream {
    fn start(&mut self, first_data_rel: u64) {
        self.next = first_data_rel;
    }

    /// Adds `data` at relative sequence `rel`; pushes deliverable events to `out`.
    /// With `buffer == false` nothing is kept (no analyzer wants the bytes) but the stream
    /// position and gaps are still tracked.
    pub fn add(&mut self, rel: u64, data: &[u8], buffer: bool, out: &mut Vec<StreamEvent>) {
        let end = rel + data.len() as u64;
        if end <= self.next || data.is_empty() {
            return;
        }
        if rel <= self.next {
            if buffer {
                out.push(StreamEvent::Current((self.next - rel) as usize));
            }
            self.next = end;
            self.drain(buffer, out);
            return;
        }
        if !buffer {
            // No consumer: nothing to reorder. Holes are reported only when the peer
            // acknowledges bytes beyond everything seen (`acked`), so reordering alone is
            // never a gap.
            self.next = end;
            return;
        }
        if self.pending_bytes + data.len() > MAX_BUFFERED_PER_SIDE {
            self.skip_to_buffered(out);
            if rel > self.next {
                out.push(StreamEvent::Gap(rel - self.next));
                self.next = rel;
            }
            return self.add(rel, data, buffer, out);
        }
        self.pending_bytes += data.len();
        let slot = self.pending.entry(rel).or_default();
        if slot.len() < data.len() {
            self.pending_bytes -= slot.len();
            *slot = data.to_vec();
        } else {
            self.pending_bytes -= data.len();
        }
    }

    /// The peer acknowledged everything below `acked` (exclusive; already limited to data
    /// octets): bytes below it that never arrived are a gap.
    pub fn acked(&mut self, acked: u64, buffer: bool, out: &mut Vec<StreamEvent>) {
        if acked <= self.next {
            return;
        }
        let hole_end = self
            .pending
            .keys()
            .next()
            .copied()
            .map_or(acked, |first| first.min(acked));
        if hole_end > self.next {
            out.push(StreamEvent::Gap(hole_end - self.next));
            self.next = hole_end;
            self.drain(buffer, out);
        }
    }

    /// End of the connection: everything buffered is delivered, holes become gaps.
    pub fn flush(&mut self, buffer: bool, out: &mut Vec<StreamEvent>) {
        while !self.pending.is_empty() {
            self.skip_to_buffered(out);
            self.drain(buffer, out);
        }
    }

    fn skip_to_buffered(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(&first) = self.pending.keys().next() {
            if first > self.next {
                out.push(StreamEvent::Gap(first - self.next));
                self.next = first;
            }
        }
    }

    fn drain(&mut self, buffer: bool, out: &mut Vec<StreamEvent>) {
        while let Some(entry) = self.pending.first_entry() {
            let rel = *entry.key();
            if rel > self.next {
                break;
            }
            let data = entry.remove();
            self.pending_bytes -= data.len();
            let end = rel + data.len() as u64;
            if end > self.next {
                if buffer {
                    out.push(StreamEvent::Data(
                        data[(self.next - rel) as usize..].to_vec(),
                    ));
                }
                self.next = end;
            }
        }
    }
}

/// One side of a TCP connection.
#[derive(Debug, Default)]
pub struct Endpoint {
    pub state: EndpointState,
    pub prev_state: EndpointState,
    /// Whether any packet of this side has been seen (sequence space initialised).
    pub initialized: bool,
    pub start_seq: u32,
    /// Last raw sequence value used as the base for relative arithmetic.
    base_seq: u32,
    base_rel: u64,
    /// One past the highest sequence octet sent (relative; SYN is octet 0).
    pub last_rel: u64,
    /// Highest acknowledgement received from the peer for this side's data (relative).
    pub ack_rel: u64,
    pub fin_count: u32,
    /// Relative sequence of the first FIN octet (data never extends past it).
    pub fin_rel: Option<u64>,
    pub did_close: bool,
    /// Last seq values of SYN / FIN / RST for the history's repeat rules.
    pub hist_last_syn: Option<u64>,
    pub hist_last_fin: Option<u64>,
    pub hist_last_rst: Option<u64>,
    pub stream: Stream,
    /// Retransmissions (`T`), zero windows (`W`) and content gaps (`G`) so far, for the
    /// history's scaled letters.
    pub retransmissions: Scaled,
    pub zero_windows: Scaled,
    pub gaps: Scaled,
}

impl Endpoint {
    /// Initialises sequence space from this side's first packet. Without a SYN the start is
    /// placed one before `seq`, as though a SYN had been seen, so the SYN-octet correction
    /// in [`Endpoint::size`] applies uniformly.
    pub fn init(&mut self, seq: u32, syn: bool) {
        self.initialized = true;
        self.start_seq = if syn { seq } else { seq.wrapping_sub(1) };
        self.base_seq = self.start_seq;
        self.base_rel = 0;
        self.last_rel = if syn { 0 } else { 1 };
        self.stream.start(1);
    }

    /// Relative position of raw sequence number `seq` (may be "negative" for old data:
    /// clamped at 0).
    pub fn rel(&self, seq: u32) -> u64 {
        let delta = seq.wrapping_sub(self.base_seq) as i32;
        (self.base_rel as i64 + i64::from(delta)).max(0) as u64
    }

    /// Moves the arithmetic base forward so deltas stay within ±2 GiB on long streams.
    pub fn advance_base(&mut self, seq: u32) {
        let rel = self.rel(seq);
        if rel > self.base_rel {
            self.base_rel = rel;
            self.base_seq = seq;
        }
    }

    /// Bytes this side sent per sequence numbers: Zeek's `TCP_Endpoint::Size`.
    pub fn size(&self, peer_state: EndpointState) -> u64 {
        if !self.initialized {
            return 0;
        }
        if self.prev_state == EndpointState::SynSent
            && self.state == EndpointState::Reset
            && peer_state == EndpointState::Inactive
        {
            return 0; // a SYN that was reset: no data
        }
        let mut size = self.last_rel.max(self.ack_rel);
        size = size.saturating_sub(1); // the SYN octet
        if self.fin_count > 0 {
            size = size.saturating_sub(1);
        }
        size
    }

    pub fn set_state(&mut self, state: EndpointState) {
        if state != self.state {
            self.prev_state = self.state;
            self.state = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_reorders_and_drops_retransmissions() {
        let mut s = Stream::default();
        s.start(1);
        let mut out = Vec::new();
        s.add(6, b"world", true, &mut out);
        assert!(out.is_empty());
        s.add(1, b"hello", true, &mut out);
        assert_eq!(
            out,
            vec![
                StreamEvent::Current(0),
                StreamEvent::Data(b"world".to_vec())
            ]
        );
        out.clear();
        s.add(1, b"hello", true, &mut out);
        assert!(out.is_empty(), "a retransmission delivers nothing");
        s.add(9, b"ld!", true, &mut out);
        assert_eq!(out, vec![StreamEvent::Current(2)]);
    }

    #[test]
    fn acked_hole_is_a_gap() {
        let mut s = Stream::default();
        s.start(1);
        let mut out = Vec::new();
        s.add(11, b"tail", true, &mut out);
        s.acked(15, true, &mut out);
        assert_eq!(
            out,
            vec![StreamEvent::Gap(10), StreamEvent::Data(b"tail".to_vec())]
        );
    }

    #[test]
    fn buffer_is_bounded() {
        let mut s = Stream::default();
        s.start(1);
        let mut out = Vec::new();
        let chunk = vec![7u8; 64 * 1024];
        for i in 0..8u64 {
            s.add(100 + i * 64 * 1024, &chunk, true, &mut out);
        }
        assert!(s.pending_bytes <= MAX_BUFFERED_PER_SIDE);
        assert!(out.iter().any(|e| matches!(e, StreamEvent::Gap(99))));
    }

    #[test]
    fn size_follows_sequence_numbers() {
        let mut e = Endpoint::default();
        e.init(1000, true);
        e.last_rel = e.rel(1000) + 1 + 100 + 1; // SYN + 100 bytes + FIN
        e.fin_count = 1;
        assert_eq!(e.size(EndpointState::Established), 100);
        let mut mid = Endpoint::default();
        mid.init(u32::MAX - 1, false);
        assert_eq!(mid.rel(u32::MAX - 1), 1);
        assert_eq!(mid.rel(3), 6);
    }
}
