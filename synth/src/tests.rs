//! Whole-generator tests: byte-exact determinism, valid checksums on every frame, record
//! framing and ordering, TCP sequence/acknowledgement consistency, and the session mix.

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
    let mut sides: HashMap<(Vec<u8>, Vec<u8>), Side> = HashMap::new();
    let mut handshakes = 0;
    let mut data_segments = 0;
    let mut retransmissions = 0;
    for (_, frame) in records(&pcap) {
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
