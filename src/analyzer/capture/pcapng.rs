//! pcapng files: several sections (each with its own byte order), several interfaces per
//! section with their own link type and timestamp resolution (`if_tsresol`) and offset
//! (`if_tsoffset`); Enhanced, Simple and obsolete Packet blocks; every other block is skipped.

use super::pcap::MAX_RECORD_LEN;
use super::{ByteOrder, CaptureError, RawPacket};

pub const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const BLOCK_IDB: u32 = 1;
const BLOCK_OPB: u32 = 2;
const BLOCK_SPB: u32 = 3;
const BLOCK_EPB: u32 = 6;
const BLOCK_SHB: u32 = 0x0a0d_0d0a;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// Interfaces per section; more is corrupt input (bounded memory).
const MAX_INTERFACES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    /// Timestamp unit: `Decimal(n)` = 10^-n s, `Binary(n)` = 2^-n s.
    resolution: Resolution,
    offset_secs: i64,
}

#[derive(Debug, Clone, Copy)]
enum Resolution {
    Decimal(u8),
    Binary(u8),
}

impl Resolution {
    fn to_ns(self, units: u64) -> i64 {
        let ns: u128 = match self {
            Resolution::Decimal(n) if n <= 9 => u128::from(units) * 10u128.pow(9 - u32::from(n)),
            Resolution::Decimal(n) => u128::from(units) / 10u128.pow(u32::from(n.min(38)) - 9),
            Resolution::Binary(n) => (u128::from(units) * 1_000_000_000) >> n.min(127),
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

/// Reader over a whole pcapng file held in memory.
pub struct PcapngReader<'a> {
    data: &'a [u8],
    pos: usize,
    order: ByteOrder,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no time; they get the last time seen.
    last_ts_ns: i64,
    truncated_at: Option<usize>,
}

impl<'a> PcapngReader<'a> {
    /// Checks the first Section Header Block; the reader then starts at it.
    pub fn new(data: &'a [u8]) -> Result<Self, CaptureError> {
        if data.len() < 28 {
            return Err(CaptureError::TooShort { len: data.len() });
        }
        let order = section_order(data, 0)?;
        Ok(PcapngReader {
            data,
            pos: 0,
            order,
            interfaces: Vec::new(),
            last_ts_ns: 0,
            truncated_at: None,
        })
    }

    /// The next packet, skipping non-packet blocks.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'a>>, CaptureError> {
        loop {
            if self.truncated_at.is_some() || self.pos >= self.data.len() {
                return Ok(None);
            }
            let start = self.pos;
            if self.data.len() - start < 12 {
                self.truncated_at = Some(start);
                return Ok(None);
            }
            if self.data[start..start + 4] == SHB_MAGIC {
                self.order = section_order(self.data, start)?;
                self.interfaces.clear();
            }
            let malformed = |what| CaptureError::Malformed {
                what,
                offset: start,
            };
            let block_type = self
                .order
                .u32(self.data, start)
                .ok_or_else(|| malformed("pcapng block"))?;
            let total_len = self
                .order
                .u32(self.data, start + 4)
                .ok_or_else(|| malformed("pcapng block"))? as usize;
            if total_len < 12 || total_len % 4 != 0 {
                return Err(malformed("pcapng block length"));
            }
            let Some(block) = self.data.get(start..start + total_len) else {
                self.truncated_at = Some(start);
                return Ok(None);
            };
            self.pos = start + total_len;
            let body = &block[8..total_len - 4];
            match block_type {
                BLOCK_SHB => {}
                BLOCK_IDB => self
                    .read_interface(body)
                    .ok_or_else(|| malformed("pcapng interface block"))?,
                BLOCK_EPB => {
                    return self
                        .enhanced_packet(body)
                        .ok_or_else(|| malformed("pcapng packet block"))
                        .map(Some)
                }
                BLOCK_OPB => {
                    return self
                        .obsolete_packet(body)
                        .ok_or_else(|| malformed("pcapng packet block"))
                        .map(Some)
                }
                BLOCK_SPB => {
                    return self
                        .simple_packet(body)
                        .ok_or_else(|| malformed("pcapng packet block"))
                        .map(Some)
                }
                _ => {} // name resolution, statistics, custom, decryption secrets...: not needed
            }
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn truncated_tail(&self) -> Option<usize> {
        self.truncated_at
    }

    fn read_interface(&mut self, body: &[u8]) -> Option<()> {
        if self.interfaces.len() >= MAX_INTERFACES {
            return None;
        }
        let o = self.order;
        let link_type = u32::from(o.u16(body, 0)?);
        let snaplen = o.u32(body, 4)?;
        let mut iface = Interface {
            link_type,
            snaplen,
            resolution: Resolution::Decimal(6),
            offset_secs: 0,
        };
        let mut at = 8;
        while at + 4 <= body.len() {
            let code = o.u16(body, at)?;
            let len = usize::from(o.u16(body, at + 2)?);
            let value = body.get(at + 4..at + 4 + len)?;
            match code {
                OPT_END => break,
                OPT_IF_TSRESOL if len >= 1 => {
                    let r = value[0];
                    iface.resolution = if r & 0x80 == 0 {
                        Resolution::Decimal(r)
                    } else {
                        Resolution::Binary(r & 0x7f)
                    };
                }
                OPT_IF_TSOFFSET if len >= 8 => {
                    // The 8 bytes are one signed 64-bit integer in section byte order.
                    let bytes: [u8; 8] = value[..8].try_into().ok()?;
                    let v = match o {
                        ByteOrder::Little => i64::from_le_bytes(bytes),
                        ByteOrder::Big => i64::from_be_bytes(bytes),
                    };
                    iface.offset_secs = v;
                }
                _ => {}
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        self.interfaces.push(iface);
        Some(())
    }

    fn packet(
        &mut self,
        iface_id: usize,
        ts_units: Option<u64>,
        caplen: u32,
        orig_len: u32,
        data: &'a [u8],
    ) -> Option<RawPacket<'a>> {
        let iface = *self.interfaces.get(iface_id)?;
        if caplen > MAX_RECORD_LEN {
            return None;
        }
        let data = data.get(..caplen as usize)?;
        if let Some(units) = ts_units {
            self.last_ts_ns = iface
                .resolution
                .to_ns(units)
                .saturating_add(iface.offset_secs.saturating_mul(1_000_000_000));
        }
        Some(RawPacket {
            ts_ns: self.last_ts_ns,
            link_type: iface.link_type,
            data,
            orig_len: orig_len.max(caplen),
        })
    }

    fn enhanced_packet(&mut self, body: &'a [u8]) -> Option<RawPacket<'a>> {
        let o = self.order;
        let iface = o.u32(body, 0)? as usize;
        let ts = u64::from(o.u32(body, 4)?) << 32 | u64::from(o.u32(body, 8)?);
        let caplen = o.u32(body, 12)?;
        let orig_len = o.u32(body, 16)?;
        self.packet(iface, Some(ts), caplen, orig_len, body.get(20..)?)
    }

    fn obsolete_packet(&mut self, body: &'a [u8]) -> Option<RawPacket<'a>> {
        let o = self.order;
        let iface = usize::from(o.u16(body, 0)?);
        let ts = u64::from(o.u32(body, 4)?) << 32 | u64::from(o.u32(body, 8)?);
        let caplen = o.u32(body, 12)?;
        let orig_len = o.u32(body, 16)?;
        self.packet(iface, Some(ts), caplen, orig_len, body.get(20..)?)
    }

    fn simple_packet(&mut self, body: &'a [u8]) -> Option<RawPacket<'a>> {
        let orig_len = self.order.u32(body, 0)?;
        let snaplen = self.interfaces.first()?.snaplen;
        let available = (body.len() - 4) as u32;
        let mut caplen = orig_len.min(available);
        if snaplen > 0 {
            caplen = caplen.min(snaplen);
        }
        self.packet(0, None, caplen, orig_len, body.get(4..)?)
    }
}

/// Reads the byte-order magic of the Section Header Block at `at`.
fn section_order(data: &[u8], at: usize) -> Result<ByteOrder, CaptureError> {
    let magic = data.get(at + 8..at + 12).ok_or(CaptureError::Malformed {
        what: "pcapng section header",
        offset: at,
    })?;
    if ByteOrder::Little.u32(magic, 0) == Some(BYTE_ORDER_MAGIC) {
        Ok(ByteOrder::Little)
    } else if ByteOrder::Big.u32(magic, 0) == Some(BYTE_ORDER_MAGIC) {
        Ok(ByteOrder::Big)
    } else {
        Err(CaptureError::Malformed {
            what: "pcapng byte-order magic",
            offset: at + 8,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds pcapng blocks in the given byte order.
    pub struct NgBuilder {
        pub buf: Vec<u8>,
        big: bool,
    }

    impl NgBuilder {
        pub fn new(big: bool) -> Self {
            NgBuilder {
                buf: Vec::new(),
                big,
            }
        }
        fn u16(&self, v: u16) -> [u8; 2] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn u32(&self, v: u32) -> [u8; 4] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
            let mut padded = body.to_vec();
            padded.resize(body.len().div_ceil(4) * 4, 0);
            let total = (padded.len() + 12) as u32;
            let (t, l) = (self.u32(block_type), self.u32(total));
            self.buf.extend_from_slice(&t);
            self.buf.extend_from_slice(&l);
            self.buf.extend_from_slice(&padded);
            self.buf.extend_from_slice(&l);
            self
        }
        pub fn section(&mut self) -> &mut Self {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32(BYTE_ORDER_MAGIC));
            body.extend_from_slice(&self.u16(1));
            body.extend_from_slice(&self.u16(0));
            body.extend_from_slice(&[0xff; 8]);
            self.block(BLOCK_SHB, &body)
        }
        pub fn interface(&mut self, link_type: u16, tsresol: Option<u8>) -> &mut Self {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u16(link_type));
            body.extend_from_slice(&self.u16(0));
            body.extend_from_slice(&self.u32(0));
            if let Some(r) = tsresol {
                body.extend_from_slice(&self.u16(OPT_IF_TSRESOL));
                body.extend_from_slice(&self.u16(1));
                body.extend_from_slice(&[r, 0, 0, 0]);
                body.extend_from_slice(&[0; 4]);
            }
            self.block(BLOCK_IDB, &body)
        }
        pub fn epb(&mut self, iface: u32, ts_units: u64, data: &[u8]) -> &mut Self {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32(iface));
            body.extend_from_slice(&self.u32((ts_units >> 32) as u32));
            body.extend_from_slice(&self.u32(ts_units as u32));
            body.extend_from_slice(&self.u32(data.len() as u32));
            body.extend_from_slice(&self.u32(data.len() as u32));
            body.extend_from_slice(data);
            self.block(BLOCK_EPB, &body)
        }
        pub fn spb(&mut self, data: &[u8]) -> &mut Self {
            let mut body = self.u32(data.len() as u32).to_vec();
            body.extend_from_slice(data);
            self.block(BLOCK_SPB, &body)
        }
    }

    fn read_all(buf: &[u8]) -> Vec<(i64, u32, Vec<u8>)> {
        let mut r = PcapngReader::new(buf).expect("open");
        let mut out = Vec::new();
        while let Some(p) = r.next_packet().expect("read") {
            out.push((p.ts_ns, p.link_type, p.data.to_vec()));
        }
        out
    }

    #[test]
    fn interfaces_resolutions_and_sections() {
        let mut b = NgBuilder::new(false);
        b.section()
            .interface(1, None)
            .interface(101, Some(9))
            .block(0x4000_0bad, b"skip me!");
        b.epb(0, 1_500_000, b"eth")
            .epb(1, 2_000_000_007, b"raw")
            .spb(b"simple");
        let mut second = NgBuilder::new(true);
        second
            .section()
            .interface(113, Some(0x80 | 10))
            .epb(0, 3 * 1024, b"sll");
        b.buf.extend_from_slice(&second.buf);
        let got = read_all(&b.buf);
        assert_eq!(
            got,
            vec![
                (1_500_000_000, 1, b"eth".to_vec()),
                (2_000_000_007, 101, b"raw".to_vec()),
                (2_000_000_007, 1, b"simple".to_vec()),
                (3_000_000_000, 113, b"sll".to_vec()),
            ]
        );
    }

    #[test]
    fn packet_for_unknown_interface_is_malformed() {
        let mut b = NgBuilder::new(false);
        b.section().epb(3, 1, b"x");
        let mut r = PcapngReader::new(&b.buf).expect("open");
        assert!(matches!(
            r.next_packet(),
            Err(CaptureError::Malformed { .. })
        ));
    }

    #[test]
    fn truncated_block_ends_with_marker() {
        let mut b = NgBuilder::new(false);
        b.section().interface(1, None).epb(0, 1, b"abcdef");
        let cut = b.buf.len() - 3;
        let mut r = PcapngReader::new(&b.buf[..cut]).expect("open");
        assert!(r.next_packet().expect("ok").is_none());
        assert!(r.truncated_tail().is_some());
    }

    #[test]
    fn absurd_block_length_is_an_error() {
        let mut b = NgBuilder::new(false);
        b.section();
        b.buf.extend_from_slice(&6u32.to_le_bytes());
        b.buf.extend_from_slice(&7u32.to_le_bytes());
        b.buf.extend_from_slice(&[0; 8]);
        let mut r = PcapngReader::new(&b.buf).expect("open");
        assert!(matches!(
            r.next_packet(),
            Err(CaptureError::Malformed {
                what: "pcapng block length",
                ..
            })
        ));
    }
}
