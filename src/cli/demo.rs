//! `pcapd demo`: the embedded-defaults tour.
//!
//! Starts a daemon in this process on 127.0.0.1 (ephemeral port) with a generated
//! certificate and password in a fresh state directory, submits the bundled sample captures
//! through the TLS client exactly as a front end would, waits for the jobs, and prints what
//! came out: files, packets, connections per service, logs, and where they are. The samples
//! are compiled into the binary so the demo works from any directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::client_cmds::wait_terminal;
use crate::client::{Client, ClientSettings, TlsTrust, DEFAULT_CHUNK};
use crate::daemon::embedded_config;

/// The bundled samples (made by this project; see share/pcapd/samples/README.md).
const SAMPLES: &[(&str, &[u8])] = &[
    (
        "http.pcap",
        include_bytes!("../../share/pcapd/samples/http.pcap"),
    ),
    (
        "dns.pcap",
        include_bytes!("../../share/pcapd/samples/dns.pcap"),
    ),
    (
        "tls.pcap",
        include_bytes!("../../share/pcapd/samples/tls.pcap"),
    ),
    (
        "udp.pcap",
        include_bytes!("../../share/pcapd/samples/udp.pcap"),
    ),
    (
        "mixed.pcapng",
        include_bytes!("../../share/pcapd/samples/mixed.pcapng"),
    ),
];

pub async fn run(state_dir: Option<PathBuf>, captures: Vec<PathBuf>) -> Result<i32> {
    let state_dir = match state_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("pcapd-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let captures = if captures.is_empty() {
        write_samples(&state_dir)?
    } else {
        captures
    };

    let mut config = embedded_config(state_dir.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    config.global.bind = "127.0.0.1".parse()?;
    config.global.port = 0;
    let password = config.password().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cert = config
        .global
        .sslcert
        .clone()
        .context("embedded config has no certificate")?;
    let listener = TcpListener::bind(SocketAddr::new(config.global.bind, 0)).await?;
    let addr = listener.local_addr()?;
    let pool_size = config.global.pool;
    println!("pcapd demo");
    println!("  state directory  {}", state_dir.display());
    println!(
        "  daemon           {addr} (TLS, self-signed certificate {}), pool of {pool_size} workers",
        cert.display()
    );

    let shutdown = CancellationToken::new();
    let (_reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let daemon = tokio::spawn(crate::daemon::run(
        config,
        listener,
        shutdown.clone(),
        reload_rx,
        move |r| {
            let _ = ready_tx.send(r.addr);
        },
    ));
    if ready_rx.await.is_err() {
        return match daemon.await {
            Ok(Err(e)) => Err(anyhow::anyhow!("daemon failed to start: {e}")),
            _ => Err(anyhow::anyhow!("daemon failed to start")),
        };
    }

    let settings = ClientSettings {
        host: "127.0.0.1".into(),
        port: addr.port(),
        password,
        tls: Some(TlsTrust {
            ca: cert,
            server_name: "127.0.0.1".into(),
        }),
        connect_timeout: std::time::Duration::from_secs(10),
        chunk: DEFAULT_CHUNK,
    };
    let result = submit_all(settings, &captures, &state_dir).await;
    shutdown.cancel();
    let _ = daemon.await;
    result
}

fn write_samples(state_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = state_dir.join("samples");
    std::fs::create_dir_all(&dir)?;
    SAMPLES
        .iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

async fn submit_all(
    settings: ClientSettings,
    captures: &[PathBuf],
    state_dir: &Path,
) -> Result<i32> {
    let mut client = Client::connect(settings)
        .await
        .context("cannot connect to the demo daemon")?;
    let mut jobs = Vec::new();
    for capture in captures {
        let tag = capture.file_stem().map(|s| {
            s.to_string_lossy()
                .replace(|c: char| !c.is_ascii_graphic(), "_")
        });
        let answer = client
            .submit_files(
                std::slice::from_ref(capture),
                tag.as_deref(),
                Map::new(),
                &mut |_, _| {},
            )
            .await?;
        let id = answer["job_id"]
            .as_str()
            .context("no job_id in submit answer")?
            .to_owned();
        println!("  submitted        {} as job {id}", capture.display());
        jobs.push((capture.clone(), id));
    }
    println!();
    let mut failures = 0;
    let mut services: BTreeMap<String, u64> = BTreeMap::new();
    let (mut total_packets, mut total_logs) = (0u64, 0usize);
    for (capture, id) in &jobs {
        let job = wait_terminal(&mut client, id, None, false).await?;
        let name = capture
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if job["state"] != "done" {
            failures += 1;
            println!(
                "{name}: {} ({})",
                job["state"].as_str().unwrap_or("?"),
                job["error"]["message"].as_str().unwrap_or("")
            );
            continue;
        }
        let packets = job["packets"].as_u64().unwrap_or(0);
        total_packets += packets;
        let logs: Vec<String> = job["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                format!(
                    "{} ({} lines)",
                    l["name"].as_str().unwrap_or("?"),
                    l["lines"]
                )
            })
            .collect();
        total_logs += logs.len();
        let conn_log = client
            .call_raw("fetch", json!({ "job_id": id, "log": "conn.log" }))
            .await
            .unwrap_or_default();
        let per_service = count_services(&conn_log);
        let conns: u64 = per_service.values().sum();
        for (service, n) in &per_service {
            *services.entry(service.clone()).or_default() += n;
        }
        println!("{name}: done, {packets} packets, {conns} connections");
        println!("    logs      {}", logs.join(", "));
        println!("    services  {}", format_services(&per_service));
    }
    println!();
    println!(
        "total: {} jobs, {total_packets} packets, {total_logs} logs; connections per service: {}",
        jobs.len(),
        format_services(&services)
    );
    println!("logs are in {}/jobs/<job id>/logs/", state_dir.display());
    if failures > 0 {
        bail!("{failures} of {} demo jobs did not finish", jobs.len());
    }
    Ok(0)
}

/// Counts conn.log rows per `service` column (Zeek TSV or JSON lines).
pub fn count_services(conn_log: &[u8]) -> BTreeMap<String, u64> {
    let text = String::from_utf8_lossy(conn_log);
    let mut counts = BTreeMap::new();
    let mut column = None;
    for line in text.lines() {
        if let Some(fields) = line.strip_prefix("#fields\t") {
            column = fields.split('\t').position(|f| f == "service");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let service = if line.starts_with('{') {
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["service"].as_str().map(str::to_owned))
        } else {
            column
                .and_then(|c| line.split('\t').nth(c))
                .map(str::to_owned)
        };
        let service = service
            .filter(|s| s != "-")
            .unwrap_or_else(|| "(none)".into());
        *counts.entry(service).or_insert(0) += 1;
    }
    counts
}

fn format_services(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "-".into();
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_services_in_tsv_and_json() {
        let tsv = b"#fields\tts\tuid\tservice\n1\tC1\thttp\n2\tC2\t-\n3\tC3\thttp\n#close\t2026\n";
        let counts = count_services(tsv);
        assert_eq!(counts.get("http"), Some(&2));
        assert_eq!(counts.get("(none)"), Some(&1));
        let json = b"{\"service\":\"dns\"}\n{\"uid\":\"x\"}\n";
        let counts = count_services(json);
        assert_eq!(counts.get("dns"), Some(&1));
        assert_eq!(counts.get("(none)"), Some(&1));
    }
}
