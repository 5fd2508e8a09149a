//! SSH on the wire (RFC 4253, and SSH-1 framing): version lines, binary packets of both
//! protocol generations, and the two key-exchange messages ssh.log needs (KEXINIT's
//! name-lists and the host key blob of the server's key-exchange reply).
//!
//! Everything here reads borrowed bytes and returns `None` until enough has arrived; no log
//! semantics (those are in `mod.rs`).

use crate::analyzer::bytes::ByteReader;

/// Most entries kept per KEXINIT name-list (Zeek's `SSH::max_kexinit_*_algorithms`).
pub(crate) const MAX_NAMES: usize = 100;

/// The protocol generation a version string announces (Zeek's binpac `update_version`):
/// the character after `SSH-`, and `1.99` (both generations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Announced {
    Ssh1,
    Ssh2,
    Ssh199,
    Unknown,
}

impl Announced {
    pub(crate) fn of(version: &[u8]) -> Announced {
        match version.get(4) {
            Some(b'2') => Announced::Ssh2,
            Some(b'1') if version.get(6) == Some(&b'9') && version.get(7) == Some(&b'9') => {
                Announced::Ssh199
            }
            Some(b'1') => Announced::Ssh1,
            _ => Announced::Unknown,
        }
    }
}

/// The packet format both sides speak once their versions are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Ssh1,
    Ssh2,
}

/// Combines the announced versions as Zeek's analyzer does to pick the packet format:
/// equal versions keep it (1.99 with 1.99 is SSH-2), 1.99 yields to the other side, and
/// SSH-1 against SSH-2 (or an unknown side) has none.
pub(crate) fn wire(client: Announced, server: Announced) -> Option<Wire> {
    use Announced::*;
    match (client, server) {
        (Ssh1, Ssh1) | (Ssh1, Ssh199) | (Ssh199, Ssh1) => Some(Wire::Ssh1),
        (Ssh2, Ssh2) | (Ssh199, Ssh199) | (Ssh199, Ssh2) | (Ssh2, Ssh199) => Some(Wire::Ssh2),
        _ => None,
    }
}

/// One line of the version exchange, without its line end; `None` until the line is
/// complete. Returns the line and the bytes it took (with `\n`).
pub(crate) fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let text = &buf[..end];
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    Some((text, end + 1))
}

/// An SSH-2 binary packet (RFC 4253 §6) in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packet<'a> {
    pub msg_type: u8,
    pub payload: &'a [u8],
}

/// Outcome of reading one packet from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed<T> {
    /// A packet and the bytes it took.
    Whole(T, usize),
    /// More bytes are needed; the packet will take `total` bytes.
    Partial { total: usize },
    /// The header cannot start a packet.
    Malformed,
}

/// Reads an SSH-2 packet: `packet_length`, `padding_length`, the message type, payload,
/// padding (the MAC is absent before the first NEWKEYS).
pub(crate) fn ssh2_packet(buf: &[u8]) -> Framed<Packet<'_>> {
    let mut r = ByteReader::new(buf);
    let Some(len) = r.u32() else {
        return Framed::Partial { total: 5 };
    };
    let Ok(len) = usize::try_from(len) else {
        return Framed::Malformed;
    };
    let total = len.saturating_add(4);
    if len < 2 {
        return Framed::Malformed;
    }
    if buf.len() < total {
        return Framed::Partial { total };
    }
    let body = &buf[4..total];
    let padding = usize::from(body[0]);
    let payload_end = len.saturating_sub(padding).max(2);
    Framed::Whole(
        Packet {
            msg_type: body[1],
            payload: &body[2..payload_end],
        },
        total,
    )
}

/// Reads an SSH-1 packet (`length`, 1..8 bytes of padding so that padding, type, data and
/// CRC fill a multiple of 8, the type, data, CRC); only its type matters here.
pub(crate) fn ssh1_packet(buf: &[u8]) -> Framed<u8> {
    let mut r = ByteReader::new(buf);
    let Some(len) = r.u32() else {
        return Framed::Partial { total: 5 };
    };
    let Ok(len) = usize::try_from(len) else {
        return Framed::Malformed;
    };
    let padding = 8 - len % 8;
    let total = len.saturating_add(4).saturating_add(padding);
    if len < 5 {
        return Framed::Malformed;
    }
    match buf.get(4 + padding) {
        Some(&msg_type) if buf.len() >= total => Framed::Whole(msg_type, total),
        _ => Framed::Partial { total },
    }
}

/// The algorithm name-lists of a KEXINIT (RFC 4253 §7.1), each capped at [`MAX_NAMES`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KexInit {
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub cipher_c2s: Vec<String>,
    pub cipher_s2c: Vec<String>,
    pub mac_c2s: Vec<String>,
    pub mac_s2c: Vec<String>,
    pub compression_c2s: Vec<String>,
    pub compression_s2c: Vec<String>,
}

fn ssh_string<'a>(r: &mut ByteReader<'a>) -> Option<&'a [u8]> {
    let len = usize::try_from(r.u32()?).ok()?;
    r.bytes(len)
}

fn name_list(r: &mut ByteReader<'_>) -> Option<Vec<String>> {
    let raw = ssh_string(r)?;
    if raw.is_empty() {
        return Some(Vec::new());
    }
    Some(
        raw.split(|&b| b == b',')
            .take(MAX_NAMES)
            .map(crate::analyzer::app::escape_bytes)
            .collect(),
    )
}

/// Parses a KEXINIT payload (after the message type).
pub(crate) fn kex_init(payload: &[u8]) -> Option<KexInit> {
    let mut r = ByteReader::new(payload);
    r.skip(16)?; // cookie
    Some(KexInit {
        kex: name_list(&mut r)?,
        host_key: name_list(&mut r)?,
        cipher_c2s: name_list(&mut r)?,
        cipher_s2c: name_list(&mut r)?,
        mac_c2s: name_list(&mut r)?,
        mac_s2c: name_list(&mut r)?,
        compression_c2s: name_list(&mut r)?,
        compression_s2c: name_list(&mut r)?,
    })
}

/// The server's host key blob `K_S`: the first string of a key-exchange reply (DH, DH group
/// exchange and ECDH replies, GSS-API host key message).
pub(crate) fn host_key_blob(payload: &[u8]) -> Option<&[u8]> {
    ssh_string(&mut ByteReader::new(payload))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An SSH-2 packet with `msg_type` and `payload`, padded to a multiple of 8 as senders do.
    pub(crate) fn packet(msg_type: u8, payload: &[u8]) -> Vec<u8> {
        let unpadded = 4 + 1 + 1 + payload.len();
        let padding = 4 + (8 - (unpadded + 4) % 8) % 8;
        let len = (1 + 1 + payload.len() + padding) as u32;
        let mut p = len.to_be_bytes().to_vec();
        p.push(padding as u8);
        p.push(msg_type);
        p.extend_from_slice(payload);
        p.extend(std::iter::repeat_n(0, padding));
        p
    }

    pub(crate) fn string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    /// A KEXINIT payload from ten comma-separated lists.
    pub(crate) fn kex_init_payload(lists: [&str; 10]) -> Vec<u8> {
        let mut p = vec![0x11; 16];
        for l in lists {
            p.extend(string(l.as_bytes()));
        }
        p.extend_from_slice(&[0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn versions_combine_like_zeek() {
        let a = |s: &str| Announced::of(s.as_bytes());
        assert_eq!(a("SSH-2.0-OpenSSH"), Announced::Ssh2);
        assert_eq!(a("SSH-1.99-x"), Announced::Ssh199);
        assert_eq!(a("SSH-1.5-x"), Announced::Ssh1);
        assert_eq!(a("SSH-"), Announced::Unknown);
        assert_eq!(wire(Announced::Ssh1, Announced::Ssh199), Some(Wire::Ssh1));
        assert_eq!(wire(Announced::Ssh2, Announced::Ssh199), Some(Wire::Ssh2));
        assert_eq!(wire(Announced::Ssh1, Announced::Ssh2), None);
        assert_eq!(wire(Announced::Ssh2, Announced::Unknown), None);
    }

    #[test]
    fn lines_and_packets() {
        assert_eq!(line(b"SSH-2.0-x\r\nrest"), Some((&b"SSH-2.0-x"[..], 11)));
        assert_eq!(line(b"SSH-2.0-x"), None);
        let p = packet(21, &[]);
        assert_eq!(p.len() % 8, 0);
        assert_eq!(
            ssh2_packet(&p),
            Framed::Whole(
                Packet {
                    msg_type: 21,
                    payload: &[]
                },
                p.len()
            )
        );
        assert_eq!(ssh2_packet(&p[..7]), Framed::Partial { total: p.len() });
        assert_eq!(ssh2_packet(&[0, 0, 0, 1, 0]), Framed::Malformed);
        // SSH-1: length 9 → 7 bytes of padding, type 3 after them.
        let mut s1 = vec![0, 0, 0, 9];
        s1.extend_from_slice(&[0; 7]);
        s1.push(3);
        s1.extend_from_slice(&[0; 8]);
        assert_eq!(ssh1_packet(&s1), Framed::Whole(3, 20));
        assert_eq!(ssh1_packet(&s1[..12]), Framed::Partial { total: 20 });
    }

    #[test]
    fn kex_init_lists_and_host_key() {
        let payload = kex_init_payload([
            "curve25519-sha256,ecdh-sha2-nistp256",
            "ssh-ed25519",
            "aes128-ctr",
            "aes256-ctr",
            "hmac-sha2-256",
            "hmac-sha2-256",
            "none,zlib@openssh.com",
            "none",
            "",
            "",
        ]);
        let k = kex_init(&payload).expect("kexinit");
        assert_eq!(k.kex, ["curve25519-sha256", "ecdh-sha2-nistp256"]);
        assert_eq!(k.compression_c2s, ["none", "zlib@openssh.com"]);
        assert_eq!(k.cipher_s2c, ["aes256-ctr"]);
        assert!(kex_init(&payload[..40]).is_none());
        let mut reply = string(b"blob");
        reply.extend(string(b"q"));
        assert_eq!(host_key_blob(&reply), Some(&b"blob"[..]));
    }
}
