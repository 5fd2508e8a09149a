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

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pcapd::jobs::{JobFile, JobId, JobRecord, LogInfo, Timestamp};
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        eprintln!("usage: storegen JOBS_DIR DONE QUEUED DEDUPE_CAPTURE");
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
