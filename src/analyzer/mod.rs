//! The builtin analyzer: reads pcap/pcapng captures and writes Zeek-compatible logs.
//!
//! Pipeline: `capture` (memory-mapped readers, k-way merge of a job's files) → `decode`
//! (link layer, IP, transport headers, checksums) → `frag` (IP reassembly) → `flow`
//! (connection table, TCP state and reassembly, application analyzers from `app`) →
//! `writer` (Zeek TSV or JSON lines, one file per log). `log` holds the typed records the
//! producers hand to the writer; `conn_log` and `weird` own their logs' schemas; `site`
//! says which addresses Zeek counts as local.
//! docs/analyzer.md describes the semantics and what is not handled.

mod addr_text;
pub mod app;
pub mod bytes;
pub mod capture;
pub mod community_id;
pub mod conn_log;
pub mod decode;
pub mod flow;
pub mod frag;
pub mod hash;
mod icmp;
pub mod log;
mod prefetch;
pub mod site;
pub mod uid;
pub mod weird;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::config::ExtractConfig;
pub use crate::config::LogFormat;
use capture::{CaptureError, CaptureReader, MergedCapture, RawPacket};
use decode::DecodeIssue;
use flow::{FlowTable, TableOptions};
use frag::{FragOutcome, Reassembler};
use writer::LogWriterSet;

/// Every log the builtin analyzer can write, by `#path` (`conn` → `conn.log`).
pub fn log_names() -> [&'static str; 12] {
    [
        conn_log::CONN_SCHEMA.path,
        app::dhcp::DHCP_SCHEMA.path,
        app::dns::DNS_SCHEMA.path,
        app::files::FILES_SCHEMA.path,
        app::ftp::FTP_SCHEMA.path,
        app::http::HTTP_SCHEMA.path,
        app::ntp::NTP_SCHEMA.path,
        app::smtp::SMTP_SCHEMA.path,
        app::ssh::SSH_SCHEMA.path,
        app::ssl::SSL_SCHEMA.path,
        weird::WEIRD_SCHEMA.path,
        app::x509::X509_SCHEMA.path,
    ]
}

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Accept packets with bad checksums (Zeek's `-C`).
    pub ignore_checksums: bool,
    pub format: LogFormat,
    /// None = all logs; Some(set) = only these log paths, e.g. {"conn"}
    pub only_logs: Option<BTreeSet<String>>,
    /// Which files are written under `<out_dir>/extract_files/` (`[Extract]`).
    pub extract: ExtractConfig,
    /// conn.log's `community_id` column: its seed, or `None` for no column
    /// (`[Analyzer] community_id`, `community_id_seed`).
    pub community_id: Option<u16>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            ignore_checksums: false,
            format: LogFormat::Tsv,
            only_logs: None,
            extract: ExtractConfig::default(),
            community_id: Some(0),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AnalyzeSummary {
    /// File names written, e.g. "conn.log", sorted.
    pub logs: Vec<String>,
    pub packets: u64,
    /// Capture file bytes read.
    pub bytes: u64,
    pub connections: u64,
    /// Connections per service, "-" for none.
    pub services: BTreeMap<String, u64>,
    /// Files written under `extract_files/`, and how many of them were cut off.
    pub files_extracted: u64,
    pub files_cutoff: u64,
    pub warnings: Vec<String>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("no capture files given")]
    NoCaptures,
    #[error("{path}: {reason}")]
    BadInput { path: PathBuf, reason: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AnalyzeError {
    /// The failure class reported to the job system: "bad_input" | "analyzer" | "internal".
    pub fn kind(&self) -> &'static str {
        match self {
            AnalyzeError::NoCaptures | AnalyzeError::BadInput { .. } | AnalyzeError::Io { .. } => {
                "bad_input"
            }
            AnalyzeError::Output { .. } => "internal",
        }
    }
}

/// How often (in bytes of input) progress is reported.
const PROGRESS_STEP: u64 = 16 * 1024 * 1024;

/// Analyzes `captures` as one capture (packets merged by timestamp) and writes the logs into
/// `out_dir` (created if missing). `progress` receives (bytes done, bytes total).
pub fn analyze(
    captures: &[PathBuf],
    out_dir: &Path,
    opts: &AnalyzeOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AnalyzeSummary, AnalyzeError> {
    if captures.is_empty() {
        return Err(AnalyzeError::NoCaptures);
    }
    let mut maps = Vec::with_capacity(captures.len());
    for path in captures {
        let file = File::open(path).map_err(|source| AnalyzeError::Io {
            path: path.clone(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| AnalyzeError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        if len == 0 {
            return Err(AnalyzeError::BadInput {
                path: path.clone(),
                reason: "empty file".into(),
            });
        }
        // SAFETY: the job store never modifies a capture after it was made durable, and this
        // process only reads the map; a concurrent truncation by someone else could fault,
        // which is the documented limit of memory-mapped input.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| AnalyzeError::Io {
            path: path.clone(),
            source,
        })?;
        // Only a hint (larger readahead); failure changes nothing.
        let _ = map.advise(memmap2::Advice::Sequential);
        maps.push(map);
    }
    std::fs::create_dir_all(out_dir).map_err(|source| AnalyzeError::Output {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let inputs: Vec<(&Path, &[u8])> = captures
        .iter()
        .map(PathBuf::as_path)
        .zip(maps.iter().map(|m| &m[..]))
        .collect();
    let mut sink = LogWriterSet::to_dir(out_dir, opts.format, opts.only_logs.clone());
    let mut released = vec![0usize; maps.len()];
    let mut release = |positions: &[usize]| release_consumed(&maps, &mut released, positions);
    // Digests nobody would see (no files.log, no extraction) are not computed.
    let files_logged = opts
        .only_logs
        .as_ref()
        .is_none_or(|only| only.contains("files"));
    let digests = if files_logged || opts.extract.enabled() {
        app::files::DigestSet::from_names(&opts.extract.hashes)
    } else {
        app::files::DigestSet::NONE
    };
    let _hashing = app::files::HashScope::enter(digests);
    let scope = opts.extract.enabled().then(|| {
        app::files::ExtractScope::enter(&opts.extract, &out_dir.join(app::files::EXTRACT_DIR))
    });
    let mut summary = run(&inputs, opts, &mut sink, progress, &mut release)?;
    if let Some(scope) = scope {
        let stats = scope.finish();
        summary.files_extracted = stats.files;
        summary.files_cutoff = stats.cutoff;
        summary.warnings.extend(stats.warnings);
    }
    summary.logs = sink
        .finish()
        .map_err(|(path, source)| AnalyzeError::Output { path, source })?;
    Ok(summary)
}

/// For fuzzing: the whole pipeline on an in-memory capture, logs discarded.
pub fn analyze_bytes(data: &[u8], opts: &AnalyzeOptions) -> Result<AnalyzeSummary, AnalyzeError> {
    let mut sink = LogWriterSet::discarding(opts.format);
    let inputs = [(Path::new("<memory>"), data)];
    let mut summary = run(&inputs, opts, &mut sink, &mut |_, _| {}, &mut |_| {})?;
    summary.logs = sink
        .finish()
        .map_err(|(path, source)| AnalyzeError::Output { path, source })?;
    Ok(summary)
}

/// Granularity of [`release_consumed`]: whole 2 MiB steps (a multiple of any page size).
const RELEASE_STEP: usize = 2 * 1024 * 1024;

/// Drops the pages of each map below what the reader consumed, so resident memory follows
/// the live connections, not the size of the capture (a mapped page counts in RSS until it is
/// released, even though the kernel could reclaim it).
///
/// Sound for these maps: they are read-only, private and never written, so `MADV_DONTNEED`
/// only discards page-cache copies; a later access (a slice still held somewhere) faults the
/// same bytes in again from the file.
fn release_consumed(maps: &[memmap2::Mmap], released: &mut [usize], positions: &[usize]) {
    for ((map, done), &pos) in maps.iter().zip(released.iter_mut()).zip(positions) {
        let upto = pos - pos % RELEASE_STEP;
        if upto > *done {
            // SAFETY: see above; the range lies inside the map.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, *done, upto - *done)
            };
            *done = upto;
        }
    }
}

/// Packets read ahead of the one being processed, for prefetching.
const LOOKAHEAD: usize = 8;

/// Decodes a packet read ahead (as the main loop would, with the same header check) and
/// prefetches its flow's index entry: the packet, or `None` if decoding failed (the main
/// loop decodes it again and reports why), and the hash if it is a plain TCP or UDP packet.
fn decode_ahead<'a>(
    table: &FlowTable,
    pkt: &RawPacket<'a>,
    check_header: bool,
) -> (Option<decode::IpPacket<'a>>, Option<u32>) {
    let Ok((version, l3)) = decode::link_to_ip(pkt.link_type, pkt.data) else {
        return (None, None);
    };
    let Ok(ip) = decode::parse_ip(version, l3, check_header) else {
        return (None, None);
    };
    let hash = table.prefetch_index(&ip);
    (Some(ip), hash)
}

fn run(
    inputs: &[(&Path, &[u8])],
    opts: &AnalyzeOptions,
    sink: &mut LogWriterSet,
    progress: &mut dyn FnMut(u64, u64),
    release: &mut dyn FnMut(&[usize]),
) -> Result<AnalyzeSummary, AnalyzeError> {
    let bad_input = |path: &Path, e: CaptureError| AnalyzeError::BadInput {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut readers = Vec::with_capacity(inputs.len());
    for (path, data) in inputs {
        readers.push(CaptureReader::open(data).map_err(|e| bad_input(path, e))?);
    }
    let total: u64 = inputs.iter().map(|(_, d)| d.len() as u64).sum();
    let mut merged = MergedCapture::new(readers);
    let mut table = FlowTable::new(TableOptions {
        ignore_checksums: opts.ignore_checksums,
        write_conn: sink.wants("conn"),
        write_weird: sink.wants("weird"),
        community_id: opts.community_id,
    });
    let mut reassembler = Reassembler::default();
    let mut summary = AnalyzeSummary::default();
    let mut next_progress = PROGRESS_STEP;
    let mut unknown_link_types = BTreeSet::new();
    let mut last_frag_expiry_ns = i64::MIN;

    // Packets read ahead, each with its flow-key hash once its index entry was prefetched:
    // the index entry of a packet is asked for LOOKAHEAD packets before it is processed, its
    // connection half as many before (see `FlowTable::prefetch_index`).
    type Ahead<'a> = (RawPacket<'a>, Option<decode::IpPacket<'a>>, Option<u32>);
    let mut ahead: VecDeque<Ahead<'_>> = VecDeque::with_capacity(LOOKAHEAD);
    loop {
        while ahead.len() < LOOKAHEAD {
            let Some((_, next)) = merged.next_packet() else {
                break;
            };
            let (ip, hash) = decode_ahead(&table, &next, !opts.ignore_checksums);
            ahead.push_back((next, ip, hash));
        }
        if let Some(&(_, _, Some(hash))) = ahead.get(LOOKAHEAD / 2) {
            table.prefetch_conn(hash);
        }
        let Some((pkt, decoded, hash)) = ahead.pop_front() else {
            break;
        };
        summary.packets += 1;
        if summary.packets % 4096 == 0 {
            let done = merged.position() as u64;
            if done >= next_progress {
                next_progress = done + PROGRESS_STEP;
                progress(done, total);
                release(&merged.positions());
            }
        }
        // Decoded when it was read ahead; decoded again here only if that failed, to report why.
        let ip = match decoded {
            Some(ip) => ip,
            None => {
                let (version, l3) = match decode::link_to_ip(pkt.link_type, pkt.data) {
                    Ok(v) => v,
                    Err(DecodeIssue::NotIp) => continue,
                    Err(DecodeIssue::UnknownLinkType) => {
                        unknown_link_types.insert(pkt.link_type);
                        continue;
                    }
                    Err(DecodeIssue::Truncated(name)) => {
                        table.unattached_weird(sink, pkt.ts_ns, None, name, "");
                        continue;
                    }
                };
                match decode::parse_ip(version, l3, !opts.ignore_checksums) {
                    Ok(ip) => ip,
                    Err(name) => {
                        table.unattached_weird(sink, pkt.ts_ns, None, name, "IP");
                        continue;
                    }
                }
            }
        };
        if ip.bad_header_checksum {
            table.unattached_weird(
                sink,
                pkt.ts_ns,
                Some((ip.src, ip.dst)),
                "bad_IP_checksum",
                "IP",
            );
            continue;
        }
        // Shorter than the IP header says although the snaplen did not cut it: the packet
        // itself is broken.
        if !ip.complete() && pkt.data.len() as u64 >= u64::from(pkt.orig_len) {
            table.unattached_weird(
                sink,
                pkt.ts_ns,
                Some((ip.src, ip.dst)),
                "truncated_IP",
                "IP",
            );
            continue;
        }
        if ip.fragment.is_some() {
            if reassembler.pending() > 0
                && pkt.ts_ns.saturating_sub(last_frag_expiry_ns) > frag::FRAGMENT_TIMEOUT_NS / 6
            {
                reassembler.expire(pkt.ts_ns);
                last_frag_expiry_ns = pkt.ts_ns;
            }
            match reassembler.add(pkt.ts_ns, &ip) {
                FragOutcome::Held => {}
                FragOutcome::Dropped(name) => {
                    table.unattached_weird(sink, pkt.ts_ns, Some((ip.src, ip.dst)), name, "IP")
                }
                FragOutcome::Complete(datagram) => {
                    let whole = decode::IpPacket {
                        payload: &datagram.payload,
                        payload_len: datagram.payload.len() as u32,
                        ip_len: datagram.ip_len,
                        fragment: None,
                        ..ip
                    };
                    table.packet(pkt.ts_ns, &whole, None, sink);
                }
            }
            continue;
        }
        table.packet(pkt.ts_ns, &ip, hash, sink);
    }
    table.finish(sink);

    for (file, offset) in merged.truncated_tails() {
        summary.warnings.push(format!(
            "{}: file ends inside the record at byte {offset}; that record was skipped",
            inputs[file].0.display()
        ));
    }
    for (file, err) in merged.errors() {
        summary.warnings.push(format!(
            "{}: {err}; the rest of this file was skipped",
            inputs[*file].0.display()
        ));
    }
    for lt in unknown_link_types {
        summary.warnings.push(format!(
            "packets with unsupported link type {lt} were skipped"
        ));
    }
    summary.bytes = merged.position() as u64;
    summary.connections = table.connections();
    summary.services = table.take_services();
    progress(summary.bytes, total);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::capture::testutil::pcap_le_us;
    use crate::analyzer::decode::tests::eth_tcp;
    use crate::analyzer::decode::{ACK, FIN, RST, SYN};

    const CLIENT: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
    const SERVER: ([u8; 4], u16) = ([10, 0, 0, 2], 80);

    /// A complete TCP conversation: handshake, 5 bytes each way, FIN both ways, final ACK.
    fn conversation() -> Vec<(u64, Vec<u8>)> {
        vec![
            (1_000_000, eth_tcp(CLIENT, SERVER, 100, 0, SYN, b"")),
            (1_100_000, eth_tcp(SERVER, CLIENT, 500, 101, SYN | ACK, b"")),
            (1_200_000, eth_tcp(CLIENT, SERVER, 101, 501, ACK, b"")),
            (1_300_000, eth_tcp(CLIENT, SERVER, 101, 501, ACK, b"hello")),
            (1_400_000, eth_tcp(SERVER, CLIENT, 501, 106, ACK, b"world")),
            (1_500_000, eth_tcp(CLIENT, SERVER, 106, 506, FIN | ACK, b"")),
            (1_600_000, eth_tcp(SERVER, CLIENT, 506, 107, FIN | ACK, b"")),
            (1_700_000, eth_tcp(CLIENT, SERVER, 107, 507, ACK, b"")),
        ]
    }

    fn capture(packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let refs: Vec<(u64, &[u8])> = packets.iter().map(|(t, f)| (*t, f.as_slice())).collect();
        pcap_le_us(1, &refs)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pcapd-analyzer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// Runs `analyze` over the given files and returns the conn.log data lines split in fields.
    fn conn_rows(
        name: &str,
        files: &[Vec<u8>],
        opts: &AnalyzeOptions,
    ) -> (AnalyzeSummary, Vec<Vec<String>>) {
        let dir = temp_dir(name);
        let mut paths = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let p = dir.join(format!("in{i}.pcap"));
            std::fs::write(&p, f).expect("write capture");
            paths.push(p);
        }
        let out = dir.join("logs");
        let summary = analyze(&paths, &out, opts, &mut |_, _| {}).expect("analysis succeeds");
        let text = std::fs::read_to_string(out.join("conn.log")).unwrap_or_default();
        let rows = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        (summary, rows)
    }

    #[test]
    fn complete_conversation_is_one_sf_connection() {
        let (summary, rows) = conn_rows(
            "sf",
            &[capture(&conversation())],
            &AnalyzeOptions::default(),
        );
        assert_eq!(summary.packets, 8);
        assert_eq!(summary.connections, 1);
        assert_eq!(summary.logs, vec!["conn.log".to_string()]);
        let r = &rows[0];
        // id, proto, duration (last FIN, not the final ACK), bytes, state, history, counters.
        assert_eq!(&r[2..7], &["10.0.0.1", "40000", "10.0.0.2", "80", "tcp"]);
        assert_eq!(r[8], "0.600000");
        assert_eq!(
            (r[9].as_str(), r[10].as_str(), r[11].as_str()),
            ("5", "5", "SF")
        );
        assert_eq!(r[15], "ShADdFf");
        assert_eq!(&r[16..20], &["5", "205", "3", "125"]);
        assert_eq!(r[21], "6");
    }

    #[test]
    fn files_of_one_job_are_merged_by_time() {
        let all = conversation();
        let (odd, even): (Vec<_>, Vec<_>) =
            all.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
        let a: Vec<_> = odd.into_iter().map(|(_, p)| p).collect();
        let b: Vec<_> = even.into_iter().map(|(_, p)| p).collect();
        let (summary, rows) = conn_rows(
            "merge",
            &[capture(&a), capture(&b)],
            &AnalyzeOptions::default(),
        );
        assert_eq!((summary.packets, rows.len()), (8, 1));
        assert_eq!(rows[0][15], "ShADdFf");
    }

    #[test]
    fn bad_checksum_is_dropped_unless_ignored() {
        let mut syn = eth_tcp(CLIENT, SERVER, 100, 0, SYN, b"");
        let last = syn.len() - 1;
        syn[last - 3] ^= 0x55; // inside the TCP header's urgent pointer: checksum breaks
        let file = capture(&[(1, syn)]);
        let (_, rows) = conn_rows(
            "csum",
            std::slice::from_ref(&file),
            &AnalyzeOptions::default(),
        );
        assert_eq!(
            (
                rows[0][15].as_str(),
                rows[0][16].as_str(),
                rows[0][11].as_str()
            ),
            ("C", "0", "OTH")
        );
        let ignore = AnalyzeOptions {
            ignore_checksums: true,
            ..AnalyzeOptions::default()
        };
        let (_, rows) = conn_rows("csum-ignored", &[file], &ignore);
        assert_eq!(
            (
                rows[0][15].as_str(),
                rows[0][16].as_str(),
                rows[0][11].as_str()
            ),
            ("S", "1", "S0")
        );
    }

    #[test]
    fn only_logs_filters_and_json_format_is_used() {
        let dir = temp_dir("json");
        let input = dir.join("in.pcap");
        std::fs::write(&input, capture(&conversation())).expect("write");
        let only: BTreeSet<String> = ["weird".to_string()].into_iter().collect();
        let opts = AnalyzeOptions {
            format: LogFormat::Json,
            only_logs: Some(only),
            ..AnalyzeOptions::default()
        };
        let summary = analyze(
            std::slice::from_ref(&input),
            &dir.join("a"),
            &opts,
            &mut |_, _| {},
        )
        .expect("runs");
        assert!(
            summary.logs.is_empty(),
            "conn.log must not be written: {:?}",
            summary.logs
        );
        let opts = AnalyzeOptions {
            format: LogFormat::Json,
            ..AnalyzeOptions::default()
        };
        analyze(&[input], &dir.join("b"), &opts, &mut |_, _| {}).expect("runs");
        let text = std::fs::read_to_string(dir.join("b/conn.log")).expect("conn.log");
        let row: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(row["history"], "ShADdFf");
        assert_eq!(row["id.resp_p"], 80);
        assert!(row.get("service").is_none(), "unset fields are omitted");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn broken_inputs_are_typed_errors_or_warnings() {
        let opts = AnalyzeOptions::default();
        let err = analyze_bytes(b"definitely not a capture file", &opts).expect_err("bad magic");
        assert_eq!(err.kind(), "bad_input");
        assert!(err.to_string().contains("not a pcap"), "{err}");
        assert!(analyze_bytes(&[0xd4, 0xc3], &opts).is_err());
        assert!(matches!(
            analyze(&[], Path::new("/nonexistent"), &opts, &mut |_, _| {}),
            Err(AnalyzeError::NoCaptures)
        ));

        // Every prefix of a valid file: a header error, or a run over the whole records that
        // warns about the cut one (no warning exactly at a record boundary).
        let frames = conversation();
        let file = capture(&frames);
        let mut boundaries = vec![24usize];
        for (_, f) in &frames {
            boundaries.push(boundaries[boundaries.len() - 1] + 16 + f.len());
        }
        for cut in 0..file.len() {
            match analyze_bytes(&file[..cut], &opts) {
                Err(e) => assert!(cut < 24 && e.kind() == "bad_input", "prefix {cut}: {e}"),
                Ok(s) => {
                    let whole = boundaries.iter().filter(|&&b| b <= cut).count() as u64 - 1;
                    assert_eq!(s.packets, whole, "prefix {cut}");
                    assert_eq!(
                        s.warnings.is_empty(),
                        boundaries.contains(&cut),
                        "prefix {cut}: {:?}",
                        s.warnings
                    );
                }
            }
        }

        // A record that claims 4 GiB.
        let mut huge = file.clone();
        huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        let s = analyze_bytes(&huge, &opts).expect("header is fine");
        assert_eq!(s.packets, 0);
        assert!(
            s.warnings.iter().any(|w| w.contains("record length")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn snaplen_shorter_than_headers_is_not_a_panic() {
        let frames = conversation();
        let mut file = capture(&[]);
        for (ts, frame) in &frames {
            let cut = &frame[..frame.len().min(30)];
            file.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
            file.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
            file.extend_from_slice(&(cut.len() as u32).to_le_bytes());
            file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            file.extend_from_slice(cut);
        }
        let s = analyze_bytes(&file, &AnalyzeOptions::default()).expect("runs");
        assert_eq!((s.packets, s.connections), (8, 0));
    }

    #[test]
    fn pcapng_and_fragmented_udp_make_one_connection() {
        use crate::analyzer::capture::pcapng::tests::NgBuilder;
        use crate::analyzer::decode::tests::ipv4;
        // One UDP datagram (8-byte header + 16 bytes) split in two IPv4 fragments, raw IP
        // link type, nanosecond timestamps.
        let mut udp = vec![0x13, 0x88, 0x13, 0x89, 0, 24, 0, 0];
        udp.extend_from_slice(b"0123456789abcdef");
        let fragment = |offset_units: u16, more: bool, part: &[u8]| {
            let mut p = ipv4([10, 1, 1, 1], [10, 1, 1, 2], 17, part);
            p[4..6].copy_from_slice(&77u16.to_be_bytes());
            p[6..8].copy_from_slice(&(offset_units | if more { 0x2000 } else { 0 }).to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let c = decode::internet_checksum(&[&p[..20]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p
        };
        let mut b = NgBuilder::new(false);
        b.section().interface(101, Some(9));
        b.epb(0, 5_000_000_000, &fragment(0, true, &udp[..16]));
        b.epb(0, 5_250_000_000, &fragment(2, false, &udp[16..]));
        let dir = temp_dir("ng-frag");
        let input = dir.join("in.pcapng");
        std::fs::write(&input, &b.buf).expect("write");
        let summary = analyze(
            &[input],
            &dir.join("out"),
            &AnalyzeOptions::default(),
            &mut |_, _| {},
        )
        .expect("runs");
        assert_eq!((summary.packets, summary.connections), (2, 1));
        let text = std::fs::read_to_string(dir.join("out/conn.log")).expect("conn.log");
        let row: Vec<&str> = text
            .lines()
            .find(|l| !l.starts_with('#'))
            .expect("a row")
            .split('\t')
            .collect();
        // The datagram exists when its last fragment arrives, as in Zeek.
        assert_eq!(row[0], "5.250000");
        assert_eq!(&row[2..7], &["10.1.1.1", "5000", "10.1.1.2", "5001", "udp"]);
        // Duration unset (one reassembled datagram), 1 packet of 44 IP bytes, history D.
        assert_eq!(
            (row[8], row[11], row[15], row[16], row[17]),
            ("-", "S0", "D", "1", "44")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn history_and_state(rows: &[Vec<String>]) -> Vec<(String, String, String)> {
        rows.iter()
            .map(|r| (format!("{}>{}", r[3], r[5]), r[15].clone(), r[11].clone()))
            .collect()
    }

    #[test]
    fn syn_ack_first_is_flipped_and_rejects_split_on_reuse() {
        // Mid-stream start with a SYN-ACK between two non-server ports: flipped by the
        // client's ACK into "^h".
        let a = ([10, 0, 0, 1], 40001);
        let b = ([10, 0, 0, 2], 7000);
        let synack_first = vec![
            (1_000_000, eth_tcp(b, a, 900, 101, SYN | ACK, b"")),
            (1_100_000, eth_tcp(a, b, 101, 901, ACK, b"")),
        ];
        let (_, rows) = conn_rows(
            "synack",
            &[capture(&synack_first)],
            &AnalyzeOptions::default(),
        );
        assert_eq!(
            history_and_state(&rows),
            vec![("40001>7000".into(), "^hA".into(), "S1".into())]
        );

        // Two SYNs (same ISN) each answered by RST-ACK: the second SYN reuses a reset
        // connection, so two REJ rows.
        let rst = |t: u64| (t, eth_tcp(SERVER, CLIENT, 0, 101, RST | ACK, b""));
        let syn = |t: u64| (t, eth_tcp(CLIENT, SERVER, 100, 0, SYN, b""));
        let packets = vec![
            syn(1_000_000),
            rst(1_050_000),
            syn(1_500_000),
            rst(1_550_000),
        ];
        let (_, rows) = conn_rows("rej", &[capture(&packets)], &AnalyzeOptions::default());
        let expect: Vec<(String, String, String)> =
            vec![("40000>80".into(), "Sr".into(), "REJ".into()); 2];
        assert_eq!(history_and_state(&rows), expect);
    }

    #[test]
    fn unanswered_syn_attempt_ends_after_five_seconds() {
        let packets = vec![
            (1_000_000, eth_tcp(CLIENT, SERVER, 100, 0, SYN, b"")),
            (2_000_000, eth_tcp(CLIENT, SERVER, 101, 1, ACK, b"abc")),
            (7_000_000, eth_tcp(CLIENT, SERVER, 104, 1, ACK, b"def")),
            (7_500_000, eth_tcp(CLIENT, SERVER, 107, 1, FIN | ACK, b"")),
        ];
        let (_, rows) = conn_rows("attempt", &[capture(&packets)], &AnalyzeOptions::default());
        let got = history_and_state(&rows);
        assert_eq!(
            got,
            vec![
                ("40000>80".into(), "SD".into(), "S0".into()),
                ("40000>80".into(), "DF".into(), "SH".into())
            ]
        );
        assert_eq!((rows[0][9].as_str(), rows[1][9].as_str()), ("3", "3"));
    }

    /// With only conn.log kept, analyzers are dropped once conn.log needs nothing more from
    /// them: conn.log must read the same as when every log is written.
    #[test]
    fn conn_log_alone_equals_conn_log_of_a_full_run() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("share/pcapd/samples");
        for name in [
            "dns.pcap",
            "http.pcap",
            "tls.pcap",
            "udp.pcap",
            "mixed.pcapng",
        ] {
            let input = samples.join(name);
            let dir = temp_dir(&format!("conn-only-{name}"));
            let only: BTreeSet<String> = ["conn".to_string()].into_iter().collect();
            let conn_only = AnalyzeOptions {
                only_logs: Some(only),
                ..AnalyzeOptions::default()
            };
            analyze(
                std::slice::from_ref(&input),
                &dir.join("a"),
                &conn_only,
                &mut |_, _| {},
            )
            .expect("runs");
            analyze(
                &[input],
                &dir.join("b"),
                &AnalyzeOptions::default(),
                &mut |_, _| {},
            )
            .expect("runs");
            let rows = |d: &str| {
                std::fs::read_to_string(dir.join(d).join("conn.log"))
                    .expect("conn.log")
                    .lines()
                    .filter(|l| !l.starts_with("#open") && !l.starts_with("#close"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            let (a, b) = (rows("a"), rows("b"));
            assert!(a.len() > 8, "{name}: rows expected");
            assert_eq!(a, b, "{name}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// An Ethernet frame carrying an IPv4/UDP datagram (checksum 0: none, valid on IPv4).
    fn eth_udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
        use crate::analyzer::decode::tests::ipv4;
        let mut udp = Vec::new();
        udp.extend_from_slice(&src.1.to_be_bytes());
        udp.extend_from_slice(&dst.1.to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ipv4(src.0, dst.0, 17, &udp));
        frame
    }

    /// Zeek's NTP analyzer flips a connection whose first message is a server reply while
    /// delivering it: that reply still counts for the originator slot, the byte counts and
    /// the once-per-side history letters do not move (Zeek's `ntp-misordered` baseline).
    #[test]
    fn ntp_reply_first_is_flipped_as_zeek_counts_it() {
        let client = ([192, 168, 1, 95], 123);
        let server = ([17, 253, 4, 253], 123);
        let mut reply = vec![0u8; 48];
        reply[0] = 0x24; // version 4, server
        reply[1] = 1;
        let mut request = vec![0u8; 48];
        request[0] = 0x23; // version 4, client
        let packets = vec![
            (1_000_000, eth_udp(server, client, &reply)),
            (1_500_000, eth_udp(client, server, &request)),
        ];
        let (_, rows) = conn_rows("ntp-flip", &[capture(&packets)], &AnalyzeOptions::default());
        let r = &rows[0];
        assert_eq!(
            &r[2..8],
            &["192.168.1.95", "123", "17.253.4.253", "123", "udp", "ntp"]
        );
        assert_eq!(
            (r[9].as_str(), r[10].as_str(), r[11].as_str()),
            ("96", "0", "S0")
        );
        assert_eq!(&r[15..20], &["D^", "2", "152", "0", "0"]);
        // community_id, the last column, does not depend on the direction.
        assert_eq!(r[22], "1:q+E/7GTUdsoN01RZ4wmfdtC0+Bs=");
    }

    /// A DHCP exchange spans connections and is written when it has been idle 5 s at a
    /// check (10 s after it began, then every 5 s); the same transaction id after that
    /// starts a new line.
    #[test]
    fn dhcp_exchanges_span_connections_and_expire_with_capture_time() {
        use crate::analyzer::app::dhcp::DHCP_SCHEMA;
        let dhcp = |op: u8, msg_type: u8, yiaddr: [u8; 4]| {
            let mut m = vec![0u8; 236];
            m[0] = op;
            m[4..8].copy_from_slice(&7u32.to_be_bytes());
            m[16..20].copy_from_slice(&yiaddr);
            m[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            m.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 53, 1, msg_type, 255]);
            m
        };
        let client = ([0, 0, 0, 0], 68);
        let server = ([10, 0, 0, 1], 67);
        let packets = vec![
            (
                1_000_000,
                eth_udp(client, ([255; 4], 67), &dhcp(1, 1, [0; 4])),
            ),
            (
                1_100_000,
                eth_udp(server, ([255; 4], 68), &dhcp(2, 2, [10, 0, 0, 9])),
            ),
            // 20 s later: the first exchange was written at its check, this one is new.
            (
                21_000_000,
                eth_udp(client, ([255; 4], 67), &dhcp(1, 3, [0; 4])),
            ),
        ];
        let dir = temp_dir("dhcp-expiry");
        let input = dir.join("in.pcap");
        std::fs::write(&input, capture(&packets)).expect("write");
        analyze(
            &[input],
            &dir.join("out"),
            &AnalyzeOptions::default(),
            &mut |_, _| {},
        )
        .expect("runs");
        let text = std::fs::read_to_string(dir.join("out").join("dhcp.log")).expect("dhcp.log");
        let fields: Vec<&str> = DHCP_SCHEMA.fields.iter().map(|f| f.name).collect();
        let col = |row: &str, name: &str| {
            let i = fields.iter().position(|f| *f == name).expect("column");
            row.split('\t').nth(i).unwrap_or_default().to_owned()
        };
        let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(col(rows[0], "msg_types"), "DISCOVER,OFFER");
        assert_eq!(col(rows[0], "uids").split(',').count(), 2);
        assert_eq!(col(rows[0], "assigned_addr"), "10.0.0.9");
        assert_eq!(col(rows[0], "server_addr"), "10.0.0.1");
        assert_eq!(col(rows[0], "mac"), "02:00:00:00:00:01");
        assert_eq!(col(rows[1], "msg_types"), "REQUEST");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn mutated_captures_never_panic() {
        // A deterministic mutation loop over a valid capture (the fuzzer does this at scale).
        let base = capture(&conversation());
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..2000 {
            let mut m = base.clone();
            for _ in 0..(1 + rnd() % 8) {
                let at = (rnd() as usize) % m.len();
                m[at] = rnd() as u8;
            }
            let opts = AnalyzeOptions {
                ignore_checksums: round % 2 == 0,
                ..AnalyzeOptions::default()
            };
            if let Err(e) = analyze_bytes(&m, &opts) {
                assert_eq!(e.kind(), "bad_input");
            }
        }
        let mut noise = vec![0u8; 4096];
        for b in noise.iter_mut() {
            *b = rnd() as u8;
        }
        assert!(analyze_bytes(&noise, &AnalyzeOptions::default()).is_err());
    }
}
