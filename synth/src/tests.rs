//! Whole-generator tests: byte-exact determinism, valid checksums on every frame, record
//! framing and ordering, TCP sequence/acknowledgement consistency, the session mix, and the
//! mail mix's protocols as they appear on the wire (SMTP dialogue, FTP data connections to
//! the announced ports, SSH version lines).

use std::collections::HashMap;

use super::packet::tests::verify_frame_checksums;
use super::packet::{PROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use super::*;

fn small_config(seed: u64) -> TrafficConfig {
    TrafficConfig {
        seed,
        target_bytes: 3 << 20,
        concurrency: 24,
        max_body_bytes: 200_000,
        ..TrafficConfig::default()
    }
}

fn generate_pcap(cfg: &TrafficConfig) -> (Vec<u8>, GenStats) {
    let mut writer = PcapWriter::new(Vec::new()).unwrap();
    let stats = generate(cfg, &mut writer).unwrap();
    (writer.into_inner(), stats)
}

/// (timestamp µs, frame) for every record of a classic pcap written by `PcapWriter`.
fn records(pcap: &[u8]) -> Vec<(u64, &[u8])> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    let mut out = Vec::new();
    let mut p = 24;
    while p < pcap.len() {
        let word = |i: usize| u32::from_le_bytes(pcap[p + i..p + i + 4].try_into().unwrap());
        let (secs, micros, incl, orig) = (word(0), word(4), word(8) as usize, word(12) as usize);
        assert!(micros < 1_000_000);
        assert_eq!(incl, orig);
        out.push((
            u64::from(secs) * 1_000_000 + u64::from(micros),
            &pcap[p + 16..p + 16 + incl],
        ));
        p += 16 + incl;
    }
    assert_eq!(p, pcap.len(), "records tile the file");
    out
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seed_differs() {
    let (a, stats_a) = generate_pcap(&small_config(5));
    let (b, stats_b) = generate_pcap(&small_config(5));
    let (c, _) = generate_pcap(&small_config(6));
    assert_eq!(stats_a, stats_b);
    assert!(a == b, "same config, same bytes");
    assert!(a != c, "another seed, another capture");
}

#[test]
fn every_frame_has_valid_checksums_and_records_are_ordered() {
    let (pcap, stats) = generate_pcap(&small_config(1));
    assert!(stats.file_bytes >= 3 << 20);
    assert_eq!(stats.file_bytes, pcap.len() as u64);
    let recs = records(&pcap);
    assert_eq!(recs.len() as u64, stats.packets);
    let mut last = 0;
    let mut protos = HashMap::new();
    let mut v6 = 0;
    for (ts, frame) in &recs {
        assert!(*ts >= last, "timestamps never go backwards");
        last = *ts;
        assert!(frame.len() <= 1514, "no frame exceeds the Ethernet MTU");
        *protos.entry(verify_frame_checksums(frame)).or_insert(0) += 1;
        v6 += usize::from(frame[12..14] == [0x86, 0xDD]);
    }
    for proto in [1u8, 6, 17] {
        assert!(
            protos.get(&proto).copied().unwrap_or(0) > 0,
            "protocol {proto} present: {protos:?}"
        );
    }
    assert!(v6 > 0, "some IPv6 traffic");
    assert_eq!(stats.first_ts, recs[0].0);
    assert_eq!(stats.last_ts, last);
}

#[test]
fn mixed_config_starts_every_kind_of_session() {
    let (_, stats) = generate_pcap(&small_config(2));
    for kind in SessionKind::ALL {
        if TrafficMix::MIXED.weight(kind) == 0 {
            assert_eq!(stats.sessions_of(kind), 0, "{} not in the mix", kind.name());
            continue;
        }
        assert!(
            stats.sessions_of(kind) > 0,
            "{} missing: {stats:?}",
            kind.name()
        );
    }
}

#[derive(Default)]
struct Side {
    /// Next sequence number this side will send (SYN and FIN count as one).
    next: Option<u32>,
    retransmissions: u32,
}

/// Checks every TCP segment against the sender's stream position and every ACK against the
/// peer's: new data starts exactly at `next`, retransmissions lie wholly before it, and an
/// ACK acknowledges exactly what the peer has sent (nothing is lost in this capture).
#[test]
fn tcp_sequence_and_ack_numbers_are_consistent() {
    let cfg = TrafficConfig {
        retransmit_per_mille: 20,
        capture_loss_per_mille: 0,
        mix: TrafficMix {
            dns_udp: 0,
            ..TrafficMix::MIXED
        },
        ..small_config(3)
    };
    let (pcap, _) = generate_pcap(&cfg);
    check_tcp_consistency(&pcap);
}

/// The sequence/ACK checks of `tcp_sequence_and_ack_numbers_are_consistent` on one capture.
fn check_tcp_consistency(pcap: &[u8]) {
    let mut sides: HashMap<(Vec<u8>, Vec<u8>), Side> = HashMap::new();
    let mut handshakes = 0;
    let mut data_segments = 0;
    let mut retransmissions = 0;
    for (_, frame) in records(pcap) {
        let v6 = frame[12..14] == [0x86, 0xDD];
        let (ip_len, proto, src, dst) = if v6 {
            (
                40,
                frame[20],
                frame[22..38].to_vec(),
                frame[38..54].to_vec(),
            )
        } else {
            (
                usize::from(frame[14] & 0x0F) * 4,
                frame[23],
                frame[26..30].to_vec(),
                frame[30..34].to_vec(),
            )
        };
        if proto != PROTO_TCP {
            continue;
        }
        let tcp = &frame[14 + ip_len..];
        let key_of =
            |a: &[u8], pa: &[u8], b: &[u8], pb: &[u8]| ([a, pa].concat(), [b, pb].concat());
        let me = key_of(&src, &tcp[0..2], &dst, &tcp[2..4]);
        let peer = (me.1.clone(), me.0.clone());
        let seq = u32::from_be_bytes(tcp[4..8].try_into().unwrap());
        let ack = u32::from_be_bytes(tcp[8..12].try_into().unwrap());
        let flags = tcp[13];
        let payload = (tcp.len() - usize::from(tcp[12] >> 4) * 4) as u32;
        let peer_next = sides.get(&peer).and_then(|s| s.next);

        if flags & TCP_ACK != 0
            && !(flags & TCP_RST != 0 && flags & TCP_SYN == 0 && peer_next.is_none())
        {
            assert_eq!(
                Some(ack),
                peer_next,
                "ACK acknowledges exactly what the peer sent"
            );
        }
        let side = sides.entry(me).or_default();
        if flags & TCP_SYN != 0 {
            if flags & TCP_ACK != 0 {
                handshakes += 1;
            }
            if let Some(next) = side.next {
                assert_eq!(next, seq.wrapping_add(1), "a repeated SYN reuses its ISN");
            }
            side.next = Some(seq.wrapping_add(1));
            continue;
        }
        let Some(next) = side.next else {
            // A server's RST to a SYN it refuses: it never sent a SYN of its own.
            assert!(
                flags & TCP_RST != 0,
                "a side's first segment is a SYN or a refusing RST"
            );
            continue;
        };
        let advance = payload + u32::from(flags & TCP_FIN != 0);
        if seq == next {
            side.next = Some(next.wrapping_add(advance));
            data_segments += u32::from(payload > 0);
        } else {
            // Only a retransmission may start before `next`, and it must end by `next`.
            let behind = next.wrapping_sub(seq);
            assert!(
                behind >= advance && behind < 1 << 30,
                "segment {seq} vs next {next}"
            );
            side.retransmissions += 1;
            retransmissions += 1;
        }
    }
    assert!(handshakes > 20, "{handshakes} handshakes");
    assert!(data_segments > 500, "{data_segments} data segments");
    assert!(retransmissions > 0, "retransmissions exercised");
}

#[test]
fn pcapng_output_holds_the_same_packets_as_pcap() {
    let cfg = TrafficConfig {
        target_bytes: 200_000,
        ..small_config(4)
    };
    let (pcap, stats) = generate_pcap(&cfg);
    let mut writer = PcapngWriter::new(Vec::new()).unwrap();
    let ng_stats = generate(&cfg, &mut writer).unwrap();
    let ng = writer.into_inner();
    assert_eq!(ng_stats.packets, stats.packets);
    let mut frames = Vec::new();
    let mut p = 0;
    while p < ng.len() {
        let block_type = u32::from_le_bytes(ng[p..p + 4].try_into().unwrap());
        let len = u32::from_le_bytes(ng[p + 4..p + 8].try_into().unwrap()) as usize;
        assert_eq!(len % 4, 0);
        assert_eq!(
            &ng[p + len - 4..p + len],
            &ng[p + 4..p + 8],
            "trailing length"
        );
        if block_type == 6 {
            let high = u64::from(u32::from_le_bytes(ng[p + 12..p + 16].try_into().unwrap()));
            let low = u64::from(u32::from_le_bytes(ng[p + 16..p + 20].try_into().unwrap()));
            let caplen = u32::from_le_bytes(ng[p + 20..p + 24].try_into().unwrap()) as usize;
            frames.push(((high << 32) | low, ng[p + 28..p + 28 + caplen].to_vec()));
        }
        p += len;
    }
    let expected: Vec<(u64, Vec<u8>)> = records(&pcap)
        .into_iter()
        .map(|(t, f)| (t, f.to_vec()))
        .collect();
    assert!(
        frames == expected,
        "pcapng carries the pcap's frames and timestamps"
    );
}

#[test]
fn invalid_config_is_rejected_before_writing_packets() {
    let cfg = TrafficConfig {
        mix: TrafficMix::NONE,
        ..small_config(1)
    };
    let mut writer = PcapWriter::new(Vec::new()).unwrap();
    assert!(matches!(
        generate(&cfg, &mut writer),
        Err(GenerateError::InvalidConfig(_))
    ));
    assert_eq!(writer.bytes_written(), 24);
}

/// The shipped samples are exactly what the generator makes from the commands in
/// `share/pcapd/samples/README.md`: a generator change that alters them fails here, and
/// `bench/make-samples.sh` regenerates them.
#[test]
fn shipped_samples_are_reproducible_from_their_presets() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../share/pcapd/samples");
    let cases = [
        ("http.pcap", Preset::SampleHttp, 2),
        ("dns.pcap", Preset::SampleDns, 3),
        ("tls.pcap", Preset::SampleTls, 1),
        ("udp.pcap", Preset::SampleUdp, 5),
    ];
    for (file, preset, seed) in cases {
        let shipped = std::fs::read(format!("{dir}/{file}")).unwrap();
        let (generated, _) = generate_pcap(&TrafficConfig {
            seed,
            ..preset.config()
        });
        assert!(
            shipped == generated,
            "{file} differs from preset {preset:?} seed {seed}"
        );
    }
    let cfg = TrafficConfig {
        seed: 12,
        target_bytes: 256 << 10,
        max_body_bytes: 16 << 10,
        concurrency: 16,
        ..Preset::Mixed.config()
    };
    let mut writer = PcapngWriter::new(Vec::new()).unwrap();
    generate(&cfg, &mut writer).unwrap();
    let shipped = std::fs::read(format!("{dir}/mixed.pcapng")).unwrap();
    assert!(shipped == writer.into_inner(), "mixed.pcapng differs");
}

/// One TCP segment of a capture: addresses, ports, flags and payload.
struct Segment<'a> {
    src: (std::net::IpAddr, u16),
    dst: (std::net::IpAddr, u16),
    flags: u8,
    payload: &'a [u8],
}

fn tcp_segments(pcap: &[u8]) -> Vec<Segment<'_>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut out = Vec::new();
    for (_, frame) in records(pcap) {
        let v6 = frame[12..14] == [0x86, 0xDD];
        let (ip_len, proto, src, dst): (usize, u8, IpAddr, IpAddr) = if v6 {
            let a: [u8; 16] = frame[22..38].try_into().unwrap();
            let b: [u8; 16] = frame[38..54].try_into().unwrap();
            (
                40,
                frame[20],
                Ipv6Addr::from(a).into(),
                Ipv6Addr::from(b).into(),
            )
        } else {
            let a: [u8; 4] = frame[26..30].try_into().unwrap();
            let b: [u8; 4] = frame[30..34].try_into().unwrap();
            let hl = usize::from(frame[14] & 0x0F) * 4;
            (
                hl,
                frame[23],
                Ipv4Addr::from(a).into(),
                Ipv4Addr::from(b).into(),
            )
        };
        if proto != PROTO_TCP {
            continue;
        }
        let tcp = &frame[14 + ip_len..];
        let port = |i: usize| u16::from_be_bytes([tcp[i], tcp[i + 1]]);
        out.push(Segment {
            src: (src, port(0)),
            dst: (dst, port(2)),
            flags: tcp[13],
            payload: &tcp[usize::from(tcp[12] >> 4) * 4..],
        });
    }
    out
}

fn mail_config(seed: u64) -> TrafficConfig {
    TrafficConfig {
        seed,
        target_bytes: 4 << 20,
        concurrency: 24,
        max_body_bytes: 150_000,
        ..Preset::Mail.config()
    }
}

#[test]
fn mail_mix_starts_its_kinds_and_keeps_tcp_consistent() {
    let cfg = TrafficConfig {
        retransmit_per_mille: 20,
        capture_loss_per_mille: 0,
        ..mail_config(4)
    };
    let (pcap, stats) = generate_pcap(&cfg);
    for kind in SessionKind::ALL {
        assert_eq!(
            stats.sessions_of(kind) > 0,
            TrafficMix::MAIL.weight(kind) > 0,
            "{}: {stats:?}",
            kind.name()
        );
    }
    check_tcp_consistency(&pcap);
    for (_, frame) in records(&pcap) {
        verify_frame_checksums(frame);
    }
}

/// Client-to-server payload of each connection to `port`, concatenated in capture order
/// (no retransmissions or losses in the config used).
fn streams_to(
    segments: &[Segment<'_>],
    port: u16,
) -> HashMap<(std::net::IpAddr, u16), (Vec<u8>, Vec<u8>)> {
    let mut out: HashMap<_, (Vec<u8>, Vec<u8>)> = HashMap::new();
    for seg in segments {
        if seg.dst.1 == port {
            out.entry(seg.src)
                .or_default()
                .0
                .extend_from_slice(seg.payload);
        } else if seg.src.1 == port {
            out.entry(seg.dst)
                .or_default()
                .1
                .extend_from_slice(seg.payload);
        }
    }
    out
}

fn clean_mail_capture(seed: u64) -> Vec<u8> {
    let cfg = TrafficConfig {
        retransmit_per_mille: 0,
        capture_loss_per_mille: 0,
        ..mail_config(seed)
    };
    generate_pcap(&cfg).0
}

#[test]
fn smtp_dialogues_in_the_capture_are_well_formed() {
    let pcap = clean_mail_capture(5);
    let segments = tcp_segments(&pcap);
    let mut plain = 0;
    let mut upgraded = 0;
    for port in [25u16, 587] {
        for (client, (to_server, to_client)) in streams_to(&segments, port) {
            let commands = String::from_utf8_lossy(&to_server);
            let replies = String::from_utf8_lossy(&to_client);
            assert!(
                replies.starts_with("220 "),
                "{client:?}: banner {replies:.40}"
            );
            assert!(commands.starts_with("EHLO "), "{client:?}");
            assert!(replies.contains("\r\n250-STARTTLS\r\n"));
            if commands.contains("STARTTLS\r\n") {
                upgraded += 1;
                assert!(replies.contains("220 2.0.0 Ready to start TLS\r\n"));
                let hello = to_server
                    .windows(10)
                    .position(|w| w == b"STARTTLS\r\n")
                    .unwrap()
                    + 10;
                assert_eq!(
                    to_server.get(hello),
                    Some(&22),
                    "a ClientHello follows STARTTLS"
                );
                continue;
            }
            plain += 1;
            assert!(port == 25, "submission always upgrades");
            let mails = commands.matches("MAIL FROM:<").count();
            assert!(mails >= 1);
            assert_eq!(commands.matches("\r\nDATA\r\n").count(), mails);
            assert_eq!(commands.matches("\r\n.\r\n").count(), mails);
            assert_eq!(replies.matches("354 ").count(), mails);
            assert_eq!(replies.matches("250 2.0.0 Ok: queued as").count(), mails);
            assert!(commands.ends_with("QUIT\r\n") && replies.ends_with("221 2.0.0 Bye\r\n"));
            for header in [
                "\r\nFrom: ",
                "\r\nTo: ",
                "\r\nSubject: ",
                "\r\nMessage-ID: <",
            ] {
                assert_eq!(commands.matches(header).count(), mails, "{header}");
            }
        }
    }
    assert!(
        plain > 0 && upgraded > 0,
        "{plain} plain, {upgraded} with STARTTLS"
    );
}

#[test]
fn ftp_data_connections_go_to_the_announced_ports() {
    use std::net::IpAddr;
    let pcap = clean_mail_capture(6);
    let segments = tcp_segments(&pcap);
    // Every announced (address, port), passive from the server's replies, active from the
    // client's PORT/EPRT, with whether the server connects (active).
    let mut announced: Vec<((IpAddr, u16), bool)> = Vec::new();
    let mut transfers = 0;
    for (client, (to_server, to_client)) in streams_to(&segments, 21) {
        let commands = String::from_utf8_lossy(&to_server);
        let replies = String::from_utf8_lossy(&to_client);
        assert!(replies.starts_with("220"));
        assert!(commands.starts_with("USER "));
        let server_ip = segments
            .iter()
            .find(|s| s.src == client && s.dst.1 == 21)
            .unwrap()
            .dst
            .0;
        for line in replies.split("\r\n") {
            if let Some(rest) = line.strip_prefix("227 Entering Passive Mode (") {
                let n: Vec<u16> = rest
                    .trim_end_matches(").")
                    .split(',')
                    .map(|x| x.parse().unwrap())
                    .collect();
                let ip = IpAddr::from([n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8]);
                assert_eq!(ip, server_ip);
                announced.push(((ip, n[4] << 8 | n[5]), false));
            } else if let Some(rest) = line.strip_prefix("229 Entering Extended Passive Mode (|||")
            {
                announced.push((
                    (server_ip, rest.trim_end_matches("|)").parse().unwrap()),
                    false,
                ));
            } else if line.starts_with("150 ") {
                transfers += 1;
            }
        }
        for line in commands.split("\r\n") {
            if let Some(rest) = line.strip_prefix("PORT ") {
                let n: Vec<u16> = rest.split(',').map(|x| x.parse().unwrap()).collect();
                let ip = IpAddr::from([n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8]);
                assert_eq!(ip, client.0);
                announced.push(((ip, n[4] << 8 | n[5]), true));
            } else if let Some(rest) = line.strip_prefix("EPRT |2|") {
                let (ip, port) = rest.trim_end_matches('|').split_once('|').unwrap();
                announced.push(((ip.parse().unwrap(), port.parse().unwrap()), true));
            }
        }
        assert_eq!(
            commands.matches("RETR ").count()
                + commands.matches("STOR ").count()
                + commands.matches("LIST").count(),
            replies.matches("226 ").count()
        );
    }
    assert!(transfers > 5, "{transfers} transfers");
    assert_eq!(announced.len(), transfers);
    assert!(
        announced.iter().any(|(_, active)| *active),
        "some active transfers"
    );
    for (endpoint, active) in announced {
        let syn = segments
            .iter()
            .find(|s| s.dst == endpoint && s.flags & TCP_SYN != 0 && s.flags & TCP_ACK == 0)
            .unwrap_or_else(|| panic!("no SYN to announced {endpoint:?}"));
        assert_eq!(
            syn.src.1 == 20,
            active,
            "active data connections come from port 20"
        );
        let data: usize = segments
            .iter()
            .filter(|s| s.src == endpoint || s.dst == endpoint)
            .map(|s| s.payload.len())
            .sum();
        assert!(data > 0, "the data connection carries the transfer");
    }
}

#[test]
fn ssh_connections_start_with_version_lines() {
    let pcap = clean_mail_capture(7);
    let segments = tcp_segments(&pcap);
    let sessions = streams_to(&segments, 22);
    assert!(sessions.len() > 3);
    for (to_server, to_client) in sessions.values() {
        for side in [to_server, to_client] {
            let end = side.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = std::str::from_utf8(&side[..end]).unwrap();
            assert!(line.starts_with("SSH-2.0-") && line.len() < 255, "{line}");
            assert_eq!(side[end + 2 + 5], 20, "KEXINIT follows the version line");
        }
    }
}
