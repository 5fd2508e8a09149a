//! Connectionless sessions besides DNS: NTP client/server exchanges, a bidirectional UDP
//! flow with opaque payloads on unassigned high ports, and ICMP/ICMPv6 echo (ping) runs,
//! some of which go unanswered.

use super::packet::{icmp_echo_frame, udp_frame, Echo, Endpoint, IpFields};
use super::rng::Rng;
use super::session::{Outbox, Session};

/// Seconds between the NTP era (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// An NTP timestamp (32.32 fixed point since 1900) for `micros` since the Unix epoch.
pub fn ntp_timestamp(micros: u64) -> [u8; 8] {
    let secs = micros / 1_000_000 + NTP_UNIX_OFFSET;
    let frac = ((micros % 1_000_000) << 32) / 1_000_000;
    ((secs << 32) | frac).to_be_bytes()
}

/// A 48-byte NTPv4 packet: mode 3 (client) or 4 (server).
pub fn ntp_packet(server: bool, now: u64, origin: u64, rng: &mut Rng) -> [u8; 48] {
    let mut p = [0u8; 48];
    if server {
        p[0] = 0x24; // LI 0, VN 4, mode 4
        p[1] = 2; // stratum
        p[2] = 6; // poll 2^6 s
        p[3] = 0xE9; // precision 2^-23 s
        p[4..8].copy_from_slice(&(rng.range(1, 0x0800) as u32).to_be_bytes()); // root delay
        p[8..12].copy_from_slice(&(rng.range(1, 0x0800) as u32).to_be_bytes()); // dispersion
        p[12..16].copy_from_slice(&[192, 0, 2, 123]); // reference id: upstream server
        p[16..24].copy_from_slice(&ntp_timestamp(now - 30_000_000));
        p[24..32].copy_from_slice(&ntp_timestamp(origin));
        p[32..40].copy_from_slice(&ntp_timestamp(now - 20));
        p[40..48].copy_from_slice(&ntp_timestamp(now));
    } else {
        p[0] = 0x23; // LI 0, VN 4, mode 3
        p[2] = 6;
        p[3] = 0xE9;
        p[40..48].copy_from_slice(&ntp_timestamp(now));
    }
    p
}

/// One to three NTP polls from a client to a server on port 123.
pub struct NtpSession {
    client: Endpoint,
    server: Endpoint,
    polls: u32,
}

impl NtpSession {
    pub fn new(client: Endpoint, server: Endpoint, rng: &mut Rng) -> Self {
        NtpSession {
            client,
            server,
            polls: rng.range(1, 3) as u32,
        }
    }
}

impl Session for NtpSession {
    fn refill(&mut self, out: &mut Outbox, rng: &mut Rng) -> bool {
        if self.polls == 0 {
            return false;
        }
        self.polls -= 1;
        let sent = out.now;
        let request = ntp_packet(false, sent, 0, rng);
        let ip = IpFields {
            id: rng.next_u32() as u16,
            ttl: 64,
        };
        out.push(|buf| udp_frame(buf, &self.client, &self.server, ip, &request));
        out.advance(rng.log_uniform(2_000, 120_000));
        let reply = ntp_packet(true, out.now, sent, rng);
        let ip = IpFields {
            id: rng.next_u32() as u16,
            ttl: 57,
        };
        out.push(|buf| udp_frame(buf, &self.server, &self.client, ip, &reply));
        out.advance(rng.range(500_000, 2_000_000));
        true
    }

    fn wind_down(&mut self) {
        self.polls = 0;
    }
}

/// A media-like UDP flow: many datagrams both ways with opaque payloads.
pub struct UdpStreamSession {
    client: Endpoint,
    server: Endpoint,
    packets_left: u32,
    payload: Vec<u8>,
}

/// Packets per refill batch.
const UDP_BATCH: u32 = 32;

impl UdpStreamSession {
    pub fn new(client: Endpoint, server: Endpoint, rng: &mut Rng) -> Self {
        UdpStreamSession {
            client,
            server,
            packets_left: rng.range(10, 300) as u32,
            payload: Vec::new(),
        }
    }
}

impl Session for UdpStreamSession {
    fn refill(&mut self, out: &mut Outbox, rng: &mut Rng) -> bool {
        if self.packets_left == 0 {
            return false;
        }
        for _ in 0..UDP_BATCH.min(self.packets_left) {
            self.packets_left -= 1;
            // Mostly server-to-client media, client feedback now and then.
            let to_client = rng.chance(750);
            let len = if to_client {
                rng.range(160, 1_200)
            } else {
                rng.range(40, 200)
            } as usize;
            self.payload.resize(len, 0);
            rng.fill(&mut self.payload);
            // A fixed first byte that no common heuristic dissector claims (not RTP v2's
            // 0x80, not STUN's 0x00/0x01, not QUIC's long-header bit).
            self.payload[0] = 0x3C;
            let (from, to, ttl) = if to_client {
                (&self.server, &self.client, 56)
            } else {
                (&self.client, &self.server, 64)
            };
            let ip = IpFields {
                id: rng.next_u32() as u16,
                ttl,
            };
            out.push(|buf| udp_frame(buf, from, to, ip, &self.payload));
            out.advance(rng.range(2_000, 30_000));
        }
        true
    }

    fn wind_down(&mut self) {
        self.packets_left = self.packets_left.min(UDP_BATCH);
    }
}

/// `ping`: three to five echo requests a second apart with the iputils payload layout.
pub struct IcmpEchoSession {
    client: Endpoint,
    server: Endpoint,
    ident: u16,
    seq: u16,
    count: u16,
    answered: bool,
    rtt: u64,
}

impl IcmpEchoSession {
    pub fn new(client: Endpoint, server: Endpoint, rng: &mut Rng) -> Self {
        IcmpEchoSession {
            client,
            server,
            ident: rng.next_u32() as u16,
            seq: 0,
            count: rng.range(3, 5) as u16,
            answered: !rng.chance(120),
            rtt: rng.log_uniform(300, 200_000),
        }
    }
}

impl IcmpEchoSession {
    fn echo(&self, reply: bool) -> Echo {
        Echo {
            reply,
            ident: self.ident,
            seq: self.seq,
        }
    }
}

impl Session for IcmpEchoSession {
    fn refill(&mut self, out: &mut Outbox, rng: &mut Rng) -> bool {
        if self.seq == self.count {
            return false;
        }
        self.seq += 1;
        // iputils: 8-byte timeval, then bytes 0x10, 0x11, ... up to 56 bytes in total.
        let mut payload = [0u8; 56];
        payload[..4].copy_from_slice(&((out.now / 1_000_000) as u32).to_le_bytes());
        payload[4..8].copy_from_slice(&((out.now % 1_000_000) as u32).to_le_bytes());
        for (i, b) in payload[8..].iter_mut().enumerate() {
            *b = 0x10 + i as u8;
        }
        let ip = IpFields {
            id: rng.next_u32() as u16,
            ttl: 64,
        };
        out.push(|buf| {
            icmp_echo_frame(
                buf,
                &self.client,
                &self.server,
                ip,
                self.echo(false),
                &payload,
            )
        });
        if self.answered {
            out.advance(self.rtt);
            let ip = IpFields {
                id: rng.next_u32() as u16,
                ttl: 58,
            };
            out.push(|buf| {
                icmp_echo_frame(
                    buf,
                    &self.server,
                    &self.client,
                    ip,
                    self.echo(true),
                    &payload,
                )
            });
        }
        out.advance(1_000_000);
        true
    }

    fn wind_down(&mut self) {
        self.count = self.seq.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_timestamp_of_a_known_instant() {
        // 2024-05-01T12:00:00.5Z: seconds since 1900 = 1714564800 + 2208988800.
        let ts = ntp_timestamp(1_714_564_800_500_000);
        assert_eq!(
            u32::from_be_bytes(ts[..4].try_into().unwrap()),
            3_923_553_600
        );
        assert_eq!(u32::from_be_bytes(ts[4..].try_into().unwrap()), 0x8000_0000);
    }

    #[test]
    fn ntp_reply_echoes_the_client_transmit_time_as_origin() {
        let mut rng = Rng::new(1);
        let sent = 1_714_564_800_000_000;
        let request = ntp_packet(false, sent, 0, &mut rng);
        let reply = ntp_packet(true, sent + 5_000, sent, &mut rng);
        assert_eq!(request[0] & 0x07, 3);
        assert_eq!(reply[0] & 0x07, 4);
        assert_eq!(&reply[24..32], &request[40..48]);
    }
}
