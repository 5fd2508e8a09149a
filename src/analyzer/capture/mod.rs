//! Capture file reading: classic pcap and pcapng, zero-copy over a byte slice (normally a
//! memory map), and the k-way merge that turns several files of one job into one capture.
//!
//! Readers never allocate per packet: a [`RawPacket`] borrows its bytes from the file. Every
//! length read from a file is checked against the bytes that remain before it is used, so a
//! lying header yields a [`CaptureError`] (or, for a cut-off tail, a clean end plus a warning)
//! instead of a panic or a large allocation.

pub mod pcap;
pub mod pcapng;

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// Capture time in nanoseconds since the epoch.
    pub ts_ns: i64,
    /// pcap LINKTYPE_* of the interface that captured it.
    pub link_type: u32,
    /// The captured bytes (`caplen` of them).
    pub data: &'a [u8],
    /// Length of the frame on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
}

/// Why a capture cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("not a pcap or pcapng file (magic {magic:02x?})")]
    BadMagic { magic: Vec<u8> },
    #[error("file too short for a capture header ({len} bytes)")]
    TooShort { len: usize },
    #[error("malformed {what} at byte offset {offset}")]
    Malformed { what: &'static str, offset: usize },
}

/// A reader of either format.
pub enum CaptureReader<'a> {
    Pcap(pcap::PcapReader<'a>),
    Pcapng(pcapng::PcapngReader<'a>),
}

impl<'a> CaptureReader<'a> {
    /// Picks the format from the magic number and reads the file header.
    pub fn open(data: &'a [u8]) -> Result<Self, CaptureError> {
        if data.len() < 4 {
            return Err(CaptureError::TooShort { len: data.len() });
        }
        if data[..4] == pcapng::SHB_MAGIC {
            return pcapng::PcapngReader::new(data).map(CaptureReader::Pcapng);
        }
        pcap::PcapReader::new(data).map(CaptureReader::Pcap)
    }

    /// The next packet; `Ok(None)` at the end. A record cut off by the end of the file ends
    /// the capture and is reported through [`CaptureReader::truncated_tail`].
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'a>>, CaptureError> {
        match self {
            CaptureReader::Pcap(r) => r.next_packet(),
            CaptureReader::Pcapng(r) => r.next_packet(),
        }
    }

    /// Bytes consumed so far (for progress reports).
    pub fn position(&self) -> usize {
        match self {
            CaptureReader::Pcap(r) => r.position(),
            CaptureReader::Pcapng(r) => r.position(),
        }
    }

    /// Set when the file ended in the middle of a record.
    pub fn truncated_tail(&self) -> Option<usize> {
        match self {
            CaptureReader::Pcap(r) => r.truncated_tail(),
            CaptureReader::Pcapng(r) => r.truncated_tail(),
        }
    }
}

/// Merges several readers into one stream in timestamp order (stable: on equal timestamps the
/// earlier file wins, and within one file the file order is kept even if it goes backwards).
/// A file that turns out malformed part-way ends at that point; its error is kept in
/// [`MergedCapture::errors`] and the other files go on.
pub struct MergedCapture<'a> {
    sources: Vec<(CaptureReader<'a>, Option<RawPacket<'a>>)>,
    errors: Vec<(usize, CaptureError)>,
}

impl<'a> MergedCapture<'a> {
    /// Takes the opened readers and primes each with its first packet.
    pub fn new(readers: Vec<CaptureReader<'a>>) -> Self {
        let mut errors = Vec::new();
        let mut sources = Vec::with_capacity(readers.len());
        for (i, mut r) in readers.into_iter().enumerate() {
            let head = pull(&mut errors, i, &mut r);
            sources.push((r, head));
        }
        MergedCapture { sources, errors }
    }

    /// The next packet across all files and the index of the file it came from.
    pub fn next_packet(&mut self) -> Option<(usize, RawPacket<'a>)> {
        // k is the number of files of one job (small), so a linear scan over the heads is the
        // cheapest k-way merge.
        let mut best: Option<(usize, i64)> = None;
        for (i, (_, head)) in self.sources.iter().enumerate() {
            if let Some(p) = head {
                if best.is_none_or(|(_, ts)| p.ts_ns < ts) {
                    best = Some((i, p.ts_ns));
                }
            }
        }
        let (i, _) = best?;
        let (reader, head) = &mut self.sources[i];
        let next = pull(&mut self.errors, i, reader);
        std::mem::replace(head, next).map(|p| (i, p))
    }

    /// Bytes consumed, summed over files.
    pub fn position(&self) -> usize {
        self.sources.iter().map(|(r, _)| r.position()).sum()
    }

    /// Bytes consumed of each file, in file order.
    pub fn positions(&self) -> Vec<usize> {
        self.sources.iter().map(|(r, _)| r.position()).collect()
    }

    /// Files that ended in the middle of a record: (file index, offset of the cut record).
    pub fn truncated_tails(&self) -> Vec<(usize, usize)> {
        self.sources
            .iter()
            .enumerate()
            .filter_map(|(i, (r, _))| r.truncated_tail().map(|o| (i, o)))
            .collect()
    }

    /// Files that stopped early because of malformed content.
    pub fn errors(&self) -> &[(usize, CaptureError)] {
        &self.errors
    }
}

fn pull<'a>(
    errors: &mut Vec<(usize, CaptureError)>,
    index: usize,
    reader: &mut CaptureReader<'a>,
) -> Option<RawPacket<'a>> {
    match reader.next_packet() {
        Ok(p) => p,
        Err(e) => {
            errors.push((index, e));
            None
        }
    }
}

/// Little helpers for reading integers of a given byte order from checked slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    pub(crate) fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(match self {
            ByteOrder::Little => u16::from_le_bytes(s),
            ByteOrder::Big => u16::from_be_bytes(s),
        })
    }

    pub(crate) fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(match self {
            ByteOrder::Little => u32::from_le_bytes(s),
            ByteOrder::Big => u32::from_be_bytes(s),
        })
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Builders for small synthetic captures used by tests across the analyzer.

    /// A little-endian microsecond pcap with the given link type and (ts_us, frame) records.
    pub fn pcap_le_us(link_type: u32, packets: &[(u64, &[u8])]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&link_type.to_le_bytes());
        for (ts_us, frame) in packets {
            f.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
            f.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(frame);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::pcap_le_us;
    use super::*;

    #[test]
    fn merge_orders_by_timestamp_across_files() {
        let a = pcap_le_us(1, &[(1, b"a1"), (5, b"a5")]);
        let b = pcap_le_us(1, &[(3, b"b3"), (7, b"b7")]);
        let readers = vec![
            CaptureReader::open(&a).expect("a"),
            CaptureReader::open(&b).expect("b"),
        ];
        let mut m = MergedCapture::new(readers);
        let mut order = Vec::new();
        while let Some((file, p)) = m.next_packet() {
            order.push((file, p.data.to_vec()));
        }
        let expect: Vec<(usize, Vec<u8>)> = vec![
            (0, b"a1".to_vec()),
            (1, b"b3".to_vec()),
            (0, b"a5".to_vec()),
            (1, b"b7".to_vec()),
        ];
        assert_eq!(order, expect);
    }

    #[test]
    fn short_and_unknown_files_are_errors() {
        assert_eq!(
            CaptureReader::open(b"ab").err(),
            Some(CaptureError::TooShort { len: 2 })
        );
        assert!(matches!(
            CaptureReader::open(&[0x42; 64]),
            Err(CaptureError::BadMagic { .. })
        ));
    }
}
