//! Packet decoding: link layers down to IP, IPv4/IPv6 headers (with extension headers) and
//! the TCP/UDP/ICMP headers the flow table needs, plus Internet checksum validation.
//!
//! Everything here borrows from the captured frame; nothing allocates. Link-layer trailers
//! (Ethernet padding) are cut off using the IP length fields, so padding is never payload.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bytes::{be16, ByteReader};

/// Why a frame could not be decoded to IP; the flow table turns these into weirds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeIssue {
    /// Not IP (ARP, LLDP, ...): silently ignored like Zeek does.
    NotIp,
    /// A link type this analyzer does not decode.
    UnknownLinkType,
    /// Zeek weird names for frames that end too early or lie about lengths.
    Truncated(&'static str),
}

/// IP version of a layer-3 slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// Strips the link layer of `frame` (captured with `link_type`) down to an IP packet.
pub fn link_to_ip(link_type: u32, frame: &[u8]) -> Result<(IpVersion, &[u8]), DecodeIssue> {
    match link_type {
        1 => {
            let ethertype =
                be16(frame, 12).ok_or(DecodeIssue::Truncated("truncated_link_header"))?;
            by_ethertype(ethertype, frame.get(14..).unwrap_or_default())
        }
        // Raw IP: DLT_RAW on various systems and LINKTYPE_RAW / IPV4 / IPV6.
        12 | 14 | 101 | 228 | 229 => by_version_nibble(frame),
        113 => {
            let protocol =
                be16(frame, 14).ok_or(DecodeIssue::Truncated("truncated_link_header"))?;
            by_ethertype(protocol, frame.get(16..).unwrap_or_default())
        }
        276 => {
            let protocol = be16(frame, 0).ok_or(DecodeIssue::Truncated("truncated_link_header"))?;
            by_ethertype(protocol, frame.get(20..).unwrap_or_default())
        }
        9 => ppp(frame),
        0 | 108 => {
            let family = *frame
                .first_chunk::<4>()
                .ok_or(DecodeIssue::Truncated("truncated_link_header"))?;
            // DLT_NULL uses the capturing host's byte order, DLT_LOOP network order: accept both.
            let le = u32::from_le_bytes(family);
            let be = u32::from_be_bytes(family);
            let rest = &frame[4..];
            match (le, be) {
                (2, _) | (_, 2) => Ok((IpVersion::V4, rest)),
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => Ok((IpVersion::V6, rest)),
                _ => Err(DecodeIssue::NotIp),
            }
        }
        _ => Err(DecodeIssue::UnknownLinkType),
    }
}

fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<(IpVersion, &[u8]), DecodeIssue> {
    // Bounded: each step consumes at least 4 bytes, so the loop ends with the frame.
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok((IpVersion::V4, rest)),
            ETHERTYPE_IPV6 => return Ok((IpVersion::V6, rest)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                ethertype = be16(rest, 2).ok_or(DecodeIssue::Truncated("truncated_VLAN_header"))?;
                rest = &rest[4..];
            }
            ETHERTYPE_MPLS => {
                loop {
                    let label = rest
                        .get(..4)
                        .ok_or(DecodeIssue::Truncated("truncated_MPLS_header"))?;
                    let bottom_of_stack = label[2] & 1 == 1;
                    rest = &rest[4..];
                    if bottom_of_stack {
                        break;
                    }
                }
                return by_version_nibble(rest);
            }
            ETHERTYPE_PPPOE_SESSION => {
                let protocol =
                    be16(rest, 6).ok_or(DecodeIssue::Truncated("truncated_PPPoE_header"))?;
                rest = &rest[8..];
                return match protocol {
                    PPP_IPV4 => Ok((IpVersion::V4, rest)),
                    PPP_IPV6 => Ok((IpVersion::V6, rest)),
                    _ => Err(DecodeIssue::NotIp),
                };
            }
            _ => return Err(DecodeIssue::NotIp),
        }
    }
}

fn ppp(frame: &[u8]) -> Result<(IpVersion, &[u8]), DecodeIssue> {
    // Address/control bytes (ff 03) are optional (address/control field compression).
    let rest = if frame.starts_with(&[0xff, 0x03]) {
        &frame[2..]
    } else {
        frame
    };
    let protocol = be16(rest, 0).ok_or(DecodeIssue::Truncated("truncated_link_header"))?;
    match protocol {
        PPP_IPV4 => Ok((IpVersion::V4, &rest[2..])),
        PPP_IPV6 => Ok((IpVersion::V6, &rest[2..])),
        _ => Err(DecodeIssue::NotIp),
    }
}

fn by_version_nibble(l3: &[u8]) -> Result<(IpVersion, &[u8]), DecodeIssue> {
    match l3.first().map(|b| b >> 4) {
        Some(4) => Ok((IpVersion::V4, l3)),
        Some(6) => Ok((IpVersion::V6, l3)),
        Some(_) => Err(DecodeIssue::NotIp),
        None => Err(DecodeIssue::Truncated("truncated_IP")),
    }
}

/// IPv4 fragment identity and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub id: u32,
    /// Offset of this fragment's payload in the datagram, in bytes.
    pub offset: u32,
    pub more_fragments: bool,
}

/// A decoded IP header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Upper-layer bytes actually captured (trimmed to the IP length; may be short if the
    /// snaplen cut the packet).
    pub payload: &'a [u8],
    /// Upper-layer length according to the IP header.
    pub payload_len: u32,
    /// Bytes "on the wire" per the IP header: IPv4 total length, IPv6 payload length + 40.
    pub ip_len: u32,
    pub fragment: Option<Fragment>,
    /// IPv4 header checksum is wrong (only computed for IPv4).
    pub bad_header_checksum: bool,
}

impl IpPacket<'_> {
    /// Whether the whole upper-layer packet was captured (needed to verify its checksum).
    pub fn complete(&self) -> bool {
        self.payload.len() as u64 >= u64::from(self.payload_len)
    }
}

/// Parses an IPv4 or IPv6 header; errors are Zeek weird names.
pub fn parse_ip(
    version: IpVersion,
    l3: &[u8],
    check_header: bool,
) -> Result<IpPacket<'_>, &'static str> {
    match version {
        IpVersion::V4 => parse_ipv4(l3, check_header),
        IpVersion::V6 => parse_ipv6(l3),
    }
}

/// The fixed 20 bytes of an IPv4 header.
struct Ipv4Fixed {
    version_ihl: u8,
    total_len: u16,
    id: u16,
    flags_frag: u16,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

impl Ipv4Fixed {
    fn parse(l3: &[u8]) -> Option<Ipv4Fixed> {
        let mut r = ByteReader::new(l3);
        let version_ihl = r.u8()?;
        r.skip(1)?; // type of service
        let total_len = r.u16()?;
        let id = r.u16()?;
        let flags_frag = r.u16()?;
        r.skip(1)?; // time to live
        let proto = r.u8()?;
        r.skip(2)?; // header checksum
        Some(Ipv4Fixed {
            version_ihl,
            total_len,
            id,
            flags_frag,
            proto,
            src: Ipv4Addr::from(r.u32()?),
            dst: Ipv4Addr::from(r.u32()?),
        })
    }
}

fn parse_ipv4(l3: &[u8], check_header: bool) -> Result<IpPacket<'_>, &'static str> {
    let h = Ipv4Fixed::parse(l3).ok_or("truncated_IP")?;
    if h.version_ihl >> 4 != 4 {
        return Err("IP_version_mismatch");
    }
    let header_len = usize::from(h.version_ihl & 0x0f) * 4;
    let total_len = usize::from(h.total_len);
    if header_len < 20 || l3.len() < header_len {
        return Err("truncated_IP");
    }
    if total_len < header_len {
        return Err("bogus_IP_header_lengths");
    }
    let offset = u32::from(h.flags_frag & 0x1fff) * 8;
    let more_fragments = h.flags_frag & 0x2000 != 0;
    let fragment = (more_fragments || offset > 0).then(|| Fragment {
        id: u32::from(h.id),
        offset,
        more_fragments,
    });
    let captured_end = total_len.min(l3.len());
    let bad_header_checksum = check_header && internet_checksum(&[&l3[..header_len]]) != 0;
    Ok(IpPacket {
        src: IpAddr::V4(h.src),
        dst: IpAddr::V4(h.dst),
        proto: h.proto,
        payload: &l3[header_len..captured_end],
        payload_len: (total_len - header_len) as u32,
        ip_len: total_len as u32,
        fragment,
        bad_header_checksum,
    })
}

fn parse_ipv6(l3: &[u8]) -> Result<IpPacket<'_>, &'static str> {
    let mut r = ByteReader::new(l3);
    let (Some(version_class), Some(payload_len), Some(mut next), Some(_hop_limit)) =
        (r.u32(), r.u16(), r.u8(), r.u8())
    else {
        return Err("truncated_IP");
    };
    let (Some(src), Some(dst)) = (r.bytes(16), r.bytes(16)) else {
        return Err("truncated_IP");
    };
    if version_class >> 28 != 6 {
        return Err("IP_version_mismatch");
    }
    let payload_len = usize::from(payload_len);
    let src: [u8; 16] = src.try_into().map_err(|_| "truncated_IP")?;
    let dst: [u8; 16] = dst.try_into().map_err(|_| "truncated_IP")?;
    let end = (40 + payload_len).min(l3.len());
    let mut at = 40usize;
    let mut fragment = None;
    // Walk extension headers; each step advances at least 8 bytes, so this terminates.
    loop {
        match next {
            0 | 43 | 60 | 135 | 139 | 140 => {
                let (following, len) = extension_header_start(l3, at)?;
                next = following;
                at += (usize::from(len) + 1) * 8;
            }
            // AH counts its length in 4-byte units, minus 2.
            51 => {
                let (following, len) = extension_header_start(l3, at)?;
                next = following;
                at += (usize::from(len) + 2) * 4;
            }
            44 => {
                let mut h = ByteReader::at(l3, at);
                let (Some(following), Some(_), Some(off_flags), Some(id)) =
                    (h.u8(), h.u8(), h.u16(), h.u32())
                else {
                    return Err("truncated_IPv6_extension_header");
                };
                next = following;
                let offset = u32::from(off_flags >> 3) * 8;
                let more_fragments = off_flags & 1 != 0;
                if offset > 0 || more_fragments {
                    fragment = Some(Fragment {
                        id,
                        offset,
                        more_fragments,
                    });
                }
                at += 8;
            }
            _ => break,
        }
        if at > 40 + payload_len {
            return Err("truncated_IPv6_extension_header");
        }
    }
    let payload = l3.get(at..end.max(at)).unwrap_or_default();
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        proto: next,
        payload,
        payload_len: (40 + payload_len - at) as u32,
        ip_len: (payload_len + 40) as u32,
        fragment,
        bad_header_checksum: false,
    })
}

/// Next-header and length bytes of the IPv6 extension header at `at`.
fn extension_header_start(l3: &[u8], at: usize) -> Result<(u8, u8), &'static str> {
    let mut h = ByteReader::at(l3, at);
    match (h.u8(), h.u8()) {
        (Some(next), Some(len)) => Ok((next, len)),
        _ => Err("truncated_IPv6_extension_header"),
    }
}

/// TCP flags.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// A TCP segment header and its captured payload.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Window-scale option value of a SYN, if present.
    pub window_scale: Option<u8>,
    /// Payload captured.
    pub payload: &'a [u8],
    /// Payload length according to the IP header (what sequence numbers cover).
    pub payload_len: u32,
}

pub fn parse_tcp<'a>(ip: &IpPacket<'a>) -> Result<TcpSegment<'a>, &'static str> {
    let t = ip.payload;
    let mut r = ByteReader::new(t);
    let (Some(src_port), Some(dst_port), Some(seq), Some(ack), Some(offset), Some(flags)) =
        (r.u16(), r.u16(), r.u32(), r.u32(), r.u8(), r.u8())
    else {
        return Err("truncated_header");
    };
    let (Some(window), Some(_checksum_and_urgent)) = (r.u16(), r.skip(4)) else {
        return Err("truncated_header");
    };
    let header_len = usize::from(offset >> 4) * 4;
    if header_len < 20 || header_len as u32 > ip.payload_len {
        return Err("bad_TCP_header_len");
    }
    if t.len() < header_len {
        return Err("truncated_header");
    }
    let mut window_scale = None;
    if flags & SYN != 0 {
        window_scale = tcp_window_scale(&t[20..header_len]);
    }
    Ok(TcpSegment {
        src_port,
        dst_port,
        seq,
        ack,
        flags,
        window,
        window_scale,
        payload: &t[header_len..],
        payload_len: ip.payload_len - header_len as u32,
    })
}

fn tcp_window_scale(mut options: &[u8]) -> Option<u8> {
    while let Some(&kind) = options.first() {
        match kind {
            0 => return None,
            1 => options = &options[1..],
            _ => {
                let len = usize::from(*options.get(1)?);
                if len < 2 || len > options.len() {
                    return None;
                }
                if kind == 3 && len == 3 {
                    return Some(options[2]);
                }
                options = &options[len..];
            }
        }
    }
    None
}

/// A UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// Payload length per the UDP length field (minus the 8-byte header).
    pub payload_len: u32,
    pub payload: &'a [u8],
    pub checksum: u16,
}

pub fn parse_udp<'a>(ip: &IpPacket<'a>) -> Result<UdpDatagram<'a>, &'static str> {
    let u = ip.payload;
    let mut r = ByteReader::new(u);
    let (Some(src_port), Some(dst_port), Some(ulen), Some(checksum)) =
        (r.u16(), r.u16(), r.u16(), r.u16())
    else {
        return Err("truncated_header");
    };
    let ulen = u32::from(ulen);
    if ulen < 8 || ulen > ip.payload_len {
        return Err("bad_UDP_length");
    }
    let end = (ulen as usize).min(u.len());
    Ok(UdpDatagram {
        src_port,
        dst_port,
        payload_len: ulen - 8,
        payload: &u[8..end],
        checksum,
    })
}

/// An ICMP or ICMPv6 message header.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage {
    pub icmp_type: u8,
    pub code: u8,
}

pub fn parse_icmp(ip: &IpPacket<'_>) -> Result<IcmpMessage, &'static str> {
    let m = ip.payload;
    if m.len() < 8 {
        return Err("truncated_header");
    }
    Ok(IcmpMessage {
        icmp_type: m[0],
        code: m[1],
    })
}

/// Verifies the transport checksum of a complete upper-layer packet (TCP, UDP, ICMPv6 with
/// the pseudo header; ICMPv4 without). A UDP/IPv4 checksum of zero means "not computed".
pub fn transport_checksum_ok(ip: &IpPacket<'_>) -> bool {
    let data = &ip.payload[..(ip.payload_len as usize).min(ip.payload.len())];
    if ip.proto == 1 {
        return internet_checksum(&[data]) == 0;
    }
    if ip.proto == 17
        && matches!(ip.src, IpAddr::V4(_))
        && data.len() >= 8
        && data[6] == 0
        && data[7] == 0
    {
        return true;
    }
    let len = (data.len() as u32).to_be_bytes();
    let proto = [0, 0, 0, ip.proto];
    match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let pseudo = [s.octets(), d.octets(), [0, ip.proto, len[2], len[3]]];
            internet_checksum(&[&pseudo[0], &pseudo[1], &pseudo[2], data]) == 0
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            internet_checksum(&[&s.octets(), &d.octets(), &len, &proto, data]) == 0
        }
        _ => false,
    }
}

/// The Internet checksum over the concatenation of `parts`: 0 when the embedded checksum is
/// right. Every part except the last must have even length.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for c in &mut chunks {
            // Summing 32-bit big-endian words into 64 bits defers the carries; the fold at
            // the end gives the same one's-complement result as 16-bit summation.
            sum += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            sum += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
        }
        let mut rest = chunks.remainder().chunks_exact(2);
        for c in &mut rest {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = rest.remainder() {
            sum += u64::from(*last) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IPv4 header (with correct checksum) followed by `payload`.
    pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        let c = internet_checksum(&[&h]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    /// An Ethernet frame carrying an IPv4/TCP segment with correct checksums.
    pub fn eth_tcp(
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&src.1.to_be_bytes());
        tcp.extend_from_slice(&dst.1.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let len = (tcp.len() as u16).to_be_bytes();
        let c = internet_checksum(&[&src.0, &dst.0, &[0, 6, len[0], len[1]], &tcp]);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ipv4(src.0, dst.0, 6, &tcp));
        frame
    }

    #[test]
    fn checksum_of_known_header_is_zero() {
        let p = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, &[]);
        assert_eq!(internet_checksum(&[&p]), 0);
        let odd = internet_checksum(&[&[0x01, 0x02, 0x03]]);
        assert_eq!(odd, !(0x0102u16 + 0x0300));
    }

    #[test]
    fn ethernet_vlan_qinq_pppoe_mpls() {
        let ip = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, &[0; 8]);
        let mut qinq = vec![0u8; 12];
        qinq.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00]);
        qinq.extend_from_slice(&ip);
        let (v, l3) = link_to_ip(1, &qinq).expect("qinq decodes");
        assert_eq!((v, l3.len()), (IpVersion::V4, ip.len()));

        let mut pppoe = vec![0u8; 12];
        pppoe.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 0, 0x00, 0x21]);
        pppoe.extend_from_slice(&ip);
        assert_eq!(link_to_ip(1, &pppoe).expect("pppoe").1.len(), ip.len());

        let mut mpls = vec![0u8; 12];
        mpls.extend_from_slice(&[0x88, 0x47, 0, 0, 0x10, 64, 0, 0, 0x21, 64]);
        mpls.extend_from_slice(&ip);
        assert_eq!(link_to_ip(1, &mpls).expect("mpls").1.len(), ip.len());
    }

    #[test]
    fn sll_null_and_raw() {
        let ip = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 17, &[0; 8]);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        assert_eq!(link_to_ip(113, &sll).expect("sll").0, IpVersion::V4);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert_eq!(link_to_ip(0, &null).expect("null").0, IpVersion::V4);
        assert_eq!(link_to_ip(101, &ip).expect("raw").0, IpVersion::V4);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        assert_eq!(link_to_ip(276, &sll2).expect("sll2").1.len(), ip.len());
        let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
        ppp.extend_from_slice(&ip);
        assert_eq!(link_to_ip(9, &ppp).expect("ppp").1.len(), ip.len());
        let mut lo = 30u32.to_be_bytes().to_vec();
        lo.extend_from_slice(&[0x60; 40]);
        assert_eq!(link_to_ip(108, &lo).expect("loop v6").0, IpVersion::V6);
        assert_eq!(
            link_to_ip(147, &ip).err(),
            Some(DecodeIssue::UnknownLinkType)
        );
    }

    #[test]
    fn ipv4_trims_padding_and_flags_fragments() {
        let mut p = ipv4([1, 1, 1, 1], [2, 2, 2, 2], 17, &[9; 8]);
        p.extend_from_slice(&[0; 6]); // Ethernet padding
        let ip = parse_ip(IpVersion::V4, &p, true).expect("parses");
        assert_eq!(
            (ip.payload.len(), ip.ip_len, ip.bad_header_checksum),
            (8, 28, false)
        );
        assert!(ip.fragment.is_none());
        p[10] ^= 0xff;
        assert!(
            parse_ip(IpVersion::V4, &p, true)
                .expect("parses")
                .bad_header_checksum
        );
    }

    #[test]
    fn ipv6_skips_extension_headers() {
        let mut p = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        p.extend_from_slice(&[0; 32]);
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]); // hop-by-hop, 8 bytes, next UDP
        p.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
        let ip = parse_ip(IpVersion::V6, &p, true).expect("parses");
        assert_eq!(
            (ip.proto, ip.payload.len(), ip.ip_len, ip.payload_len),
            (17, 8, 56, 8)
        );
    }

    #[test]
    fn window_scale_option_found() {
        assert_eq!(tcp_window_scale(&[1, 1, 3, 3, 255, 0]), Some(255));
        assert_eq!(tcp_window_scale(&[2, 4, 5, 180, 0]), None);
        assert_eq!(tcp_window_scale(&[2, 40]), None);
    }
}
