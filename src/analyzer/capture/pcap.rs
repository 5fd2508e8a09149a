//! Classic libpcap files: microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) magics, in
//! either byte order.

use super::{ByteOrder, CaptureError, RawPacket};

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// A record claiming more than this is corrupt whatever the snaplen says; no real link
/// produces such frames, and rejecting it stops a lying header from driving later code.
pub const MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;

/// Reader over a whole pcap file held in memory.
pub struct PcapReader<'a> {
    data: &'a [u8],
    order: ByteOrder,
    /// Multiplier from the file's fractional unit to nanoseconds.
    frac_to_ns: i64,
    link_type: u32,
    pos: usize,
    truncated_at: Option<usize>,
}

impl<'a> PcapReader<'a> {
    /// Parses the file header.
    pub fn new(data: &'a [u8]) -> Result<Self, CaptureError> {
        if data.len() < FILE_HEADER_LEN {
            if data.len() >= 4 && magic_kind(&data[..4]).is_none() {
                return Err(CaptureError::BadMagic {
                    magic: data[..4].to_vec(),
                });
            }
            return Err(CaptureError::TooShort { len: data.len() });
        }
        let (order, frac_to_ns) = magic_kind(&data[..4]).ok_or_else(|| CaptureError::BadMagic {
            magic: data[..4].to_vec(),
        })?;
        let malformed = || CaptureError::Malformed {
            what: "pcap file header",
            offset: 0,
        };
        // The upper bits of the link-type word carry FCS information; the type is the low 16.
        let link_type = order.u32(data, 20).ok_or_else(malformed)? & 0xffff;
        Ok(PcapReader {
            data,
            order,
            frac_to_ns,
            link_type,
            pos: FILE_HEADER_LEN,
            truncated_at: None,
        })
    }

    /// The file's link type.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Next record, `Ok(None)` at the end (or at a cut-off tail).
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'a>>, CaptureError> {
        if self.truncated_at.is_some() || self.pos >= self.data.len() {
            return Ok(None);
        }
        let start = self.pos;
        let Some(header) = self.data.get(start..start + RECORD_HEADER_LEN) else {
            self.truncated_at = Some(start);
            return Ok(None);
        };
        let field = |at| self.order.u32(header, at).unwrap_or(0);
        let (ts_sec, ts_frac, caplen, orig_len) = (field(0), field(4), field(8), field(12));
        if caplen > MAX_RECORD_LEN {
            return Err(CaptureError::Malformed {
                what: "pcap record length",
                offset: start,
            });
        }
        let body = start + RECORD_HEADER_LEN;
        let Some(data) = self.data.get(body..body + caplen as usize) else {
            self.truncated_at = Some(start);
            return Ok(None);
        };
        self.pos = body + caplen as usize;
        // The next record's header and the start of its frame (the link, IP and transport
        // headers read as soon as it is pulled) start loading now.
        let next = self.data.as_ptr().wrapping_add(self.pos);
        crate::analyzer::prefetch::line(next);
        crate::analyzer::prefetch::line(next.wrapping_add(64));
        let ts_ns = i64::from(ts_sec) * 1_000_000_000 + i64::from(ts_frac) * self.frac_to_ns;
        Ok(Some(RawPacket {
            ts_ns,
            link_type: self.link_type,
            data,
            orig_len: orig_len.max(caplen),
        }))
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn truncated_tail(&self) -> Option<usize> {
        self.truncated_at
    }
}

fn magic_kind(magic: &[u8]) -> Option<(ByteOrder, i64)> {
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((ByteOrder::Little, 1_000)),
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((ByteOrder::Big, 1_000)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((ByteOrder::Little, 1)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((ByteOrder::Big, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_endian_ns_file() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0xa1, 0xb2, 0x3c, 0x4d]);
        f.extend_from_slice(&2u16.to_be_bytes());
        f.extend_from_slice(&4u16.to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_be_bytes());
        f.extend_from_slice(&101u32.to_be_bytes());
        f.extend_from_slice(&10u32.to_be_bytes());
        f.extend_from_slice(&123u32.to_be_bytes());
        f.extend_from_slice(&3u32.to_be_bytes());
        f.extend_from_slice(&60u32.to_be_bytes());
        f.extend_from_slice(b"xyz");
        f
    }

    #[test]
    fn reads_big_endian_nanosecond_file() {
        let f = big_endian_ns_file();
        let mut r = PcapReader::new(&f).expect("header");
        assert_eq!(r.link_type(), 101);
        let p = r.next_packet().expect("ok").expect("a packet");
        assert_eq!(p.ts_ns, 10_000_000_123);
        assert_eq!(p.data, b"xyz");
        assert_eq!(p.orig_len, 60);
        assert!(r.next_packet().expect("ok").is_none());
        assert_eq!(r.truncated_tail(), None);
    }

    #[test]
    fn little_endian_microseconds() {
        let f = crate::analyzer::capture::testutil::pcap_le_us(1, &[(2_500_000, b"ab")]);
        let mut r = PcapReader::new(&f).expect("header");
        let p = r.next_packet().expect("ok").expect("packet");
        assert_eq!(p.ts_ns, 2_500_000_000);
    }

    #[test]
    fn cut_record_ends_capture_with_marker() {
        let mut f = big_endian_ns_file();
        f.truncate(f.len() - 1);
        let mut r = PcapReader::new(&f).expect("header");
        assert!(r.next_packet().expect("ok").is_none());
        assert_eq!(r.truncated_tail(), Some(24));
    }

    #[test]
    fn huge_record_length_is_an_error() {
        let mut f = big_endian_ns_file();
        f[32..36].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let mut r = PcapReader::new(&f).expect("header");
        assert_eq!(
            r.next_packet().err(),
            Some(CaptureError::Malformed {
                what: "pcap record length",
                offset: 24
            })
        );
    }

    #[test]
    fn bad_magic_and_short_header() {
        assert!(matches!(
            PcapReader::new(&[1, 2, 3, 4, 5]),
            Err(CaptureError::BadMagic { .. })
        ));
        assert!(matches!(
            PcapReader::new(&[0xd4, 0xc3, 0xb2, 0xa1, 0]),
            Err(CaptureError::TooShort { len: 5 })
        ));
    }
}
