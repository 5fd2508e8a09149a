//! The builtin analyzer: reads pcap/pcapng captures and writes Zeek-compatible logs.
//!
//! Pipeline: `capture` (memory-mapped readers, k-way merge of a job's files) → `decode`
//! (link layer, IP, transport headers, checksums) → `frag` (IP reassembly) → `flow`
//! (connection table, TCP state and reassembly, application analyzers from `app`) →
//! `writer` (Zeek TSV or JSON lines, one file per log). `log` holds the typed records the
//! producers hand to the writer; `conn_log` and `weird` own their logs' schemas.
//! docs/analyzer.md describes the semantics and what is not handled.

pub mod app;
pub mod capture;
pub mod conn_log;
pub mod decode;
pub mod flow;
pub mod frag;
pub mod hash;
pub mod log;
pub mod weird;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

pub use crate::config::LogFormat;
use capture::{CaptureError, CaptureReader, MergedCapture};
use decode::DecodeIssue;
use flow::{FlowTable, TableOptions};
use frag::{FragOutcome, Reassembler};
use writer::LogWriterSet;

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Accept packets with bad checksums (Zeek's `-C`).
    pub ignore_checksums: bool,
    pub format: LogFormat,
    /// None = all logs; Some(set) = only these log paths, e.g. {"conn"}
    pub only_logs: Option<BTreeSet<String>>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            ignore_checksums: false,
            format: LogFormat::Tsv,
            only_logs: None,
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
    let mut summary = run(&inputs, opts, &mut sink, progress)?;
    summary.logs = sink
        .finish()
        .map_err(|(path, source)| AnalyzeError::Output { path, source })?;
    Ok(summary)
}

/// For fuzzing: the whole pipeline on an in-memory capture, logs discarded.
pub fn analyze_bytes(data: &[u8], opts: &AnalyzeOptions) -> Result<AnalyzeSummary, AnalyzeError> {
    let mut sink = LogWriterSet::discarding(opts.format);
    let inputs = [(Path::new("<memory>"), data)];
    let mut summary = run(&inputs, opts, &mut sink, &mut |_, _| {})?;
    summary.logs = sink
        .finish()
        .map_err(|(path, source)| AnalyzeError::Output { path, source })?;
    Ok(summary)
}

fn run(
    inputs: &[(&Path, &[u8])],
    opts: &AnalyzeOptions,
    sink: &mut LogWriterSet,
    progress: &mut dyn FnMut(u64, u64),
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
    });
    let mut reassembler = Reassembler::default();
    let mut summary = AnalyzeSummary::default();
    let mut next_progress = PROGRESS_STEP;
    let mut unknown_link_types = BTreeSet::new();
    let mut last_frag_expiry_ns = i64::MIN;

    while let Some((_, pkt)) = merged.next_packet() {
        summary.packets += 1;
        if summary.packets % 4096 == 0 {
            let done = merged.position() as u64;
            if done >= next_progress {
                next_progress = done + PROGRESS_STEP;
                progress(done, total);
            }
        }
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
        let ip = match decode::parse_ip(version, l3, !opts.ignore_checksums) {
            Ok(ip) => ip,
            Err(name) => {
                table.unattached_weird(sink, pkt.ts_ns, None, name, "IP");
                continue;
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
                && pkt.ts_ns - last_frag_expiry_ns > frag::FRAGMENT_TIMEOUT_NS / 6
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
                    table.packet(pkt.ts_ns, &whole, sink);
                }
            }
            continue;
        }
        table.packet(pkt.ts_ns, &ip, sink);
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
    summary.connections = table.connections;
    summary.services = std::mem::take(&mut table.services);
    progress(summary.bytes, total);
    Ok(summary)
}
