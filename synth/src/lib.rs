//! The traffic synthesizer: a deterministic generator of realistic Ethernet/IPv4/IPv6
//! captures for tests, samples and benchmarks.
//!
//! `generate` keeps `concurrency` sessions alive at once (TCP connections carrying HTTP,
//! TLS, DNS, SMTP, FTP (with its data connections) or SSH; DNS/NTP/other UDP; ICMP echo;
//! failed connection attempts), each with its own
//! clock and PRNG stream, and merges their frames in timestamp order through a min-heap keyed
//! on each session's next frame. Memory stays constant: a session builds at most one bounded
//! batch of frames ahead, and buffers are recycled. The same `TrafficConfig` always yields
//! the same bytes.
//!
//! Modules: `rng` (xoshiro256**), `capture` (pcap/pcapng writers), `packet` (frames and
//! checksums), `session` (session trait, outbox), `stream` (lazy payload bytes), `tcp`
//! (connections), `net` (addresses and names), `http`, `tls`, `dns`, `udp`, `smtp`, `ftp`,
//! `ssh` (applications).

pub mod capture;
mod dns;
mod ftp;
mod http;
mod net;
pub mod packet;
pub mod rng;
mod session;
mod smtp;
mod ssh;
mod stream;
mod tcp;
mod tls;
mod udp;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;

pub use capture::{PacketSink, PcapWriter, PcapngWriter};
pub use session::SessionKind;

use net::Network;
use rng::Rng;
use session::{Outbox, Session};
use tcp::{Faults, TcpConn, TcpSession};

/// Relative weights of the session kinds (by number of sessions started, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficMix {
    pub http: u32,
    pub tls: u32,
    pub dns_udp: u32,
    pub dns_tcp: u32,
    pub ntp: u32,
    pub udp_stream: u32,
    pub icmp_echo: u32,
    pub tcp_rejected: u32,
    pub tcp_unanswered: u32,
    pub smtp: u32,
    pub ftp: u32,
    pub ssh: u32,
}

impl TrafficMix {
    /// Everything, in proportions like a small office's uplink.
    pub const MIXED: TrafficMix = TrafficMix {
        http: 20,
        tls: 25,
        dns_udp: 35,
        dns_tcp: 2,
        ntp: 4,
        udp_stream: 4,
        icmp_echo: 3,
        tcp_rejected: 4,
        tcp_unanswered: 3,
        ..TrafficMix::NONE
    };
    pub const HTTP: TrafficMix = TrafficMix::only(SessionKind::Http);
    pub const TLS: TrafficMix = TrafficMix::only(SessionKind::Tls);
    /// DNS over UDP with some DNS over TCP.
    pub const DNS: TrafficMix = TrafficMix {
        dns_udp: 10,
        dns_tcp: 2,
        ..TrafficMix::NONE
    };
    /// UDP other than DNS, ICMP echo and failed TCP connection attempts.
    pub const UDP: TrafficMix = TrafficMix {
        ntp: 3,
        udp_stream: 2,
        icmp_echo: 3,
        ..TrafficMix::NONE
    };
    /// Mail and file transfer (the benchmark's mail mix): SMTP relay and submission, FTP,
    /// SSH logins and scp/sftp transfers, and the DNS lookups that go with them.
    pub const MAIL: TrafficMix = TrafficMix {
        smtp: 30,
        ftp: 15,
        ssh: 15,
        dns_udp: 25,
        ..TrafficMix::NONE
    };
    const NONE: TrafficMix = TrafficMix {
        http: 0,
        tls: 0,
        dns_udp: 0,
        dns_tcp: 0,
        ntp: 0,
        udp_stream: 0,
        icmp_echo: 0,
        tcp_rejected: 0,
        tcp_unanswered: 0,
        smtp: 0,
        ftp: 0,
        ssh: 0,
    };

    const fn only(kind: SessionKind) -> TrafficMix {
        let mut mix = TrafficMix::NONE;
        match kind {
            SessionKind::Http => mix.http = 1,
            SessionKind::Tls => mix.tls = 1,
            SessionKind::DnsUdp => mix.dns_udp = 1,
            SessionKind::DnsTcp => mix.dns_tcp = 1,
            SessionKind::Ntp => mix.ntp = 1,
            SessionKind::UdpStream => mix.udp_stream = 1,
            SessionKind::IcmpEcho => mix.icmp_echo = 1,
            SessionKind::TcpRejected => mix.tcp_rejected = 1,
            SessionKind::TcpUnanswered => mix.tcp_unanswered = 1,
            SessionKind::Smtp => mix.smtp = 1,
            SessionKind::Ftp => mix.ftp = 1,
            SessionKind::Ssh => mix.ssh = 1,
        }
        mix
    }

    pub fn weight(&self, kind: SessionKind) -> u32 {
        match kind {
            SessionKind::Http => self.http,
            SessionKind::Tls => self.tls,
            SessionKind::DnsUdp => self.dns_udp,
            SessionKind::DnsTcp => self.dns_tcp,
            SessionKind::Ntp => self.ntp,
            SessionKind::UdpStream => self.udp_stream,
            SessionKind::IcmpEcho => self.icmp_echo,
            SessionKind::TcpRejected => self.tcp_rejected,
            SessionKind::TcpUnanswered => self.tcp_unanswered,
            SessionKind::Smtp => self.smtp,
            SessionKind::Ftp => self.ftp,
            SessionKind::Ssh => self.ssh,
        }
    }

    fn total(&self) -> u64 {
        SessionKind::ALL
            .iter()
            .map(|k| u64::from(self.weight(*k)))
            .sum()
    }

    /// Draws a kind in proportion to the weights. Precondition: `total() > 0`.
    fn draw(&self, rng: &mut Rng) -> SessionKind {
        let mut ticket = rng.range(0, self.total() - 1);
        for kind in SessionKind::ALL {
            let w = u64::from(self.weight(kind));
            if ticket < w {
                return kind;
            }
            ticket -= w;
        }
        unreachable!("ticket is below the total weight")
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub seed: u64,
    /// Stop starting sessions once the capture file has this many bytes; sessions already
    /// running finish their current exchange and close, so the file ends a little larger.
    pub target_bytes: u64,
    /// Sessions in flight at once (interleaved in the capture).
    pub concurrency: usize,
    pub mix: TrafficMix,
    /// Upper bound of an HTTP or TLS response body (sizes are log-uniform below it).
    pub max_body_bytes: u64,
    /// Share of sessions over IPv6, per mille.
    pub ipv6_per_mille: u32,
    /// Data segments seen twice (timeout retransmission), per mille.
    pub retransmit_per_mille: u32,
    /// Data segments the capture misses while the receiver ACKs them, per mille.
    pub capture_loss_per_mille: u32,
    /// Timestamp of the first packet, seconds since the Unix epoch.
    pub start_unix_secs: u64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            seed: 1,
            target_bytes: 64 << 20,
            concurrency: 64,
            mix: TrafficMix::MIXED,
            max_body_bytes: 1 << 20,
            ipv6_per_mille: 100,
            retransmit_per_mille: 3,
            capture_loss_per_mille: 1,
            // 2024-05-01T12:00:00Z
            start_unix_secs: 1_714_564_800,
        }
    }
}

/// Named configurations: the large mixed capture for benchmarks and the small presets the
/// shipped samples (`share/pcapd/samples/`) were made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// All traffic kinds, bodies up to 1 MiB, 64 concurrent sessions.
    Mixed,
    /// HTTP only (the analyzer benchmark's HTTP-heavy mix): bodies up to 256 KiB, 64
    /// concurrent sessions.
    Http,
    /// TLS only (the benchmark's TLS-heavy mix): handshakes with SNI and ALPN, then up to
    /// 256 KiB of application data, 64 concurrent sessions.
    Tls,
    /// SMTP, FTP and SSH with some DNS (the benchmark's mail mix): attachments, files and
    /// transfers up to 1 MiB, 64 concurrent sessions.
    Mail,
    /// HTTP/1.1 over TCP: keep-alive, POST, chunked, 304/404/301, a few retransmissions.
    SampleHttp,
    /// DNS over UDP (A/AAAA/CNAME, NXDOMAIN, unanswered) and over TCP.
    SampleDns,
    /// TLS 1.2 and 1.3 handshakes with SNI and ALPN, then application data.
    SampleTls,
    /// NTP, opaque UDP flows and ICMP/ICMPv6 echo.
    SampleUdp,
}

impl Preset {
    pub fn config(self) -> TrafficConfig {
        let sample = TrafficConfig {
            target_bytes: 100 << 10,
            concurrency: 4,
            max_body_bytes: 24 << 10,
            ipv6_per_mille: 150,
            retransmit_per_mille: 5,
            capture_loss_per_mille: 0,
            ..TrafficConfig::default()
        };
        match self {
            Preset::Mixed => TrafficConfig::default(),
            Preset::Http => TrafficConfig {
                mix: TrafficMix::HTTP,
                max_body_bytes: 256 << 10,
                ..TrafficConfig::default()
            },
            Preset::Tls => TrafficConfig {
                mix: TrafficMix::TLS,
                max_body_bytes: 256 << 10,
                ..TrafficConfig::default()
            },
            Preset::Mail => TrafficConfig {
                mix: TrafficMix::MAIL,
                ..TrafficConfig::default()
            },
            Preset::SampleHttp => TrafficConfig {
                mix: TrafficMix::HTTP,
                ..sample
            },
            Preset::SampleDns => TrafficConfig {
                mix: TrafficMix::DNS,
                target_bytes: 40 << 10,
                ..sample
            },
            Preset::SampleTls => TrafficConfig {
                mix: TrafficMix::TLS,
                max_body_bytes: 12 << 10,
                ..sample
            },
            Preset::SampleUdp => TrafficConfig {
                mix: TrafficMix::UDP,
                target_bytes: 60 << 10,
                ..sample
            },
        }
    }
}

/// What `generate` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    pub packets: u64,
    /// Bytes of the capture file, headers included.
    pub file_bytes: u64,
    /// Bytes of the frames themselves.
    pub wire_bytes: u64,
    /// Sessions started per kind, indexed by `SessionKind::index`.
    pub sessions: [u64; SessionKind::ALL.len()],
    /// Timestamps of the first and last packet, µs since the epoch.
    pub first_ts: u64,
    pub last_ts: u64,
}

impl GenStats {
    pub fn sessions_of(&self, kind: SessionKind) -> u64 {
        self.sessions[kind.index()]
    }

    pub fn total_sessions(&self) -> u64 {
        self.sessions.iter().sum()
    }
}

/// Generation failed: a bad configuration or the sink's I/O error.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid traffic config: {0}")]
    InvalidConfig(&'static str),
    #[error("writing the capture: {0}")]
    Io(#[from] io::Error),
}

impl From<GenerateError> for io::Error {
    fn from(err: GenerateError) -> io::Error {
        match err {
            GenerateError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

/// A running session and its outbox; slots are reused as sessions end.
struct Slot {
    session: Box<dyn Session>,
    rng: Rng,
    outbox: Outbox,
}

/// Streams a capture for `cfg` into `sink` and flushes it.
pub fn generate<S: PacketSink + ?Sized>(
    cfg: &TrafficConfig,
    sink: &mut S,
) -> Result<GenStats, GenerateError> {
    if cfg.mix.total() == 0 {
        return Err(GenerateError::InvalidConfig(
            "every traffic mix weight is zero",
        ));
    }
    if cfg.concurrency == 0 {
        return Err(GenerateError::InvalidConfig(
            "concurrency must be at least 1",
        ));
    }
    let mut master = Rng::new(cfg.seed);
    let mut network = Network::new(&mut master.fork(), cfg.ipv6_per_mille);
    let faults = Faults {
        retransmit_per_mille: cfg.retransmit_per_mille,
        capture_loss_per_mille: cfg.capture_loss_per_mille,
    };
    let mut stats = GenStats::default();
    let mut slots: Vec<Slot> = Vec::with_capacity(cfg.concurrency);
    let mut free: Vec<usize> = Vec::new();
    // (next frame time, tie-breaker for determinism, slot)
    let mut heap: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut clock = cfg.start_unix_secs * 1_000_000;
    let mut active = 0usize;
    let mut winding_down = false;

    loop {
        // Keep `concurrency` sessions running until the target size is reached.
        while active < cfg.concurrency && sink.bytes_written() < cfg.target_bytes {
            let mut rng = master.fork();
            let kind = cfg.mix.draw(&mut rng);
            let start = clock + rng.log_uniform(10, 200_000);
            let session = new_session(kind, cfg, &mut network, faults, &mut rng);
            stats.sessions[kind.index()] += 1;
            let index = match free.pop() {
                Some(i) => {
                    slots[i].session = session;
                    slots[i].rng = rng;
                    slots[i].outbox.reset(start);
                    i
                }
                None => {
                    slots.push(Slot {
                        session,
                        rng,
                        outbox: Outbox::new(start),
                    });
                    slots.len() - 1
                }
            };
            let slot = &mut slots[index];
            if slot.session.refill(&mut slot.outbox, &mut slot.rng) {
                if let Some(ts) = slot.outbox.front_ts() {
                    heap.push(Reverse((ts, order, index)));
                    order += 1;
                    active += 1;
                    continue;
                }
            }
            free.push(index);
        }

        let Some(Reverse((ts, _, index))) = heap.pop() else {
            break;
        };
        let slot = &mut slots[index];
        let Some(frame) = slot.outbox.pop() else {
            unreachable!("a slot is in the heap only while its outbox holds a frame");
        };
        debug_assert!(frame.ts >= clock, "frames leave in timestamp order");
        sink.write_packet(frame.ts, &frame.data)?;
        if stats.packets == 0 {
            stats.first_ts = frame.ts;
        }
        stats.packets += 1;
        stats.wire_bytes += frame.data.len() as u64;
        stats.last_ts = frame.ts;
        clock = ts;
        slot.outbox.recycle(frame.data);
        if !winding_down && sink.bytes_written() >= cfg.target_bytes {
            // Bound the overshoot: running sessions finish their current exchange only.
            // Free slots hold ended sessions, for which this is a no-op.
            winding_down = true;
            for slot in &mut slots {
                slot.session.wind_down();
            }
        }
        let slot = &mut slots[index];
        if slot.outbox.is_empty() && !slot.session.refill(&mut slot.outbox, &mut slot.rng) {
            active -= 1;
            free.push(index);
            continue;
        }
        match slot.outbox.front_ts() {
            Some(next) => {
                heap.push(Reverse((next, order, index)));
                order += 1;
            }
            None => {
                active -= 1;
                free.push(index);
            }
        }
    }
    sink.flush()?;
    stats.file_bytes = sink.bytes_written();
    Ok(stats)
}

fn new_session(
    kind: SessionKind,
    cfg: &TrafficConfig,
    network: &mut Network,
    faults: Faults,
    rng: &mut Rng,
) -> Box<dyn Session> {
    let v6 = network.pick_ipv6(rng);
    let client = network.client(rng, v6);
    let host = network.pick_host(rng).clone();
    match kind {
        SessionKind::Http => {
            let port = if rng.chance(900) { 80 } else { 8080 };
            let conn = TcpConn::new(client, network.server(&host, v6, port), faults, rng);
            let app = http::HttpApp::new(&host.name, cfg.max_body_bytes, rng);
            Box::new(TcpSession::new(conn, app))
        }
        SessionKind::Tls => {
            let conn = TcpConn::new(client, network.server(&host, v6, 443), faults, rng);
            let app = tls::TlsApp::new(&host.name, cfg.max_body_bytes, rng);
            Box::new(TcpSession::new(conn, app))
        }
        SessionKind::DnsUdp => Box::new(dns::DnsUdpSession::new(
            client,
            network.resolver(v6),
            &host,
            rng,
        )),
        SessionKind::DnsTcp => {
            let conn = TcpConn::new(client, network.resolver(v6), faults, rng);
            Box::new(TcpSession::new(conn, dns::DnsTcpApp::new(&host, rng)))
        }
        SessionKind::Ntp => Box::new(udp::NtpSession::new(
            client,
            network.server(&host, v6, 123),
            rng,
        )),
        SessionKind::UdpStream => {
            let port = rng.range(40_000, 44_999) as u16;
            Box::new(udp::UdpStreamSession::new(
                client,
                network.server(&host, v6, port),
                rng,
            ))
        }
        SessionKind::IcmpEcho => {
            let server = packet::Endpoint {
                port: 0,
                ..network.server(&host, v6, 0)
            };
            Box::new(udp::IcmpEchoSession::new(
                packet::Endpoint { port: 0, ..client },
                server,
                rng,
            ))
        }
        SessionKind::Smtp => {
            let port = if rng.chance(700) { 25 } else { 587 };
            // The domain's mail exchanger when the table has one, as an MX lookup gives.
            let domain = host.name.split_once('.').map_or("", |(_, d)| d);
            let mx = network
                .host_named(&format!("mail.{domain}"))
                .unwrap_or(&host);
            let server = network.server(mx, v6, port);
            let app = smtp::SmtpApp::new(&mx.name, port, cfg.max_body_bytes, rng);
            Box::new(TcpSession::new(
                TcpConn::new(client, server, faults, rng),
                app,
            ))
        }
        SessionKind::Ftp => {
            let data_ports = network.more_ports(&client, ftp::MAX_TRANSFERS);
            Box::new(ftp::FtpSession::new(
                client,
                network.server(&host, v6, 21),
                data_ports,
                faults,
                cfg.max_body_bytes,
                rng,
            ))
        }
        SessionKind::Ssh => {
            let conn = TcpConn::new(client, network.server(&host, v6, 22), faults, rng);
            let app = ssh::SshApp::new(&host.name, cfg.max_body_bytes, rng);
            Box::new(TcpSession::new(conn, app))
        }
        SessionKind::TcpRejected | SessionKind::TcpUnanswered => {
            let port = *rng.pick(&[22, 23, 25, 445, 3389, 5900, 8443, 9200]);
            let conn = TcpConn::new(client, network.server(&host, v6, port), faults, rng);
            Box::new(tcp::FailedConnect::new(
                conn,
                kind == SessionKind::TcpRejected,
            ))
        }
    }
}

#[cfg(test)]
mod tests;
