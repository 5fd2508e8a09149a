//! Fills a jobs directory for `bench/store.sh`: DONE finished jobs and QUEUED queued ones,
//! written as records directly (no daemon, no fsync: the script syncs once at the end), in
//! the layout and record format pcapd writes, so the daemon's start-up, `list`, `status` and
//! dedupe run against a store of that size.
//!
//! Finished jobs were created over the last six days (inside the default `keep = 7d`), carry
//! one of 100 tags (`sensor-0` … `sensor-99`) and a capture with a unique hash, except the
//! newest finished job, whose capture hash is DEDUPE_CAPTURE's, with no options: submitting
//! that capture with `[Jobs] dedupe = true` is answered with it. Queued jobs are the newest.
//! Each job directory holds `job.json`, `pcaps/0.pcap` (a few bytes) and an empty `logs/`.
//!
//! Usage: storegen JOBS_DIR DONE QUEUED DEDUPE_CAPTURE
//! Prints one JSON line: jobs written, seconds, and the id of the dedupe target.
//!
//! `storegen probe JOBS_DIR INDEX DEDUPE_CAPTURE N` times the store alone, in process (no
//! daemon, no TLS), with the index at INDEX: the dedupe lookup of DEDUPE_CAPTURE, `list`
//! of 50, and `load` of one record, N times each; prints p50/p99 in ms as one JSON line.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pcapd::jobs::{Indexing, JobFile, JobId, JobRecord, JobStore, ListFilter, LogInfo, Timestamp};
use serde_json::{json, Map};
use sha2::{Digest, Sha256};

const DAY_MS: i64 = 24 * 3600 * 1000;
const TAGS: usize = 100;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A record as pcapd writes it after a job ran (or while it waits, for `queued`).
fn record(n: usize, created_ms: i64, sha256: String, done: bool) -> JobRecord {
    let id = JobId::generate().expect("random id");
    let file = JobFile {
        name: format!("capture-{n}.pcap"),
        stored: "pcaps/0.pcap".into(),
        size: 24,
        sha256,
    };
    let created = Timestamp::from_unix_millis(created_ms);
    let mut record = JobRecord::new_queued(
        id,
        Some(format!("sensor-{}", n % TAGS)),
        Map::new(),
        vec![file],
        created,
    );
    if done {
        let started = Timestamp::from_unix_millis(created_ms + 150);
        let finished = Timestamp::from_unix_millis(created_ms + 2_150);
        record.start(started, 4242).expect("start");
        let logs = ["conn.log", "dns.log", "http.log", "ssl.log", "weird.log"]
            .into_iter()
            .map(|name| LogInfo {
                name: name.into(),
                bytes: 4_096,
                lines: 40,
                rows: 32,
            })
            .collect();
        record
            .finish_done(finished, logs, 1_000, Vec::new())
            .expect("finish");
    }
    record
}

fn write_job(jobs_dir: &Path, record: &JobRecord) {
    let dir = jobs_dir.join(record.job_id.as_str());
    fs::create_dir_all(dir.join("pcaps")).expect("pcaps dir");
    fs::create_dir(dir.join("logs")).expect("logs dir");
    // The classic pcap header: enough for a reader to see a capture without packets.
    let header: [u8; 24] = [
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    fs::write(dir.join("pcaps/0.pcap"), header).expect("capture");
    let text = serde_json::to_vec_pretty(record).expect("serialize");
    fs::write(dir.join("job.json"), text).expect("record");
}

/// p50 and p99 of `n` runs of `f`, in ms.
fn time(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut samples: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((p / 100.0) * (n - 1) as f64).round() as usize];
    (at(50.0), at(99.0))
}

fn probe(args: &[String]) {
    let (jobs_dir, index) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let sha = hex(&Sha256::digest(fs::read(&args[2]).expect("DEDUPE_CAPTURE")));
    let n: usize = args[3].parse().expect("N");
    let opened = Instant::now();
    let store = JobStore::open_for(&jobs_dir, None, Indexing::At(&index)).expect("open");
    let open_ms = opened.elapsed().as_secs_f64() * 1000.0;
    let target = store
        .find_duplicate(std::slice::from_ref(&sha), &Map::new())
        .expect("dedupe")
        .expect("the dedupe target is in the store");
    let dedupe = time(n, || {
        store
            .find_duplicate(std::slice::from_ref(&sha), &Map::new())
            .expect("dedupe");
    });
    let fifty = ListFilter {
        limit: Some(50),
        ..ListFilter::default()
    };
    let list = time(n, || {
        assert_eq!(store.list(&fifty).expect("list").len(), 50);
    });
    let load = time(n, || {
        store.load(&target.job_id).expect("load");
    });
    println!(
        "{}",
        json!({
            "open_ms": open_ms,
            "dedupe_p50_ms": dedupe.0, "dedupe_p99_ms": dedupe.1,
            "list50_p50_ms": list.0, "list50_p99_ms": list.1,
            "load_p50_ms": load.0, "load_p99_ms": load.1,
        })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("probe") && args.len() == 5 {
        return probe(&args[1..]);
    }
    if args.len() != 4 {
        eprintln!("usage: storegen JOBS_DIR DONE QUEUED DEDUPE_CAPTURE\n       storegen probe JOBS_DIR INDEX DEDUPE_CAPTURE N");
        std::process::exit(2);
    }
    let jobs_dir = PathBuf::from(&args[0]);
    let done: usize = args[1].parse().expect("DONE");
    let queued: usize = args[2].parse().expect("QUEUED");
    let dedupe_sha = hex(&Sha256::digest(fs::read(&args[3]).expect("DEDUPE_CAPTURE")));
    fs::create_dir_all(&jobs_dir).expect("jobs dir");
    let now = Timestamp::now().unix_millis();
    let start = Instant::now();

    // Finished jobs spread evenly over the last six days, oldest first; queued ones after.
    let first = now - 6 * DAY_MS;
    let step = (6 * DAY_MS - 60_000) / done.max(1) as i64;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let total = done + queued;
    let mut dedupe_target = None;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (jobs_dir, dedupe_sha) = (&jobs_dir, &dedupe_sha);
                scope.spawn(move || {
                    let mut target = None;
                    for n in (t..total).step_by(threads) {
                        let is_done = n < done;
                        let created = if is_done {
                            first + n as i64 * step
                        } else {
                            now - 30_000 + (n - done) as i64
                        };
                        let sha = if n + 1 == done {
                            dedupe_sha.clone()
                        } else {
                            hex(&Sha256::digest(n.to_le_bytes()))
                        };
                        let record = record(n, created, sha, is_done);
                        write_job(jobs_dir, &record);
                        if n + 1 == done {
                            target = Some(record.job_id.to_string());
                        }
                    }
                    target
                })
            })
            .collect();
        for handle in handles {
            if let Some(id) = handle.join().expect("writer thread") {
                dedupe_target = Some(id);
            }
        }
    });
    println!(
        "{}",
        json!({
            "done": done, "queued": queued, "seconds": start.elapsed().as_secs_f64(),
            "dedupe_target": dedupe_target,
        })
    );
}
