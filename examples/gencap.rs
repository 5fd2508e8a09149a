//! gencap: writes a synthetic capture with pcapd's deterministic traffic generator.
//!
//! ```text
//! cargo run --release --example gencap -- --size 1G --seed 1 OUT.pcap
//! cargo run --release --example gencap -- --kind sample-http --format pcapng OUT.pcapng
//! ```
//!
//! `--kind` picks a preset: `mixed` (everything, large bodies, 64 concurrent sessions), `http`
//! or `tls` (one protocol only, the analyzer benchmark's HTTP- and TLS-heavy mixes), or one
//! of the small-sample presets used for `share/pcapd/samples/`; `mail` is SMTP (STARTTLS
//! for a share, MIME attachments), FTP with its data connections, SSH and some DNS (the
//! analyzer benchmark's mail mix). The same arguments always
//! produce the same bytes.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use pcapd_synth::{
    generate, GenStats, PacketSink, PcapWriter, PcapngWriter, Preset, SessionKind, TrafficConfig,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    /// All traffic kinds, bodies up to 1 MiB, 64 concurrent sessions.
    Mixed,
    /// HTTP only, bodies up to 256 KiB, 64 concurrent sessions (the HTTP-heavy benchmark).
    Http,
    /// TLS only, up to 256 KiB of application data, 64 concurrent sessions (TLS-heavy).
    Tls,
    /// SMTP, FTP (with data connections), SSH and some DNS, transfers up to 1 MiB (mail mix).
    Mail,
    /// HTTP/1.1 over TCP: keep-alive, POST, chunked, 304/404/301, a few retransmissions.
    SampleHttp,
    /// DNS over UDP (A/AAAA/CNAME, NXDOMAIN, unanswered) and over TCP.
    SampleDns,
    /// TLS 1.2 and 1.3 handshakes with SNI and ALPN, then application data.
    SampleTls,
    /// NTP, an opaque UDP flow and ICMP/ICMPv6 echo.
    SampleUdp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Pcap,
    Pcapng,
}

#[derive(Parser, Debug)]
#[command(about = "Write a deterministic synthetic capture")]
struct Args {
    /// Stop starting sessions at this file size (K, M, G suffixes are powers of 1024).
    #[arg(long)]
    size: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Kind::Mixed)]
    kind: Kind,
    #[arg(long, value_enum, default_value_t = Format::Pcap)]
    format: Format,
    /// Sessions in flight at once (overrides the preset).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Largest HTTP/TLS response body, attachment or file transfer (K, M, G suffixes;
    /// overrides the preset).
    #[arg(long)]
    max_body: Option<String>,
    /// Output capture file.
    out: PathBuf,
}

fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => bail!("size {text:?}: unit must be K, M or G"),
    };
    let value: u64 = digits
        .parse()
        .with_context(|| format!("size {text:?} is not a number"))?;
    value
        .checked_shl(shift)
        .filter(|v| v >> shift == value)
        .with_context(|| format!("size {text:?} is too large"))
}

fn preset(kind: Kind) -> TrafficConfig {
    match kind {
        Kind::Mixed => Preset::Mixed,
        Kind::Http => Preset::Http,
        Kind::Tls => Preset::Tls,
        Kind::Mail => Preset::Mail,
        Kind::SampleHttp => Preset::SampleHttp,
        Kind::SampleDns => Preset::SampleDns,
        Kind::SampleTls => Preset::SampleTls,
        Kind::SampleUdp => Preset::SampleUdp,
    }
    .config()
}

fn run_to<S: PacketSink>(cfg: &TrafficConfig, sink: &mut S) -> Result<GenStats> {
    Ok(generate(cfg, sink)?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut cfg = preset(args.kind);
    cfg.seed = args.seed;
    if let Some(size) = &args.size {
        cfg.target_bytes = parse_size(size)?;
    }
    if let Some(max_body) = &args.max_body {
        cfg.max_body_bytes = parse_size(max_body)?;
    }
    if let Some(concurrency) = args.concurrency {
        cfg.concurrency = concurrency;
    }
    let file =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let started = Instant::now();
    let stats = match args.format {
        Format::Pcap => run_to(&cfg, &mut PcapWriter::new(out)?),
        Format::Pcapng => run_to(&cfg, &mut PcapngWriter::new(out)?),
    }
    .with_context(|| format!("writing {}", args.out.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} packets, {} bytes, {:.1} s of traffic, written in {:.2} s ({:.0} MB/s)",
        args.out.display(),
        stats.packets,
        stats.file_bytes,
        (stats.last_ts - stats.first_ts) as f64 / 1e6,
        elapsed,
        stats.file_bytes as f64 / 1e6 / elapsed.max(1e-9)
    );
    let kinds: Vec<String> = SessionKind::ALL
        .iter()
        .filter(|k| stats.sessions_of(**k) > 0)
        .map(|k| format!("{} {}", k.name(), stats.sessions_of(*k)))
        .collect();
    eprintln!("sessions: {}", kinds.join(", "));
    Ok(())
}
