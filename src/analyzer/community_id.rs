//! The Community ID flow hash, version 1 (corelight/community-id-spec), as conn.log's last
//! column (`community_id`, Zeek's `policy/protocols/conn/community-id-logging`).
//!
//! The hash is SHA-1 over: the seed (2 bytes, big-endian), the two addresses, the IP protocol,
//! a zero pad byte and, for protocols with ports, the two ports (big-endian), with the
//! endpoints ordered so that both directions of a flow give the same value; the result is
//! `1:` followed by the base64 of the digest. ICMP and ICMPv6 use the conn.log "ports"
//! (the message type, and the counterpart type of a request/reply pair or else the code);
//! a message without a counterpart is one-way and keeps its direction. Other IP protocols
//! hash without ports (SCTP keeps its ports).
//!
//! It is computed once per connection, when its conn.log line is written, and allocates
//! nothing: the text lives in a [`CommunityId`] on the stack.

use std::net::IpAddr;

use base64::Engine as _;

use super::icmp::icmp_counterpart;

/// Length of `1:` plus the base64 of a 20-byte SHA-1 digest.
const TEXT_LEN: usize = 2 + 28;

/// One endpoint of a flow as conn.log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

/// A Community ID v1 string (`1:` + base64), kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId([u8; TEXT_LEN]);

impl CommunityId {
    pub fn as_str(&self) -> &str {
        // Built from "1:" and base64 output only: always ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The raw SHA-1 digest of a flow; [`community_id_v1`] is its text form.
pub fn digest_v1(seed: u16, ip_proto: u8, orig: Endpoint, resp: Endpoint) -> [u8; 20] {
    let has_ports = matches!(ip_proto, 1 | 6 | 17 | 58 | 132);
    let one_way = match ip_proto {
        1 => icmp_is_one_way(false, orig.port),
        58 => icmp_is_one_way(true, orig.port),
        _ => false,
    };
    // The spec orders by address, then by port (numerically).
    let (src, dst) = if one_way || (orig.addr, orig.port) < (resp.addr, resp.port) {
        (orig, resp)
    } else {
        (resp, orig)
    };
    // The message is at most 2 + 16 + 16 + 2 + 4 = 40 bytes: it and SHA-1's padding fit one
    // 64-byte block, compressed once (the streaming hasher's buffering was most of the cost).
    let mut block = [0u8; 64];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        block[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(&seed.to_be_bytes());
    for addr in [src.addr, dst.addr] {
        match addr {
            IpAddr::V4(a) => put(&a.octets()),
            IpAddr::V6(a) => put(&a.octets()),
        }
    }
    put(&[ip_proto, 0]);
    if has_ports {
        put(&src.port.to_be_bytes());
        put(&dst.port.to_be_bytes());
    }
    block[len] = 0x80;
    block[56..].copy_from_slice(&((len as u64) * 8).to_be_bytes());
    let mut state = SHA1_INITIAL_STATE;
    sha1::compress(&mut state, &[block.into()]);
    let mut digest = [0u8; 20];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// SHA-1's initial hash value (FIPS 180-4, 5.3.1).
const SHA1_INITIAL_STATE: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// The Community ID v1 of a flow (base64 form, the default of the spec and of Zeek).
pub fn community_id_v1(seed: u16, ip_proto: u8, orig: Endpoint, resp: Endpoint) -> CommunityId {
    let digest = digest_v1(seed, ip_proto, orig, resp);
    let mut text = [0u8; TEXT_LEN];
    text[..2].copy_from_slice(b"1:");
    // 20 bytes always encode to 28 characters: the slice is exactly large enough.
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(digest, &mut text[2..])
        .unwrap_or_default();
    debug_assert_eq!(written, TEXT_LEN - 2);
    CommunityId(text)
}

/// An ICMP message type without a request/reply counterpart keeps its direction.
fn icmp_is_one_way(v6: bool, icmp_type: u16) -> bool {
    u8::try_from(icmp_type).map_or(true, |t| icmp_counterpart(v6, t).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::icmp::icmp_ports;

    fn ep(addr: &str, port: u16) -> Endpoint {
        Endpoint {
            addr: addr.parse().expect("address"),
            port,
        }
    }

    fn hex(digest: [u8; 20]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    const V6_A: &str = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D";
    const V6_B: &str = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D";

    /// The spec's baseline tables (`baseline/README.md` of corelight/community-id-spec):
    /// protocol, source, destination, ports (ICMP: type and code), and the IDs with seed 0,
    /// with seed 1, and the hex digest (seed 0, no base64).
    #[allow(clippy::type_complexity)]
    const BASELINE: &[(u8, &str, &str, Option<(u8, u8)>, &str, &str, &str)] = &[
        (
            6,
            "1.2.3.4",
            "5.6.7.8",
            Some((0, 0)),
            "1:wCb3OG7yAFWelaUydu0D+125CLM=",
            "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
            "c026f7386ef200559e95a53276ed03fb5db908b3",
        ),
        (
            6,
            "5.6.7.8",
            "1.2.3.4",
            Some((1, 1)),
            "1:wCb3OG7yAFWelaUydu0D+125CLM=",
            "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
            "c026f7386ef200559e95a53276ed03fb5db908b3",
        ),
        (
            17,
            "1.2.3.4",
            "5.6.7.8",
            Some((0, 0)),
            "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
            "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
            "d0cbbd227431eb3e1988264cffb1d78b658c84e8",
        ),
        (
            17,
            "5.6.7.8",
            "1.2.3.4",
            Some((1, 1)),
            "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
            "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
            "d0cbbd227431eb3e1988264cffb1d78b658c84e8",
        ),
        (
            132,
            "1.2.3.4",
            "5.6.7.8",
            Some((0, 0)),
            "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=",
            "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
            "10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f",
        ),
        (
            132,
            "5.6.7.8",
            "1.2.3.4",
            Some((1, 1)),
            "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=",
            "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
            "10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f",
        ),
        (
            1,
            "1.2.3.4",
            "5.6.7.8",
            Some((8, 0)),
            "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
            "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
            "72ba1d4472f6144b078dbbf752446b7dbb386d9d",
        ),
        (
            1,
            "5.6.7.8",
            "1.2.3.4",
            Some((0, 0)),
            "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
            "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
            "72ba1d4472f6144b078dbbf752446b7dbb386d9d",
        ),
        (
            1,
            "1.2.3.4",
            "5.6.7.8",
            Some((11, 0)),
            "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=",
            "1:1DD7cWGC/Yg91YGsQeni8du3pIA=",
            "7ff6224b25aa733ad381f5026650549ef1d170f9",
        ),
        (
            58,
            V6_A,
            V6_B,
            Some((128, 0)),
            "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
            "d1b7fb872309530b777cc103ef3f0b21f46905ea",
        ),
        (
            58,
            V6_B,
            V6_A,
            Some((129, 0)),
            "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
            "d1b7fb872309530b777cc103ef3f0b21f46905ea",
        ),
        (
            58,
            V6_A,
            V6_B,
            Some((146, 0)),
            "1:fYC8+pz24E+EhANP1EZhpX0Dw10=",
            "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s=",
            "7d80bcfa9cf6e04f8484034fd44661a57d03c35d",
        ),
        (
            46,
            "1.2.3.4",
            "5.6.7.8",
            None,
            "1:ikv3kmf89luf73WPz1jOs49S768=",
            "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
            "8a4bf79267fcf65b9fef758fcf58ceb38f52efaf",
        ),
        (
            46,
            "5.6.7.8",
            "1.2.3.4",
            None,
            "1:ikv3kmf89luf73WPz1jOs49S768=",
            "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
            "8a4bf79267fcf65b9fef758fcf58ceb38f52efaf",
        ),
        (
            46,
            V6_A,
            V6_B,
            None,
            "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=",
            "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
            "c10ff69b0ae75cfe259897077462f978f8d1f9ed",
        ),
        (
            46,
            V6_B,
            V6_A,
            None,
            "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=",
            "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
            "c10ff69b0ae75cfe259897077462f978f8d1f9ed",
        ),
    ];

    #[test]
    fn one_block_digest_equals_the_streaming_hashers() {
        use sha1::{Digest, Sha1};
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..2000 {
            let addr = |r: u64| -> IpAddr {
                if i % 2 == 0 {
                    IpAddr::from((r as u32).to_be_bytes())
                } else {
                    IpAddr::from(std::net::Ipv6Addr::from(
                        u128::from(r) << 64 | u128::from(r.rotate_left(17)),
                    ))
                }
            };
            let orig = Endpoint {
                addr: addr(next()),
                port: next() as u16,
            };
            let resp = Endpoint {
                addr: addr(next()),
                port: next() as u16,
            };
            let proto = [6, 17, 132, 47][i % 4];
            let seed = next() as u16;
            let (a, b) = if (orig.addr, orig.port) < (resp.addr, resp.port) {
                (orig, resp)
            } else {
                (resp, orig)
            };
            let mut message = seed.to_be_bytes().to_vec();
            for ep in [a, b] {
                match ep.addr {
                    IpAddr::V4(x) => message.extend(x.octets()),
                    IpAddr::V6(x) => message.extend(x.octets()),
                }
            }
            message.extend([proto, 0]);
            if proto != 47 {
                message.extend(a.port.to_be_bytes());
                message.extend(b.port.to_be_bytes());
            }
            let want: [u8; 20] = Sha1::digest(&message).into();
            assert_eq!(
                digest_v1(seed, proto, orig, resp),
                want,
                "{orig:?} {resp:?} {proto}"
            );
        }
    }

    #[test]
    fn spec_baseline_vectors() {
        for &(proto, src, dst, ports, seed0, seed1, hex0) in BASELINE {
            // TCP/UDP/SCTP rows give the ports 1122/3344 (index 0 = out, 1 = back).
            let (sport, dport) = match (proto, ports) {
                (1, Some((t, c))) => icmp_ports(false, t, c),
                (58, Some((t, c))) => icmp_ports(true, t, c),
                (_, Some((0, _))) => (1122, 3344),
                (_, Some(_)) => (3344, 1122),
                (_, None) => (0, 0),
            };
            let (o, r) = (ep(src, sport), ep(dst, dport));
            let what = format!("proto {proto} {src}:{sport} > {dst}:{dport}");
            assert_eq!(community_id_v1(0, proto, o, r).as_str(), seed0, "{what}");
            assert_eq!(community_id_v1(1, proto, o, r).as_str(), seed1, "{what}");
            assert_eq!(hex(digest_v1(0, proto, o, r)), hex0, "{what}");
        }
    }

    /// Vectors from the spec's JSON baseline (`baseline_deflt.json`), taken from real
    /// packets: neighbour discovery, ICMPv6 errors, TCP over IPv6, DNS, SCTP with equal ports.
    #[test]
    fn spec_json_baseline_vectors() {
        let cases: &[(u8, &str, u16, &str, u16, &str)] = &[
            (
                58,
                "fe80::200:86ff:fe05:80da",
                135,
                "fe80::260:97ff:fe07:69ea",
                136,
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                58,
                "3ffe:501:1800:2345::2",
                3,
                "3ffe:507:0:1:200:86ff:fe05:80da",
                0,
                "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
            ),
            (
                58,
                "3ffe:501:410:0:2c0:dfff:fe47:33e",
                1,
                "3ffe:507:0:1:200:86ff:fe05:80da",
                4,
                "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
            ),
            (
                58,
                "fe80::200:86ff:fe05:80da",
                133,
                "ff02::2",
                134,
                "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
            ),
            (
                1,
                "192.168.0.89",
                8,
                "192.168.0.1",
                0,
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                1,
                "10.0.0.1",
                11,
                "10.0.0.2",
                0,
                "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
            ),
            (
                6,
                "2607:f8b0:400c:c03::1a",
                25,
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                63943,
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (
                132,
                "192.168.170.56",
                7,
                "192.168.170.8",
                7,
                "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            ),
            (
                17,
                "8.8.8.8",
                53,
                "192.168.1.52",
                54585,
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                46,
                "10.1.12.2",
                0,
                "10.1.12.1",
                0,
                "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            ),
        ];
        for &(proto, src, sport, dst, dport, want) in cases {
            let got = community_id_v1(0, proto, ep(src, sport), ep(dst, dport));
            assert_eq!(
                got.as_str(),
                want,
                "proto {proto} {src}:{sport} > {dst}:{dport}"
            );
        }
    }

    #[test]
    fn same_address_flows_order_by_port() {
        let a = community_id_v1(0, 6, ep("127.0.0.1", 40000), ep("127.0.0.1", 80));
        let b = community_id_v1(0, 6, ep("127.0.0.1", 80), ep("127.0.0.1", 40000));
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}").len(), TEXT_LEN);
    }
}
