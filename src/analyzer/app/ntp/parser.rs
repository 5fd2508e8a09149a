//! The NTP wire format (RFC 5905 for modes 1-5, RFC 1119 for control messages, ntpd's
//! private mode 7), as Zeek's `src/analyzer/protocol/ntp/ntp-protocol.pac` and
//! `ntp-mode7.pac` read it: one message per UDP datagram.
//!
//! A message that Zeek's parser would reject (too short for its mode, an extension field
//! that breaks its length rules) is an error here too: Zeek then raises no event and logs
//! nothing for it.

use crate::analyzer::bytes::ByteReader;

/// Length of the fixed part of a mode 1-5 message.
pub const STANDARD_LEN: usize = 48;
/// A standard message longer than its fixed part by more than this carries extension
/// fields (the last 20 or 24 bytes may be a MAC).
const MAC_ROOM: usize = 24;

/// An NTP 64-bit timestamp: seconds since 1900 and a binary fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: u32,
    pub fraction: u32,
}

/// An NTP 32-bit short time. Zeek reads both halves as signed 16-bit numbers, so a
/// fraction of 0x8000 or more counts negatively; kept so, to log what Zeek logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortTime {
    pub seconds: i16,
    pub fraction: i16,
}

/// The body of a mode 1-5 message (Zeek's `NTP::StandardMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standard {
    pub stratum: u8,
    /// log2 of the poll interval in seconds.
    pub poll: i8,
    /// log2 of the clock precision in seconds.
    pub precision: i8,
    pub root_delay: ShortTime,
    pub root_dispersion: ShortTime,
    pub reference_id: [u8; 4],
    pub reference: Timestamp,
    pub origin: Timestamp,
    pub receive: Timestamp,
    pub transmit: Timestamp,
    /// Extension fields present (their contents are not read, as in Zeek).
    pub extensions: u64,
}

/// What follows the first byte, by mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Modes 1-5: synchronisation.
    Standard(Standard),
    /// Mode 6 (control) and mode 7 (private): not logged in ntp.log.
    Control,
    Private,
    /// Mode 0 (reserved): the rest is opaque.
    Reserved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub version: u8,
    pub mode: u8,
    pub body: Body,
}

/// Why a datagram is not an NTP message Zeek would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NtpError {
    #[error("datagram too short for an NTP message of its mode")]
    Truncated,
    #[error("NTP extension field with an impossible length")]
    BadExtension,
}

/// The mode of a datagram's first byte (the low three bits).
pub fn mode_of(first: u8) -> u8 {
    first & 0x07
}

/// Parses one datagram.
pub fn parse_message(data: &[u8]) -> Result<Message, NtpError> {
    let mut r = ByteReader::new(data);
    let first = r.u8().ok_or(NtpError::Truncated)?;
    let version = (first >> 3) & 0x07;
    let mode = mode_of(first);
    let body = match mode {
        1..=5 => Body::Standard(parse_standard(data)?),
        6 => {
            // second byte, sequence, status, association id, offset, count, data.
            r.skip(9).ok_or(NtpError::Truncated)?;
            let count = r.u16().ok_or(NtpError::Truncated)?;
            r.skip(usize::from(count)).ok_or(NtpError::Truncated)?;
            Body::Control
        }
        7 => {
            let second = r.u8().ok_or(NtpError::Truncated)?;
            r.skip(2).ok_or(NtpError::Truncated)?;
            let err_and_len = r.u16().ok_or(NtpError::Truncated)?;
            r.skip(usize::from(err_and_len & 0x0fff))
                .ok_or(NtpError::Truncated)?;
            if second & 0x80 != 0 {
                r.skip(20).ok_or(NtpError::Truncated)?;
            }
            Body::Private
        }
        _ => Body::Reserved,
    };
    Ok(Message {
        version,
        mode,
        body,
    })
}

fn parse_standard(data: &[u8]) -> Result<Standard, NtpError> {
    let mut r = ByteReader::new(data.get(1..).unwrap_or_default());
    let mut fixed = || -> Option<Standard> {
        let short = |r: &mut ByteReader<'_>| -> Option<ShortTime> {
            Some(ShortTime {
                seconds: r.u16()? as i16,
                fraction: r.u16()? as i16,
            })
        };
        let stamp = |r: &mut ByteReader<'_>| -> Option<Timestamp> {
            Some(Timestamp {
                seconds: r.u32()?,
                fraction: r.u32()?,
            })
        };
        Some(Standard {
            stratum: r.u8()?,
            poll: r.u8()? as i8,
            precision: r.u8()? as i8,
            root_delay: short(&mut r)?,
            root_dispersion: short(&mut r)?,
            reference_id: r.bytes(4)?.try_into().ok()?,
            reference: stamp(&mut r)?,
            origin: stamp(&mut r)?,
            receive: stamp(&mut r)?,
            transmit: stamp(&mut r)?,
            extensions: 0,
        })
    };
    let mut msg = fixed().ok_or(NtpError::Truncated)?;
    if data.len() - STANDARD_LEN > MAC_ROOM {
        msg.extensions = count_extensions(&data[STANDARD_LEN..])?;
    }
    Ok(msg)
}

/// Counts the RFC 5906 extension fields before the last 24 bytes, with the length rules of
/// Zeek's parser (a field's length covers its fixed part; value and signature fit in it).
fn count_extensions(mut rest: &[u8]) -> Result<u64, NtpError> {
    let mut count = 0;
    loop {
        let mut r = ByteReader::new(rest);
        let mut field = || -> Result<usize, NtpError> {
            let short = NtpError::Truncated;
            r.skip(2).ok_or(short)?;
            let len = usize::from(r.u16().ok_or(short)?);
            r.skip(10).ok_or(short)?;
            let value_len = r.u32().ok_or(short)? as usize;
            // Zeek enforces len >= 18 and then len >= 22, both times on the value length.
            if len < 22 || value_len > len - 22 {
                return Err(NtpError::BadExtension);
            }
            r.skip(value_len).ok_or(short)?;
            let sig_len = r.u32().ok_or(short)? as usize;
            r.skip(sig_len).ok_or(short)?;
            // Padding up to the field's length (none if the parts already went past it).
            Ok(r.pos().max(len))
        };
        let used = field()?;
        rest = rest.get(used..).ok_or(NtpError::Truncated)?;
        count += 1;
        if rest.len() <= MAC_ROOM {
            return Ok(count);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client request (version 4, mode 3) as ntpdate sends it.
    pub(crate) fn client_request() -> Vec<u8> {
        let mut m = vec![0u8; STANDARD_LEN];
        m[0] = 0x23;
        m[2] = 6; // poll 64 s
        m[3] = 0xe9; // precision 2^-23
        m[40..44].copy_from_slice(&0xe0a1_b2c3u32.to_be_bytes());
        m[44..48].copy_from_slice(&0x8000_0000u32.to_be_bytes());
        m
    }

    #[test]
    fn standard_message_fields() {
        let mut m = client_request();
        m[1] = 2;
        m[4..8].copy_from_slice(&[0, 1, 0x80, 0]);
        m[12..16].copy_from_slice(&[192, 0, 2, 1]);
        let msg = parse_message(&m).expect("parses");
        assert_eq!((msg.version, msg.mode), (4, 3));
        let Body::Standard(s) = msg.body else {
            panic!("standard body expected")
        };
        assert_eq!((s.stratum, s.poll, s.precision), (2, 6, -23));
        assert_eq!(
            s.root_delay,
            ShortTime {
                seconds: 1,
                fraction: i16::MIN
            }
        );
        assert_eq!(s.reference_id, [192, 0, 2, 1]);
        assert_eq!(s.transmit.seconds, 0xe0a1_b2c3);
        assert_eq!(s.extensions, 0);
    }

    #[test]
    fn short_or_broken_messages_are_errors() {
        let m = client_request();
        assert_eq!(parse_message(&m[..47]), Err(NtpError::Truncated));
        assert_eq!(parse_message(&[]), Err(NtpError::Truncated));
        // A MAC (20 bytes) is not an extension.
        let mut with_mac = m.clone();
        with_mac.extend_from_slice(&[0; 20]);
        assert!(parse_message(&with_mac).is_ok());
        // 28 more bytes: an extension field whose length is too small.
        let mut ext = m.clone();
        ext.extend_from_slice(&[0; 28]);
        assert_eq!(parse_message(&ext), Err(NtpError::BadExtension));
        // A well-formed 28-byte field (length 28, no value or signature) and a MAC.
        let mut good = m;
        let mut field = vec![0u8; 28];
        field[2..4].copy_from_slice(&28u16.to_be_bytes());
        good.extend_from_slice(&field);
        good.extend_from_slice(&[0; 20]);
        let Body::Standard(s) = parse_message(&good).expect("parses").body else {
            panic!("standard body expected")
        };
        assert_eq!(s.extensions, 1);
    }

    #[test]
    fn control_and_private_modes() {
        // Mode 6, count 2, two data bytes.
        let control = [0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b'];
        assert_eq!(parse_message(&control).expect("parses").body, Body::Control);
        assert!(parse_message(&control[..13]).is_err());
        // Mode 7 (monlist request), no data, no MAC.
        let private = [0x17, 0x00, 0x03, 0x2a, 0x00, 0x00];
        assert_eq!(parse_message(&private).expect("parses").body, Body::Private);
    }
}
