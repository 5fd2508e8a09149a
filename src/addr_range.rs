//! Address ranges (`10.0.0.0/8`, `fd00::/8`, or one address): what `[Global] auth_exempt` lists.
//! A leaf: the config reader parses them, the password check matches peers against them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not an address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRangeError(pub &'static str);

impl AddrRange {
    /// Whether `ip` lies in the range. An IPv4 client seen on an IPv6 socket
    /// (`::ffff:10.1.2.3`) is compared as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for AddrRange {
    type Err = AddrRangeError;

    fn from_str(text: &str) -> Result<AddrRange, AddrRangeError> {
        let bad = AddrRangeError("not an address or address range");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network = addr
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| bad)?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(bad)?,
        };
        Ok(AddrRange { network, prefix })
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> AddrRange {
        text.parse().expect("a valid range")
    }

    #[test]
    fn address_ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lan = range("10.0.0.0/8");
        assert!(lan.contains(ip("10.200.1.2")) && !lan.contains(ip("11.0.0.1")));
        assert!(lan.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped peers");
        let one = range("127.0.0.2");
        assert!(one.contains(ip("127.0.0.2")) && !one.contains(ip("127.0.0.1")));
        let v6 = range("fd00::/8");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(range("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(range("::/0").contains(ip("::1")));
        assert_eq!(range("::ffff:1.2.3.4").to_string(), "1.2.3.4/32");
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "host.example",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<AddrRange>().is_err(), "{bad}");
        }
    }
}
