//! IP fragment reassembly with bounded memory: at most [`MAX_PENDING`] datagrams in flight,
//! each at most 64 KiB, dropped after [`FRAGMENT_TIMEOUT_NS`] without completing.

use std::collections::HashMap;
use std::net::IpAddr;

use super::decode::IpPacket;
use super::hash::FxBuildHasher;

pub const MAX_PENDING: usize = 1024;
const MAX_DATAGRAM: u32 = 65_535;
pub const FRAGMENT_TIMEOUT_NS: i64 = 60 * 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug, Default)]
struct Pending {
    first_ns: i64,
    /// (offset, bytes) as they arrived.
    pieces: Vec<(u32, Vec<u8>)>,
    /// Payload length, known once the last fragment (MF=0) arrived.
    total: Option<u32>,
    /// Header length of the first fragment (to rebuild the IP length).
    header_len: u32,
    buffered: u32,
}

/// A completed datagram: its upper-layer bytes and the IP length it would have had.
#[derive(Debug)]
pub struct Reassembled {
    pub payload: Vec<u8>,
    pub ip_len: u32,
}

/// What happened to a fragment.
#[derive(Debug)]
pub enum FragOutcome {
    /// Held until the rest arrives.
    Held,
    /// The datagram is complete.
    Complete(Reassembled),
    /// Dropped: the weird name says why.
    Dropped(&'static str),
}

#[derive(Default)]
pub struct Reassembler {
    pending: HashMap<FragKey, Pending, FxBuildHasher>,
}

impl Reassembler {
    /// Adds one fragment of `ip` (which must carry `fragment`), captured at `ts_ns`.
    pub fn add(&mut self, ts_ns: i64, ip: &IpPacket<'_>) -> FragOutcome {
        let Some(frag) = ip.fragment else {
            return FragOutcome::Dropped("not_a_fragment");
        };
        if !ip.complete() {
            return FragOutcome::Dropped("truncated_fragment");
        }
        let end = frag.offset + ip.payload_len;
        if end > MAX_DATAGRAM {
            return FragOutcome::Dropped("excessively_large_fragment");
        }
        let key = FragKey {
            src: ip.src,
            dst: ip.dst,
            id: frag.id,
            proto: ip.proto,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            self.expire(ts_ns);
            if self.pending.len() >= MAX_PENDING {
                return FragOutcome::Dropped("fragment_table_full");
            }
        }
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            first_ns: ts_ns,
            ..Pending::default()
        });
        if !frag.more_fragments {
            entry.total = Some(end);
        }
        if frag.offset == 0 {
            entry.header_len = ip.ip_len - ip.payload_len;
        }
        if entry.buffered + ip.payload_len > 2 * MAX_DATAGRAM {
            self.pending.remove(&key);
            return FragOutcome::Dropped("excessive_fragment_overlap");
        }
        entry.buffered += ip.payload_len;
        entry
            .pieces
            .push((frag.offset, ip.payload[..ip.payload_len as usize].to_vec()));
        let Some(total) = entry.total else {
            return FragOutcome::Held;
        };
        entry.pieces.sort_by_key(|(off, _)| *off);
        let mut covered = 0u32;
        for (off, bytes) in &entry.pieces {
            if *off > covered {
                return FragOutcome::Held;
            }
            covered = covered.max(off + bytes.len() as u32);
        }
        if covered < total || entry.header_len == 0 {
            return FragOutcome::Held;
        }
        let done = self.pending.remove(&key).unwrap_or_default();
        let mut payload = vec![0u8; total as usize];
        for (off, bytes) in &done.pieces {
            let off = *off as usize;
            let n = bytes.len().min(payload.len().saturating_sub(off));
            payload[off..off + n].copy_from_slice(&bytes[..n]);
        }
        FragOutcome::Complete(Reassembled {
            payload,
            ip_len: done.header_len + total,
        })
    }

    /// Drops datagrams that waited longer than the timeout; returns how many.
    pub fn expire(&mut self, now_ns: i64) -> usize {
        let before = self.pending.len();
        self.pending
            .retain(|_, p| now_ns.saturating_sub(p.first_ns) <= FRAGMENT_TIMEOUT_NS);
        before - self.pending.len()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::decode::{parse_ip, IpVersion};

    fn fragment(id: u16, offset_units: u16, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = crate::analyzer::decode::tests::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 17, payload);
        p[4..6].copy_from_slice(&id.to_be_bytes());
        let ff = offset_units | if more { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&ff.to_be_bytes());
        p
    }

    #[test]
    fn out_of_order_fragments_reassemble() {
        let mut r = Reassembler::default();
        let second = fragment(7, 1, false, b"world!!!");
        let first = fragment(7, 0, true, b"hello, w");
        let ip2 = parse_ip(IpVersion::V4, &second, false).expect("ip");
        assert!(matches!(r.add(0, &ip2), FragOutcome::Held));
        let ip1 = parse_ip(IpVersion::V4, &first, false).expect("ip");
        match r.add(1, &ip1) {
            FragOutcome::Complete(d) => {
                assert_eq!(d.payload, b"hello, wworld!!!");
                assert_eq!(d.ip_len, 36);
            }
            other => panic!("expected completion, got {other:?}"),
        }
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn incomplete_datagrams_time_out_and_table_is_bounded() {
        let mut r = Reassembler::default();
        for id in 0..(MAX_PENDING as u16 + 10) {
            let f = fragment(id, 0, true, b"12345678");
            let ip = parse_ip(IpVersion::V4, &f, false).expect("ip");
            r.add(0, &ip);
        }
        assert_eq!(r.pending(), MAX_PENDING);
        assert_eq!(r.expire(FRAGMENT_TIMEOUT_NS + 1), MAX_PENDING);
    }
}
