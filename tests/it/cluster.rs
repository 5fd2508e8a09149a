//! `[Cluster]`: several real `pcapd serve` daemons on loopback sharing one `jobs_dir` and one
//! job queue on a real Debian `redis-server` (AOF, `appendfsync always`), pool 1 each, a
//! command backend that sleeps and writes a log. Scaling, a host SIGKILLed, a host
//! SIGSTOPped past `claim_after`, Redis stopped and restarted, and a job that kills its worker
//! every time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{free_port, temp_dir, write_file, DaemonSpec, TestDaemon};

const CLAIM_AFTER: &str = "2s";
const HEARTBEAT: &str = "500ms";

/// A redis-server of the test's own, on a free loopback port, with AOF.
pub struct Redis {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

fn redis_server() -> &'static str {
    for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("redis-server is missing: run tests/setup.sh (it installs Debian's redis-server)")
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        let dir = dir.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis {
            dir,
            port: free_port(),
            child: None,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_server())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM by pid (redis writes its AOF and exits), waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A job's analyzer: `SLEEP` seconds from the capture's first line, then a one-row log;
/// a capture starting `CRSH` kills its worker (the `pcapd worker` above it) instead.
const ANALYZER: &str = r#"#!/bin/sh
out="$1"; shift
case "$(head -c 4 "$1")" in
  CRSH) p=$PPID
        while [ "$p" -gt 1 ]; do
          if tr '\0' ' ' < /proc/$p/cmdline | grep -q ' worker'; then kill -9 "$p"; sleep 1; fi
          p=$(awk '{print $4}' /proc/$p/stat)
        done ;;
esac
sleep "$(head -n 1 "$1" | tr -cd '0-9.')"
printf '#fields\tnode\tsleep\n%s\t%s\n' "$(hostname)" "$(head -n 1 "$1")" > "$out/run.log"
"#;

/// `hosts` daemons sharing `jobs_dir` and the queue on `redis`.
struct Hosts {
    daemons: Vec<TestDaemon>,
    captures: PathBuf,
}

impl Hosts {
    fn start(name: &str, redis: &Redis, hosts: usize) -> Hosts {
        let dir = temp_dir(name);
        let jobs = dir.join("shared-jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        let script = write_file(&dir, "analyzer.sh", ANALYZER.as_bytes());
        let daemons = (0..hosts)
            .map(|i| {
                let spec = DaemonSpec {
                    pool: 1,
                    backend: "command",
                    command: Some(format!("sh {} {{out}} {{pcaps}}", script.display())),
                    extra_global: format!("jobs_dir = {}\n", jobs.display()),
                    extra_worker: "retries = 0\n".into(),
                    extra_sections: format!(
                        "[Cluster]\nredis = {}\nnode = {name}-host{i}\nclaim_after = {CLAIM_AFTER}\nheartbeat = {HEARTBEAT}\nmax_deliveries = 3\n",
                        redis.url()
                    ),
                    ..DaemonSpec::default()
                };
                TestDaemon::start(&format!("{name}-host{i}"), &spec)
            })
            .collect();
        Hosts {
            daemons,
            captures: dir,
        }
    }

    fn capture(&self, body: &str) -> PathBuf {
        let name = format!(
            "c-{}.pcap",
            body.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        write_file(&self.captures, &name, body.as_bytes())
    }

    async fn submit(&self, host: usize, body: &str) -> String {
        let mut client = self.daemons[host].client().await;
        crate::harness::submit(&mut client, &self.capture(body), None).await
    }

    async fn status(&self, host: usize, job_id: &str) -> Value {
        let mut client = self.daemons[host].client().await;
        client
            .call("status", json!({ "job_id": job_id }))
            .await
            .expect("status")
    }

    /// Waits until every job is terminal, asking host `via` (any host answers for any job).
    async fn all_terminal(&self, via: usize, jobs: &[String], limit: Duration) -> Vec<Value> {
        let began = Instant::now();
        loop {
            let mut records = Vec::new();
            for id in jobs {
                records.push(self.status(via, id).await);
            }
            let open: Vec<&Value> = records
                .iter()
                .filter(|r| {
                    !matches!(
                        r["state"].as_str(),
                        Some("done" | "failed" | "timed_out" | "cancelled")
                    )
                })
                .collect();
            if open.is_empty() {
                return records;
            }
            assert!(
                began.elapsed() < limit,
                "{} jobs not terminal after {limit:?}: {:?}",
                open.len(),
                open.iter()
                    .map(|r| (&r["job_id"], &r["state"], &r["cluster"]))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn done_count(record: &Value) -> usize {
    record["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "done")
        .count()
}

fn owner(record: &Value) -> String {
    record["cluster"]["owner"].as_str().unwrap_or("").to_owned()
}

fn host_index(hosts: &Hosts, node: &str) -> usize {
    (0..hosts.daemons.len())
        .find(|i| node.ends_with(&format!("-host{i}")))
        .unwrap_or_else(|| panic!("no host named {node}"))
}

async fn wait_owner(hosts: &Hosts, job_id: &str, running: bool) -> Value {
    let began = Instant::now();
    loop {
        let record = hosts.status(0, job_id).await;
        if !owner(&record).is_empty() && (!running || record["state"] == "running") {
            return record;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "never owned: {record}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throughput_scales_with_hosts() {
    const JOBS: usize = 18;
    let redis = Redis::start(&temp_dir("cluster-scale"));
    let mut rates = Vec::new();
    for count in 1..=3 {
        let hosts = Hosts::start(&format!("scale{count}"), &redis, count);
        let began = Instant::now();
        let mut jobs = Vec::new();
        for i in 0..JOBS {
            jobs.push(hosts.submit(i % count, &format!("0.5\njob {i}")).await);
        }
        let records = hosts.all_terminal(0, &jobs, Duration::from_secs(60)).await;
        let took = began.elapsed().as_secs_f64();
        for record in &records {
            assert_eq!(record["state"], "done", "{record}");
            assert_eq!(done_count(record), 1);
        }
        let rate = JOBS as f64 / took;
        eprintln!("{count} host(s): {JOBS} jobs in {took:.2} s, {rate:.2} jobs/s");
        rates.push(rate);
    }
    let speedup = rates[2] / rates[0];
    eprintln!("speed-up at 3 hosts: {speedup:.2}x");
    assert!(
        speedup >= 2.7,
        "3 hosts ran {speedup:.2}x as fast as 1 (target 2.7x)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_killed_mid_job_loses_nothing_and_its_job_is_taken_over() {
    let redis = Redis::start(&temp_dir("cluster-kill"));
    let mut hosts = Hosts::start("kill", &redis, 3);
    // Two long jobs: two hosts busy, one idle to take over.
    let long = hosts.submit(0, "4\nlong").await;
    let other = hosts.submit(1, "4\nother").await;
    let record = wait_owner(&hosts, &long, true).await;
    let victim = host_index(&hosts, &owner(&record));
    let killed_at = Instant::now();
    hosts.daemons[victim].signal(nix::sys::signal::Signal::SIGKILL);
    hosts.daemons[victim].wait_exit(Duration::from_secs(10));
    let via = (victim + 1) % 3;
    // More work while the dead host's job waits for its claim.
    let mut jobs = vec![long.clone(), other.clone()];
    for i in 0..4 {
        jobs.push(hosts.submit(via, &format!("0.2\nqueued {i}")).await);
    }
    // Taken over within claim_after + heartbeat (+ the time to see it).
    let began = Instant::now();
    let taken = loop {
        let record = hosts.status(via, &long).await;
        if !owner(&record).ends_with(&format!("-host{victim}")) {
            break killed_at.elapsed();
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "never taken over: {record}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("the killed host's job was taken over {taken:?} after the SIGKILL");
    assert!(
        taken <= Duration::from_millis(2000 + 500 + 1500),
        "took {taken:?}"
    );
    let records = hosts
        .all_terminal(via, &jobs, Duration::from_secs(60))
        .await;
    for record in &records {
        assert_eq!(record["state"], "done", "{record}");
        assert_eq!(done_count(record), 1, "done once: {record}");
    }
    let long_record = records
        .iter()
        .find(|r| r["job_id"] == long.as_str())
        .unwrap();
    let states: Vec<&str> = long_record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"interrupted"), "{states:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_host_s_late_result_is_discarded() {
    let redis = Redis::start(&temp_dir("cluster-stop"));
    let hosts = Hosts::start("stop", &redis, 2);
    let job = hosts.submit(0, "1.5\nstopped").await;
    let record = wait_owner(&hosts, &job, true).await;
    let stopped = host_index(&hosts, &owner(&record));
    let live = 1 - stopped;
    hosts.daemons[stopped].signal(nix::sys::signal::Signal::SIGSTOP);
    // Its worker finishes while it is stopped; the live host takes the job over and runs it.
    let began = Instant::now();
    let record = loop {
        let record = hosts.status(live, &job).await;
        if record["state"] == "done" {
            break record;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "never taken over: {record}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        owner(&record).ends_with(&format!("-host{live}")),
        "{record}"
    );
    hosts.daemons[stopped].signal(nix::sys::signal::Signal::SIGCONT);
    // The woken host reads its worker's answer and must discard it.
    let until = Instant::now() + Duration::from_secs(10);
    while !hosts.daemons[stopped]
        .stderr()
        .contains("result is discarded")
    {
        assert!(
            Instant::now() < until,
            "the late result was not discarded:\n{}",
            hosts.daemons[stopped].stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let record = hosts.status(live, &job).await;
    assert_eq!(done_count(&record), 1, "{record}");
    assert!(
        owner(&record).ends_with(&format!("-host{live}")),
        "{record}"
    );
    assert_eq!(record["cluster"]["epoch"], 2, "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_for_20_s_and_restarted_loses_nothing() {
    let mut redis = Redis::start(&temp_dir("cluster-redis"));
    let hosts = Hosts::start("redis", &redis, 2);
    let mut jobs = Vec::new();
    for i in 0..4 {
        jobs.push(hosts.submit(i % 2, &format!("0.5\nbefore {i}")).await);
    }
    redis.stop();
    // Submissions are still answered: durable, published once Redis is back.
    for i in 0..4 {
        jobs.push(hosts.submit(i % 2, &format!("0.2\nduring {i}")).await);
    }
    let unpublished = hosts.status(0, jobs.last().unwrap()).await;
    assert_eq!(unpublished["cluster"]["published"], false, "{unpublished}");
    tokio::time::sleep(Duration::from_secs(20)).await;
    redis.start_again();
    let records = hosts.all_terminal(0, &jobs, Duration::from_secs(60)).await;
    for record in &records {
        assert_eq!(record["state"], "done", "{record}");
        assert_eq!(done_count(record), 1, "{record}");
    }
    // A restart with entries in the stream (AOF keeps them): nothing lost either.
    let mut more = Vec::new();
    for i in 0..6 {
        more.push(hosts.submit(i % 2, &format!("0.3\nafter {i}")).await);
    }
    redis.stop();
    redis.start_again();
    let records = hosts.all_terminal(1, &more, Duration::from_secs(60)).await;
    for record in &records {
        assert_eq!(record["state"], "done", "{record}");
        assert_eq!(done_count(record), 1, "{record}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_kills_its_worker_every_time_is_dead_lettered() {
    let redis = Redis::start(&temp_dir("cluster-poison"));
    let hosts = Hosts::start("poison", &redis, 2);
    let poison = hosts.submit(0, "CRSH poison").await;
    let fine = hosts.submit(1, "0.1\nfine").await;
    let records = hosts
        .all_terminal(0, &[poison.clone(), fine.clone()], Duration::from_secs(60))
        .await;
    let poisoned = &records[0];
    assert_eq!(poisoned["state"], "failed", "{poisoned}");
    let message = poisoned["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("dead-lettered after 3 deliveries"),
        "{message}"
    );
    assert_eq!(records[1]["state"], "done");
    let mut client = hosts.daemons[1].client().await;
    let cluster = client.call("cluster", json!({})).await.unwrap();
    let dead = cluster["queue"]["dead_lettered"].as_array().unwrap();
    assert!(
        dead.iter().any(|d| d["job_id"] == poison.as_str()),
        "{cluster}"
    );
    assert_eq!(
        cluster["queue"]["nodes"].as_object().unwrap().len(),
        2,
        "{cluster}"
    );
}
