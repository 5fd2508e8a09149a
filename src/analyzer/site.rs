//! Which addresses Zeek counts as local: `Site::is_local_addr` of a default run, where
//! `Site::local_nets` is empty and `Site::private_address_space_is_local` (default true) makes
//! every range of `Site::private_address_space` local. ssh.log's `direction` is decided
//! from it.
//!
//! The table mirrors `private_address_space` in `scripts/base/utils/site.zeek`, including
//! the 6to4 (`2002::/16`) images of the IPv4 ranges.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges of `Site::private_address_space`: (network, prefix length).
const PRIVATE_V4: [(Ipv4Addr, u8); 16] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(224, 0, 0, 0), 24),
    (Ipv4Addr::new(239, 0, 0, 0), 8),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
    (Ipv4Addr::new(255, 255, 255, 255), 32),
];

/// IPv6 ranges of `Site::private_address_space` besides the 6to4 images of [`PRIVATE_V4`].
const PRIVATE_V6: [(Ipv6Addr, u8); 10] = [
    (Ipv6Addr::UNSPECIFIED, 128),
    (Ipv6Addr::LOCALHOST, 128),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
];

fn in_prefix(addr: u128, net: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    addr & mask == net & mask
}

fn v4_in(addr: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    in_prefix(
        u128::from(u32::from(addr)) << 96,
        u128::from(u32::from(net)) << 96,
        len,
    )
}

/// Zeek's `Site::is_local_addr` with the default configuration.
pub fn is_local_addr(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => PRIVATE_V4.iter().any(|&(net, len)| v4_in(a, net, len)),
        IpAddr::V6(a) => {
            // An IPv4-mapped address is the IPv4 address (Zeek stores both alike).
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_local_addr(IpAddr::V4(v4));
            }
            let bits = u128::from(a);
            // 6to4: 2002:AABB:CCDD::/48 carries the IPv4 address AA.BB.CC.DD.
            if in_prefix(bits, 0x2002u128 << 112, 16) {
                let embedded = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
                // The 6to4 image of a /n IPv4 range is a /(16+n) IPv6 range.
                if PRIVATE_V4
                    .iter()
                    .any(|&(net, len)| v4_in(embedded, net, len))
                {
                    return true;
                }
            }
            PRIVATE_V6
                .iter()
                .any(|&(net, len)| in_prefix(bits, u128::from(net), len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> bool {
        is_local_addr(s.parse().expect("address"))
    }

    #[test]
    fn private_ranges_are_local() {
        for a in [
            "10.1.2.3",
            "192.168.1.79",
            "172.31.255.255",
            "127.0.0.1",
            "169.254.9.9",
            "100.127.0.1",
            "224.0.0.251",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::5",
            "2001:db8::1",
            "2002:c0a8:0101::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(local(a), "{a}");
        }
        for a in [
            "131.159.21.1",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "224.0.1.1",
            "2a00:1450::1",
            "2002:0808:0808::1",
        ] {
            assert!(!local(a), "{a}");
        }
    }
}
