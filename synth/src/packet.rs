//! Frame construction: Ethernet II + IPv4/IPv6 + TCP/UDP/ICMP with correct lengths and
//! checksums. A frame is built in place in a caller-owned `Vec` (headers first, then the
//! payload written by a closure, then lengths and checksums patched), so no packet is copied.

use std::net::IpAddr;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

/// One side of a conversation as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub mac: [u8; 6],
    pub ip: IpAddr,
    pub port: u16,
}

/// Per-packet IP fields that vary by sender.
#[derive(Debug, Clone, Copy)]
pub struct IpFields {
    /// IPv4 identification (ignored for IPv6).
    pub id: u16,
    /// TTL / hop limit as seen at the capture point.
    pub ttl: u8,
}

/// The TCP header fields the generator sets; data offset and checksum are computed.
#[derive(Debug, Clone, Copy)]
pub struct TcpHeader {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

/// Internet checksum accumulation: 32-bit big-endian words summed into a u64 and folded at
/// the end. Valid because 2^16 ≡ 1 (mod 0xFFFF), so wider words fold to the same 16-bit
/// one's-complement sum, and it is several times faster than 16-bit steps.
pub fn checksum_accumulate(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        sum += u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    sum + u64::from(u32::from_be_bytes(tail))
}

/// Folds an accumulated sum and complements it: the value to store in a checksum field.
pub fn checksum_finish(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// The RFC 1071 checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    checksum_finish(checksum_accumulate(0, data))
}

/// Sum of the TCP/UDP/ICMPv6 pseudo-header for the address family of `src`.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, l4_len: usize) -> u64 {
    let sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            checksum_accumulate(checksum_accumulate(0, &s.octets()), &d.octets())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            checksum_accumulate(checksum_accumulate(0, &s.octets()), &d.octets())
        }
        _ => unreachable!("endpoints of one flow share an address family"),
    };
    sum + u64::from(proto) + l4_len as u64
}

/// Builds one complete Ethernet frame into `out` (cleared first).
///
/// `write_l4` appends the transport header and payload; `checksum_at` is the offset of the
/// checksum field inside that L4 segment. ICMPv4 is the one protocol without a
/// pseudo-header. Invariant: `from` and `to` have the same address family.
pub fn build_frame(
    out: &mut Vec<u8>,
    from: &Endpoint,
    to: &Endpoint,
    ip: IpFields,
    proto: u8,
    checksum_at: usize,
    write_l4: impl FnOnce(&mut Vec<u8>),
) {
    out.clear();
    out.extend_from_slice(&to.mac);
    out.extend_from_slice(&from.mac);
    let ip_len = match from.ip {
        IpAddr::V4(_) => {
            out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            IPV4_LEN
        }
        IpAddr::V6(_) => {
            out.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            IPV6_LEN
        }
    };
    out.resize(ETH_LEN + ip_len, 0);
    let l4_start = out.len();
    write_l4(out);
    let l4_len = out.len() - l4_start;

    let header = &mut out[ETH_LEN..l4_start];
    match (from.ip, to.ip) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            header[0] = 0x45;
            header[2..4].copy_from_slice(&((IPV4_LEN + l4_len) as u16).to_be_bytes());
            header[4..6].copy_from_slice(&ip.id.to_be_bytes());
            // Don't Fragment on TCP, as Linux sets it with PMTU discovery.
            let flags: u16 = if proto == PROTO_TCP { 0x4000 } else { 0 };
            header[6..8].copy_from_slice(&flags.to_be_bytes());
            header[8] = ip.ttl;
            header[9] = proto;
            header[12..16].copy_from_slice(&src.octets());
            header[16..20].copy_from_slice(&dst.octets());
            let sum = checksum(header);
            header[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            header[0] = 0x60;
            header[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            header[6] = proto;
            header[7] = ip.ttl;
            header[8..24].copy_from_slice(&src.octets());
            header[24..40].copy_from_slice(&dst.octets());
        }
        _ => unreachable!("endpoints of one flow share an address family"),
    }

    let pseudo = if proto == PROTO_ICMP {
        0
    } else {
        pseudo_header_sum(from.ip, to.ip, proto, l4_len)
    };
    let l4 = &mut out[l4_start..];
    l4[checksum_at..checksum_at + 2].copy_from_slice(&[0, 0]);
    let mut sum = checksum_finish(checksum_accumulate(pseudo, l4));
    if proto == PROTO_UDP && sum == 0 {
        // UDP transmits a computed zero as all ones; zero means "no checksum".
        sum = 0xFFFF;
    }
    l4[checksum_at..checksum_at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// A TCP segment; `options` must be a multiple of four bytes long.
pub fn tcp_frame(
    out: &mut Vec<u8>,
    from: &Endpoint,
    to: &Endpoint,
    ip: IpFields,
    tcp: TcpHeader,
    options: &[u8],
    payload: impl FnOnce(&mut Vec<u8>),
) {
    debug_assert_eq!(options.len() % 4, 0);
    build_frame(out, from, to, ip, PROTO_TCP, 16, |seg| {
        seg.extend_from_slice(&from.port.to_be_bytes());
        seg.extend_from_slice(&to.port.to_be_bytes());
        seg.extend_from_slice(&tcp.seq.to_be_bytes());
        seg.extend_from_slice(&tcp.ack.to_be_bytes());
        let data_offset = ((20 + options.len()) / 4) as u8;
        seg.push(data_offset << 4);
        seg.push(tcp.flags);
        seg.extend_from_slice(&tcp.window.to_be_bytes());
        seg.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        seg.extend_from_slice(options);
        payload(seg);
    });
}

/// A UDP datagram.
pub fn udp_frame(out: &mut Vec<u8>, from: &Endpoint, to: &Endpoint, ip: IpFields, payload: &[u8]) {
    build_frame(out, from, to, ip, PROTO_UDP, 6, |seg| {
        seg.extend_from_slice(&from.port.to_be_bytes());
        seg.extend_from_slice(&to.port.to_be_bytes());
        seg.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        seg.extend_from_slice(&[0, 0]);
        seg.extend_from_slice(payload);
    });
}

/// The fields of an ICMP/ICMPv6 echo message.
#[derive(Debug, Clone, Copy)]
pub struct Echo {
    pub reply: bool,
    pub ident: u16,
    pub seq: u16,
}

/// An ICMP (IPv4) or ICMPv6 echo request/reply; the family follows the endpoints.
pub fn icmp_echo_frame(
    out: &mut Vec<u8>,
    from: &Endpoint,
    to: &Endpoint,
    ip: IpFields,
    echo: Echo,
    payload: &[u8],
) {
    let (proto, icmp_type) = match (from.ip, echo.reply) {
        (IpAddr::V4(_), false) => (PROTO_ICMP, 8),
        (IpAddr::V4(_), true) => (PROTO_ICMP, 0),
        (IpAddr::V6(_), false) => (PROTO_ICMPV6, 128),
        (IpAddr::V6(_), true) => (PROTO_ICMPV6, 129),
    };
    build_frame(out, from, to, ip, proto, 2, |seg| {
        seg.extend_from_slice(&[icmp_type, 0, 0, 0]);
        seg.extend_from_slice(&echo.ident.to_be_bytes());
        seg.extend_from_slice(&echo.seq.to_be_bytes());
        seg.extend_from_slice(payload);
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Verifies the IP header checksum (IPv4) and the L4 checksum of a frame built here.
    /// Returns the L4 protocol. Shared with the generator's tests.
    pub(crate) fn verify_frame_checksums(frame: &[u8]) -> u8 {
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let ip = &frame[ETH_LEN..];
        let (proto, pseudo, l4) = match ethertype {
            ETHERTYPE_IPV4 => {
                assert_eq!(checksum(&ip[..IPV4_LEN]), 0, "IPv4 header checksum");
                let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
                assert_eq!(total, ip.len(), "IPv4 total length");
                let l4 = &ip[IPV4_LEN..total];
                let proto = ip[9];
                let mut sum = checksum_accumulate(0, &ip[12..20]);
                sum += u64::from(proto) + l4.len() as u64;
                (proto, if proto == PROTO_ICMP { 0 } else { sum }, l4)
            }
            ETHERTYPE_IPV6 => {
                let payload_len = u16::from_be_bytes([ip[4], ip[5]]) as usize;
                assert_eq!(payload_len + IPV6_LEN, ip.len(), "IPv6 payload length");
                let l4 = &ip[IPV6_LEN..];
                let proto = ip[6];
                let sum = checksum_accumulate(0, &ip[8..40]) + u64::from(proto) + l4.len() as u64;
                (proto, sum, l4)
            }
            other => panic!("unexpected ethertype {other:#06x}"),
        };
        assert_eq!(
            checksum_finish(checksum_accumulate(pseudo, l4)),
            0,
            "L4 checksum of protocol {proto}"
        );
        proto
    }

    fn endpoints_v4() -> (Endpoint, Endpoint) {
        let a = Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 40000,
        };
        let b = Endpoint {
            mac: [2, 0, 0, 0, 0, 2],
            ip: IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)),
            port: 80,
        };
        (a, b)
    }

    #[test]
    fn rfc1071_example_checksum() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // Odd length pads with a zero byte.
        assert_eq!(checksum(&[0x01]), !0x0100);
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // The classic example header from Wikipedia's "IPv4 header checksum" article.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
    }

    #[test]
    fn tcp_udp_icmp_frames_carry_valid_checksums_v4_and_v6() {
        let (a, b) = endpoints_v4();
        let a6 = Endpoint {
            ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10)),
            ..a
        };
        let b6 = Endpoint {
            ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x20)),
            ..b
        };
        let ip = IpFields { id: 7, ttl: 64 };
        let mut frame = Vec::new();
        for (from, to) in [(&a, &b), (&a6, &b6)] {
            let tcp = TcpHeader {
                seq: 1000,
                ack: 2000,
                flags: TCP_ACK | TCP_PSH,
                window: 502,
            };
            tcp_frame(&mut frame, from, to, ip, tcp, &[1, 1, 1, 1], |p| {
                p.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n odd")
            });
            assert_eq!(verify_frame_checksums(&frame), PROTO_TCP);
            udp_frame(&mut frame, from, to, ip, b"hello udp");
            assert_eq!(verify_frame_checksums(&frame), PROTO_UDP);
            let echo = Echo {
                reply: false,
                ident: 9,
                seq: 1,
            };
            icmp_echo_frame(&mut frame, from, to, ip, echo, &[0x10; 56]);
            let proto = verify_frame_checksums(&frame);
            assert!(proto == PROTO_ICMP || proto == PROTO_ICMPV6);
        }
    }

    #[test]
    fn tcp_frame_layout_is_exact() {
        let (a, b) = endpoints_v4();
        let mut frame = Vec::new();
        let tcp = TcpHeader {
            seq: 0x01020304,
            ack: 0,
            flags: TCP_SYN,
            window: 64240,
        };
        tcp_frame(
            &mut frame,
            &a,
            &b,
            IpFields { id: 1, ttl: 64 },
            tcp,
            &[],
            |_| {},
        );
        assert_eq!(frame.len(), 14 + 20 + 20);
        assert_eq!(&frame[0..6], &b.mac);
        assert_eq!(&frame[6..12], &a.mac);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(&frame[14 + 2..14 + 4], &40u16.to_be_bytes());
        assert_eq!(&frame[14 + 6..14 + 8], &[0x40, 0x00], "DF set on TCP");
        let tcp_hdr = &frame[34..];
        assert_eq!(&tcp_hdr[0..2], &40000u16.to_be_bytes());
        assert_eq!(&tcp_hdr[2..4], &80u16.to_be_bytes());
        assert_eq!(&tcp_hdr[4..8], &[1, 2, 3, 4]);
        assert_eq!(tcp_hdr[12], 5 << 4);
        assert_eq!(tcp_hdr[13], TCP_SYN);
    }
}
