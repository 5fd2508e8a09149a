//! Capture file writers: classic pcap (microsecond timestamps) and pcapng, both little-endian
//! and link type Ethernet. The generator writes through the `PacketSink` trait, so it streams
//! to either format without holding packets in memory.

use std::io::{self, Write};

/// Link type 1: Ethernet (DLT_EN10MB / LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Snap length written in the headers; the generator never exceeds it (frames are ≤ 1514 bytes).
pub const SNAPLEN: u32 = 262_144;

/// Where generated frames go. `ts_micros` is microseconds since the Unix epoch.
pub trait PacketSink {
    fn write_packet(&mut self, ts_micros: u64, frame: &[u8]) -> io::Result<()>;
    /// Bytes written to the underlying file so far, headers included.
    fn bytes_written(&self) -> u64;
    fn flush(&mut self) -> io::Result<()>;
}

/// Classic libpcap format (magic `a1b2c3d4`, version 2.4, microsecond resolution).
pub struct PcapWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte global header at once.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay zero, as every modern writer does.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, written: 24 })
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> PacketSink for PcapWriter<W> {
    fn write_packet(&mut self, ts_micros: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame_len(frame)?;
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&seconds_u32(ts_micros)?.to_le_bytes());
        record[4..8].copy_from_slice(&((ts_micros % 1_000_000) as u32).to_le_bytes());
        record[8..12].copy_from_slice(&len.to_le_bytes());
        record[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(frame)?;
        self.written += 16 + u64::from(len);
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// pcapng with one section and one Ethernet interface at the default microsecond
/// resolution (no `if_tsresol` option), packets as Enhanced Packet Blocks.
pub struct PcapngWriter<W: Write> {
    out: W,
    written: u64,
}

const SHB_TYPE: u32 = 0x0A0D_0D0A;
const IDB_TYPE: u32 = 0x0000_0001;
const EPB_TYPE: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Option code `shb_userappl`: names the writing application.
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_END: u16 = 0;
const USER_APPL: &[u8] = b"pcapd synth";

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block and the Interface Description Block.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut options = Vec::new();
        push_option(&mut options, OPT_SHB_USERAPPL, USER_APPL);
        push_option(&mut options, OPT_END, &[]);
        let mut shb_body = Vec::new();
        shb_body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        shb_body.extend_from_slice(&1u16.to_le_bytes()); // major
        shb_body.extend_from_slice(&0u16.to_le_bytes()); // minor
        shb_body.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        shb_body.extend_from_slice(&options);
        let mut written = write_block(&mut out, SHB_TYPE, &shb_body, &[])?;

        let mut idb_body = Vec::new();
        idb_body.extend_from_slice(&(LINKTYPE_ETHERNET as u16).to_le_bytes());
        idb_body.extend_from_slice(&0u16.to_le_bytes()); // reserved
        idb_body.extend_from_slice(&SNAPLEN.to_le_bytes());
        written += write_block(&mut out, IDB_TYPE, &idb_body, &[])?;
        Ok(PcapngWriter { out, written })
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> PacketSink for PcapngWriter<W> {
    fn write_packet(&mut self, ts_micros: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame_len(frame)?;
        let mut head = [0u8; 20];
        head[0..4].copy_from_slice(&0u32.to_le_bytes()); // interface 0
        head[4..8].copy_from_slice(&((ts_micros >> 32) as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(ts_micros as u32).to_le_bytes());
        head[12..16].copy_from_slice(&len.to_le_bytes());
        head[16..20].copy_from_slice(&len.to_le_bytes());
        self.written += write_block(&mut self.out, EPB_TYPE, &head, frame)?;
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes `type, total_len, head, data, padding, total_len`; returns the block length.
fn write_block<W: Write>(
    out: &mut W,
    block_type: u32,
    head: &[u8],
    data: &[u8],
) -> io::Result<u64> {
    let body = head.len() + data.len();
    let padding = (4 - body % 4) % 4;
    let total = 12 + body + padding;
    let total_u32 = u32::try_from(total).map_err(|_| too_long(total))?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total_u32.to_le_bytes())?;
    out.write_all(head)?;
    out.write_all(data)?;
    out.write_all(&[0u8; 3][..padding])?;
    out.write_all(&total_u32.to_le_bytes())?;
    Ok(total as u64)
}

fn push_option(options: &mut Vec<u8>, code: u16, value: &[u8]) {
    options.extend_from_slice(&code.to_le_bytes());
    options.extend_from_slice(&(value.len() as u16).to_le_bytes());
    options.extend_from_slice(value);
    options.resize(options.len() + (4 - value.len() % 4) % 4, 0);
}

fn frame_len(frame: &[u8]) -> io::Result<u32> {
    match u32::try_from(frame.len()) {
        Ok(len) if len <= SNAPLEN => Ok(len),
        _ => Err(too_long(frame.len())),
    }
}

fn too_long(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("frame of {len} bytes exceeds the snap length {SNAPLEN}"),
    )
}

fn seconds_u32(ts_micros: u64) -> io::Result<u32> {
    u32::try_from(ts_micros / 1_000_000).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("timestamp {ts_micros} µs does not fit classic pcap's 32-bit seconds"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_global_header_and_record_are_byte_exact() {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        writer
            .write_packet(1_714_564_800_123_456, &[0xAA, 0xBB, 0xCC])
            .unwrap();
        assert_eq!(writer.bytes_written(), 24 + 16 + 3);
        let bytes = writer.into_inner();
        let expected: Vec<u8> = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0][..],
            &[0, 0, 0, 0, 0, 0, 0, 0],
            &[0x00, 0x00, 0x04, 0x00], // 262144
            &[1, 0, 0, 0],
            &1_714_564_800u32.to_le_bytes(),
            &123_456u32.to_le_bytes(),
            &[3, 0, 0, 0, 3, 0, 0, 0],
            &[0xAA, 0xBB, 0xCC],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn pcapng_blocks_are_byte_exact_and_padded() {
        let mut writer = PcapngWriter::new(Vec::new()).unwrap();
        let header_len = writer.bytes_written();
        let ts: u64 = 0x0000_0001_0000_0002;
        writer.write_packet(ts, &[1, 2, 3, 4, 5]).unwrap();
        let bytes = writer.into_inner();
        assert_eq!(bytes.len() as u64, header_len + 12 + 20 + 8);

        // SHB: type, length, byte-order magic, version 1.0, section length -1.
        assert_eq!(&bytes[0..4], &SHB_TYPE.to_le_bytes());
        let shb_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(&bytes[8..12], &[0x4D, 0x3C, 0x2B, 0x1A]);
        assert_eq!(&bytes[12..16], &[1, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &[0xFF; 8]);
        assert_eq!(
            &bytes[shb_len - 4..shb_len],
            &(shb_len as u32).to_le_bytes()
        );
        // IDB: Ethernet, snaplen.
        let idb = &bytes[shb_len..];
        assert_eq!(&idb[0..4], &[1, 0, 0, 0]);
        assert_eq!(&idb[4..8], &20u32.to_le_bytes());
        assert_eq!(&idb[8..12], &[1, 0, 0, 0]);
        assert_eq!(&idb[12..16], &SNAPLEN.to_le_bytes());
        // EPB: 12 + 20 + 5 data + 3 padding = 40 bytes.
        let epb = &idb[20..];
        let expected: Vec<u8> = [
            &[6, 0, 0, 0][..],
            &40u32.to_le_bytes(),
            &[0, 0, 0, 0],
            &[1, 0, 0, 0],
            &[2, 0, 0, 0],
            &[5, 0, 0, 0, 5, 0, 0, 0],
            &[1, 2, 3, 4, 5, 0, 0, 0],
            &40u32.to_le_bytes(),
        ]
        .concat();
        assert_eq!(epb, &expected[..]);
    }

    #[test]
    fn oversized_frame_is_rejected_not_truncated() {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        let big = vec![0u8; SNAPLEN as usize + 1];
        assert_eq!(
            writer.write_packet(0, &big).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(writer.bytes_written(), 24);
    }
}
