//! Load generator for `bench/daemon.sh`: drives a running pcapd over TLS.
//!
//! `jobs`: C concurrent clients each submit a capture and wait for it, N jobs in all; prints
//! jobs/s and p50/p99/max submit-to-done latency as one JSON line.
//! `idle`: opens N authenticated TLS connections (one `ping` each), holds them for `hold`
//! seconds while the script reads the daemon's RSS, then closes them; prints JSON.
//! `submits`: C concurrent clients submit a capture N times in all without waiting for the
//! jobs: p50/p99/max of the submit round trip alone (what group commit shortens).
//! `calls`: one connection calls FUNC with the JSON kwargs N times: p50/p99/max per call
//! (`bench/store.sh`: `list`, `status`).
//!
//! Usage: loadgen jobs HOST PORT CA PASSWORD_FILE CAPTURE N C
//!        loadgen idle HOST PORT CA PASSWORD_FILE N HOLD_SECS
//!        loadgen submits HOST PORT CA PASSWORD_FILE CAPTURE N C
//!        loadgen calls HOST PORT CA PASSWORD_FILE N FUNC KWARGS_JSON

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pcapd::client::{Client, ClientSettings, TlsTrust, DEFAULT_CHUNK};
use serde_json::json;

fn settings(args: &[String]) -> ClientSettings {
    let password = std::fs::read_to_string(&args[4])
        .expect("password file")
        .trim()
        .to_owned();
    ClientSettings {
        host: args[1].clone(),
        port: args[2].parse().expect("port"),
        password,
        tls: Some(TlsTrust {
            ca: PathBuf::from(&args[3]),
            server_name: args[1].clone(),
        }),
        connect_timeout: Duration::from_secs(30),
        chunk: DEFAULT_CHUNK,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn jobs(args: Vec<String>) {
    let capture = PathBuf::from(&args[5]);
    let n: usize = args[6].parse().expect("N");
    let c: usize = args[7].parse().expect("C");
    let base = settings(&args);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (settings, capture, next) = (base.clone(), capture.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(settings).await.expect("connect");
            let mut latencies = Vec::new();
            let mut failed = 0usize;
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                let t0 = Instant::now();
                let answer = client
                    .submit_files(
                        std::slice::from_ref(&capture),
                        None,
                        Default::default(),
                        &mut |_, _| {},
                    )
                    .await
                    .expect("submit");
                let id = answer["job_id"].as_str().expect("job_id").to_owned();
                loop {
                    let job = client
                        .call("wait", json!({ "job_id": id, "timeout": 30 }))
                        .await
                        .expect("wait");
                    match job["state"].as_str() {
                        Some("done") => break,
                        Some("failed" | "timed_out" | "cancelled") => {
                            failed += 1;
                            break;
                        }
                        _ => {}
                    }
                }
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.expect("client task");
        all.extend(l);
        failed += f;
    }
    let wall = start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        json!({
            "jobs": all.len(), "clients": c, "failed": failed, "wall_s": wall,
            "jobs_per_s": all.len() as f64 / wall,
            "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0), "max_ms": all.last().copied().unwrap_or(0.0),
        })
    );
}

async fn submits(args: Vec<String>) {
    let capture = PathBuf::from(&args[5]);
    let n: usize = args[6].parse().expect("N");
    let c: usize = args[7].parse().expect("C");
    let base = settings(&args);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (settings, capture, next) = (base.clone(), capture.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(settings).await.expect("connect");
            let mut latencies = Vec::new();
            let mut deduplicated = 0usize;
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                let t0 = Instant::now();
                let answer = client
                    .submit_files(
                        std::slice::from_ref(&capture),
                        None,
                        Default::default(),
                        &mut |_, _| {},
                    )
                    .await
                    .expect("submit");
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                deduplicated += usize::from(answer["deduplicated"] == json!(true));
            }
            (latencies, deduplicated)
        }));
    }
    let mut all = Vec::new();
    let mut deduplicated = 0;
    for t in tasks {
        let (l, d) = t.await.expect("client task");
        all.extend(l);
        deduplicated += d;
    }
    let wall = start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        json!({
            "submits": all.len(), "clients": c, "deduplicated": deduplicated, "wall_s": wall,
            "per_s": all.len() as f64 / wall,
            "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0), "max_ms": all.last().copied().unwrap_or(0.0),
        })
    );
}

async fn calls(args: Vec<String>) {
    let n: usize = args[5].parse().expect("N");
    let func = args[6].clone();
    let kwargs: serde_json::Value = serde_json::from_str(&args[7]).expect("KWARGS_JSON");
    let mut client = Client::connect(settings(&args)).await.expect("connect");
    let mut latencies = Vec::with_capacity(n);
    let mut answered = 0usize;
    for _ in 0..n {
        let t0 = Instant::now();
        let answer = client.call(&func, kwargs.clone()).await.expect("call");
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        answered = answer["jobs"].as_array().map_or(1, Vec::len);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        json!({
            "calls": n, "func": func, "answered": answered,
            "p50_ms": percentile(&latencies, 50.0), "p99_ms": percentile(&latencies, 99.0),
            "max_ms": latencies.last().copied().unwrap_or(0.0),
        })
    );
}

async fn idle(args: Vec<String>) {
    let n: usize = args[5].parse().expect("N");
    let hold: u64 = args[6].parse().expect("HOLD_SECS");
    let base = settings(&args);
    let start = Instant::now();
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = Client::connect(base.clone()).await.expect("connect");
        client.call("ping", json!({})).await.expect("ping");
        clients.push(client);
    }
    eprintln!(
        "{n} idle TLS connections open after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    // Tell the script we are ready, then hold.
    println!(
        "{}",
        json!({ "open": clients.len(), "connect_s": start.elapsed().as_secs_f64() })
    );
    tokio::time::sleep(Duration::from_secs(hold)).await;
    // Every connection must still be usable after idling.
    let mut alive = 0;
    for client in &mut clients {
        if client.call("ping", json!({})).await.is_ok() {
            alive += 1;
        }
    }
    println!("{}", json!({ "alive_after_hold": alive }));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.first().map(String::as_str) {
        Some("jobs") if args.len() == 8 => runtime.block_on(jobs(args)),
        Some("idle") if args.len() == 7 => runtime.block_on(idle(args)),
        Some("submits") if args.len() == 8 => runtime.block_on(submits(args)),
        Some("calls") if args.len() == 8 => runtime.block_on(calls(args)),
        _ => {
            eprintln!("usage: loadgen jobs HOST PORT CA PASSWORD_FILE CAPTURE N C\n       loadgen idle HOST PORT CA PASSWORD_FILE N HOLD_SECS\n       loadgen submits HOST PORT CA PASSWORD_FILE CAPTURE N C\n       loadgen calls HOST PORT CA PASSWORD_FILE N FUNC KWARGS_JSON");
            std::process::exit(2);
        }
    }
}
