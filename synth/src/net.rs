//! The synthetic network: a LAN of clients behind one gateway, a resolver, and a table of
//! named servers on documentation address ranges (192.0.2/24, 198.51.100/24, 203.0.113/24,
//! 2001:db8::/32) under reserved names (example.com/.net/.org, .test). DNS answers and the
//! connections that follow use the same table, so a capture tells a consistent story.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::Endpoint;
use super::rng::Rng;

const GATEWAY_MAC: [u8; 6] = [0x02, 0x1a, 0x11, 0x00, 0x00, 0x01];
const CLIENT_COUNT: usize = 48;
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

const HOST_PREFIXES: [&str; 16] = [
    "www", "api", "cdn", "static", "img", "login", "assets", "media", "video", "news", "shop",
    "docs", "blog", "git", "updates", "mail",
];
const DOMAINS: [&str; 5] = [
    "example.com",
    "example.net",
    "example.org",
    "shop.test",
    "corp.example",
];
/// Prefixes served through a CDN: their DNS answers are a CNAME chain.
const CDN_PREFIXES: [&str; 5] = ["cdn", "static", "img", "media", "video"];

/// A named server.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// The CNAME target when the name is an alias (CDN-hosted names).
    pub canonical: Option<String>,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

struct Client {
    mac: [u8; 6],
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    next_port: u16,
}

impl Client {
    /// The next ephemeral port; ports cycle through Linux's range.
    fn take_port(&mut self) -> u16 {
        let port = self.next_port;
        self.next_port = if port >= *EPHEMERAL_PORTS.end() {
            *EPHEMERAL_PORTS.start()
        } else {
            port + 1
        };
        port
    }
}

pub struct Network {
    clients: Vec<Client>,
    hosts: Vec<Host>,
    resolver_v4: Ipv4Addr,
    resolver_v6: Ipv6Addr,
    ipv6_per_mille: u32,
}

/// FNV-1a: a stable hash so a name's address never depends on the seed or table order.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Network {
    pub fn new(rng: &mut Rng, ipv6_per_mille: u32) -> Self {
        let clients = (0..CLIENT_COUNT)
            .map(|i| {
                let host = 10 + i as u8;
                Client {
                    mac: [0x02, 0x42, 0xc0, 0xa8, 0x01, host],
                    v4: Ipv4Addr::new(192, 168, 1, host),
                    v6: Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0, 0, 0, 0, u16::from(host)),
                    next_port: rng.range(
                        u64::from(*EPHEMERAL_PORTS.start()),
                        u64::from(*EPHEMERAL_PORTS.end()),
                    ) as u16,
                }
            })
            .collect();
        let nets = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];
        let hosts = DOMAINS
            .iter()
            .flat_map(|domain| HOST_PREFIXES.iter().map(move |prefix| (*prefix, *domain)))
            .map(|(prefix, domain)| {
                let name = format!("{prefix}.{domain}");
                let hash = fnv1a(&name);
                let net = nets[(hash % 3) as usize];
                let canonical = CDN_PREFIXES
                    .contains(&prefix)
                    .then(|| format!("e{}.edge.example.net", hash % 9000 + 1000));
                Host {
                    v4: Ipv4Addr::new(net[0], net[1], net[2], (hash >> 8) as u8 % 250 + 2),
                    v6: Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0x100 + (hash >> 16) as u16 % 16,
                        0,
                        0,
                        0,
                        0,
                        (hash >> 24) as u16 | 1,
                    ),
                    name,
                    canonical,
                }
            })
            .collect();
        Network {
            clients,
            hosts,
            resolver_v4: Ipv4Addr::new(192, 168, 1, 1),
            resolver_v6: Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0, 0, 0, 0, 1),
            ipv6_per_mille,
        }
    }

    /// Whether a new session runs over IPv6.
    pub fn pick_ipv6(&self, rng: &mut Rng) -> bool {
        rng.chance(self.ipv6_per_mille)
    }

    pub fn pick_host(&self, rng: &mut Rng) -> &Host {
        rng.pick(&self.hosts)
    }

    /// The server of that name, if the table has it.
    pub fn host_named(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// A client endpoint with a fresh ephemeral port (ports cycle through Linux's range).
    pub fn client(&mut self, rng: &mut Rng, v6: bool) -> Endpoint {
        let index = rng.range(0, self.clients.len() as u64 - 1) as usize;
        let client = &mut self.clients[index];
        let port = client.take_port();
        Endpoint {
            mac: client.mac,
            ip: if v6 {
                IpAddr::V6(client.v6)
            } else {
                IpAddr::V4(client.v4)
            },
            port,
        }
    }

    /// Reserves `n` more ephemeral ports of `client` (a session that opens further
    /// connections, such as FTP data channels) and returns them.
    pub fn more_ports(&mut self, client: &Endpoint, n: usize) -> Vec<u16> {
        let Some(owner) = self.clients.iter_mut().find(|c| c.mac == client.mac) else {
            return Vec::new();
        };
        (0..n).map(|_| owner.take_port()).collect()
    }

    /// A server endpoint reached through the gateway.
    pub fn server(&self, host: &Host, v6: bool, port: u16) -> Endpoint {
        Endpoint {
            mac: GATEWAY_MAC,
            ip: if v6 {
                IpAddr::V6(host.v6)
            } else {
                IpAddr::V4(host.v4)
            },
            port,
        }
    }

    /// The LAN's DNS resolver (the gateway).
    pub fn resolver(&self, v6: bool) -> Endpoint {
        Endpoint {
            mac: GATEWAY_MAC,
            ip: if v6 {
                IpAddr::V6(self.resolver_v6)
            } else {
                IpAddr::V4(self.resolver_v4)
            },
            port: 53,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_addresses_are_stable_and_in_documentation_ranges() {
        let a = Network::new(&mut Rng::new(1), 100);
        let b = Network::new(&mut Rng::new(2), 100);
        assert_eq!(a.hosts.len(), 80);
        for (ha, hb) in a.hosts.iter().zip(&b.hosts) {
            assert_eq!(
                (ha.v4, ha.v6),
                (hb.v4, hb.v6),
                "addresses do not depend on the seed"
            );
            let o = ha.v4.octets();
            assert!(matches!(
                (o[0], o[1], o[2]),
                (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
            ));
            assert_eq!(ha.v6.segments()[..2], [0x2001, 0xdb8]);
            assert_eq!(
                ha.canonical.is_some(),
                ha.name.starts_with("cdn.")
                    || ha.name.starts_with("static.")
                    || ha.name.starts_with("img.")
                    || ha.name.starts_with("media.")
                    || ha.name.starts_with("video.")
            );
        }
    }

    #[test]
    fn client_ports_advance_and_wrap_within_the_ephemeral_range() {
        let mut net = Network::new(&mut Rng::new(1), 0);
        for client in &mut net.clients {
            client.next_port = 60999;
        }
        let mut rng = Rng::new(5);
        let first = net.client(&mut rng, false);
        assert_eq!(first.port, 60999);
        for client in &net.clients {
            assert!(EPHEMERAL_PORTS.contains(&client.next_port));
        }
        assert!(net.clients.iter().any(|c| c.next_port == 32768));
    }
}
