//! Pool tests with real child processes that are really killed.
//!
//! The children are a small python3 script speaking the worker protocol, with faults chosen
//! by job options (die by SIGKILL, hang with a grandchild, garbage, over-long line, half a
//! line, wrong job id) or by its start mode (exit 78 until a marker file exists, never ready).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::*;
use crate::config::WorkerConfig;
use crate::jobs::JobId;

const FAKE_WORKER: &str = r#"
import json, os, signal, subprocess, sys, time
mode = sys.argv[1]
if mode == "marker" and not os.path.exists(sys.argv[2]):
    sys.stderr.write("marker missing, cannot start\n")
    sys.exit(78)
if mode == "noready":
    time.sleep(60)
def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
say({"ready": {"version": "test", "analyzer": "fake"}})
for line in sys.stdin:
    req = json.loads(line)
    job, out, opts = req["job"], req["out"], req.get("options") or {}
    os.makedirs(out, exist_ok=True)
    fault = opts.get("fault")
    say({"job": job, "progress": {"bytes": 1, "total": 2}})
    if fault == "die" or (fault == "die_once" and not os.path.exists(os.path.join(out, "died"))):
        open(os.path.join(out, "died"), "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "hang":
        child = subprocess.Popen(["sleep", "60"])
        with open(os.path.join(out, "grandchild.pid"), "w") as f:
            f.write(str(child.pid))
        time.sleep(60)
    if fault == "garbage":
        sys.stdout.write("this is not json\n"); sys.stdout.flush(); time.sleep(60)
    if fault == "long":
        sys.stdout.write("x" * 5000 + "\n"); sys.stdout.flush(); time.sleep(60)
    if fault == "half":
        sys.stdout.write('{"job": "'); sys.stdout.flush(); time.sleep(60)
    if fault == "wrong_id":
        say({"job": "someone-else", "done": {"logs": [], "packets": 0, "bytes": 0}}); time.sleep(60)
    time.sleep(opts.get("sleep", 0))
    open(os.path.join(out, "x.log"), "w").close()
    say({"job": job, "done": {"logs": ["x.log"], "packets": 7, "bytes": 2,
         "warnings": sorted(os.environ.keys()) if fault == "env" else []}})
"#;

fn python() -> PathBuf {
    let system = PathBuf::from("/usr/bin/python3");
    if system.exists() {
        return system;
    }
    let found = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    PathBuf::from(found)
}

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("pcapd-pool-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("worker.py"), FAKE_WORKER).expect("script");
        Fixture { dir }
    }

    fn settings(&self, size: usize, mode_args: &[&str], worker: WorkerConfig) -> PoolSettings {
        let mut args = vec![self.dir.join("worker.py").to_string_lossy().into_owned()];
        args.extend(mode_args.iter().map(|a| a.to_string()));
        PoolSettings {
            size,
            program: python(),
            args,
            worker,
            max_queue: 10,
            dialect: ChildDialect::Worker,
        }
    }

    fn job(&self, id: &str, options: serde_json::Value) -> JobSpec {
        JobSpec {
            job_id: jid(id),
            pcaps: vec![self.dir.join("in.pcap")],
            out: self.dir.join(id),
            options,
            input_bytes: 0,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        timeout: Duration::from_secs(5),
        timeout_per_gb: Duration::ZERO,
        grace: Duration::from_millis(200),
        retries: 0,
        max_jobs: 0,
        recycle_memory: 0,
        memory_limit: 0,
        env: vec![],
        user: None,
        group: None,
        max_restarts: 5,
        restart_window: Duration::from_secs(60),
        max_line: 1024,
        start_timeout: Duration::from_secs(5),
        backoff_max: Duration::from_millis(300),
    }
}

/// A job id that spells `name` (at most 16 bytes), so tests can keep readable names.
fn jid(name: &str) -> JobId {
    assert!(name.len() <= 16, "test job names are at most 16 bytes");
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    let hex = format!("{hex:0<32}");
    let text = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    JobId::parse(&text).expect("a job id")
}

/// The name [`jid`] made `id` from.
fn name_of(id: &JobId) -> String {
    let hex: String = id.as_str().chars().filter(|c| *c != '-').collect();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .take_while(|b| *b != 0)
        .collect();
    String::from_utf8(bytes).expect("a test name")
}

/// Events up to and including the `Finished` of `job_id`.
async fn until_finished(events: &mut UnboundedReceiver<PoolEvent>, job_id: &str) -> Vec<PoolEvent> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .expect("pool still sending");
        let last = matches!(&event, PoolEvent::Finished { job_id: id, .. } if *id == jid(job_id));
        seen.push(event);
        if last {
            return seen;
        }
    }
}

fn outcome(events: &[PoolEvent]) -> JobOutcome {
    match events.last() {
        Some(PoolEvent::Finished { outcome, .. }) => outcome.clone(),
        other => panic!("no Finished event: {other:?}"),
    }
}

fn started_pids(events: &[PoolEvent], job_id: &str) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            PoolEvent::Started {
                job_id: id, pid, ..
            } if *id == jid(job_id) => Some(*pid),
            _ => None,
        })
        .collect()
}

/// Gone, or a zombie: orphaned grandchildren are reaped by init, which in some sandboxes
/// takes its time; a zombie runs nothing.
fn is_gone(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None) == Err(Errno::ESRCH)
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
}

/// `kill(-pgid, 0)` answers ESRCH, or only zombies are left in the group.
fn group_is_gone(pgid: u32) -> bool {
    kill(Pid::from_raw(-(pgid as i32)), None) == Err(Errno::ESRCH)
        || !child::group_has_live_members(pgid)
}

/// Polls `status` until `check` holds (or fails after 5 s).
async fn wait_status(
    pool: &PoolHandle,
    what: &str,
    check: impl Fn(&PoolStatus) -> bool,
) -> PoolStatus {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let status = pool.status().await;
        if check(&status) {
            return status;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn done_with_x_log() -> JobOutcome {
    JobOutcome::Done {
        logs: vec!["x.log".into()],
        packets: 7,
        warnings: vec![],
        files_extracted: 0,
        detect_hits: 0,
    }
}

#[test]
fn deadline_grows_with_input_size() {
    let config = WorkerConfig {
        timeout: Duration::from_secs(10),
        timeout_per_gb: Duration::from_secs(60),
        ..worker_config()
    };
    assert_eq!(slot::job_deadline(&config, 0), Duration::from_secs(10));
    assert_eq!(
        slot::job_deadline(&config, 1 << 30),
        Duration::from_secs(70)
    );
    assert_eq!(
        slot::job_deadline(&config, 3 << 29),
        Duration::from_secs(100)
    );
}

/// One job at a time on a pool of two: the slot idle longest takes each, so the children
/// take turns instead of the first slot taking everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_goes_to_the_slot_idle_longest() {
    let fx = Fixture::new("turns");
    let (pool, mut events) = start(fx.settings(2, &["ok"], worker_config()))
        .await
        .expect("starts");
    wait_status(&pool, "both idle", |s| {
        s.slots.iter().all(|slot| slot.state == SlotState::Idle)
    })
    .await;
    let mut slots = Vec::new();
    for id in ["t1", "t2", "t3", "t4"] {
        pool.submit(fx.job(id, json!({})), Admission::New)
            .expect("accepted");
        for event in until_finished(&mut events, id).await {
            if let PoolEvent::Started { slot, .. } = event {
                slots.push(slot);
            }
        }
        wait_status(&pool, "idle again", |s| {
            s.slots.iter().all(|slot| slot.state == SlotState::Idle)
        })
        .await;
    }
    assert_eq!(slots.len(), 4);
    assert!(
        slots.windows(2).all(|w| w[0] != w[1]),
        "slots took turns: {slots:?}"
    );
    assert!(pool.shutdown(Duration::from_secs(1)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_jobs_in_order_on_one_child() {
    let fx = Fixture::new("fifo");
    let (pool, mut events) = start(fx.settings(1, &["ok"], worker_config()))
        .await
        .expect("starts");
    // The child reports ready on its own time: wait for it rather than assume it.
    let status = wait_status(&pool, "the child ready", |s| {
        s.slots.len() == 1 && s.slots[0].state == SlotState::Idle
    })
    .await;
    let pid = status.slots[0].pid.expect("a child pid");
    for id in ["j1", "j2", "j3"] {
        pool.submit(fx.job(id, json!({})), Admission::New)
            .expect("accepted");
    }
    let mut all = Vec::new();
    all.extend(until_finished(&mut events, "j3").await);
    let finished: Vec<String> = all
        .iter()
        .filter_map(|e| match e {
            PoolEvent::Finished { job_id, outcome } => {
                assert_eq!(outcome, &done_with_x_log());
                Some(name_of(job_id))
            }
            _ => None,
        })
        .collect();
    assert_eq!(finished, ["j1", "j2", "j3"]);
    assert!(all.contains(&PoolEvent::Progress {
        job_id: jid("j2"),
        bytes: 1,
        total: 2
    }));
    assert_eq!(started_pids(&all, "j3"), [pid]);
    let status = wait_status(&pool, "idle again", |s| s.slots[0].state == SlotState::Idle).await;
    assert_eq!(status.slots[0].jobs_done, 3);
    assert_eq!(status.slots[0].restarts, 0);
    assert_eq!(status.accepted, 3);
    assert!(fx.dir.join("j2/x.log").exists());
    assert!(pool.shutdown(Duration::from_secs(1)).await.is_empty());
    assert!(is_gone(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_refused_at_once() {
    let fx = Fixture::new("full");
    let mut settings = fx.settings(1, &["ok"], worker_config());
    settings.max_queue = 1;
    let (pool, mut events) = start(settings).await.expect("starts");
    pool.submit(fx.job("running", json!({"sleep": 0.5})), Admission::New)
        .expect("accepted");
    // Wait until the slot took it, so the queue is empty again.
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert!(
        matches!(first, Ok(Some(PoolEvent::Started { .. }))),
        "{first:?}"
    );
    pool.submit(fx.job("queued", json!({})), Admission::New)
        .expect("accepted");
    assert_eq!(
        pool.submit(fx.job("refused", json!({})), Admission::New),
        Err(Rejected::QueueFull { max: 1 })
    );
    let status = pool.status().await;
    assert_eq!(
        (status.queue_len, status.rejected, status.accepted),
        (1, 1, 2)
    );
    let events = until_finished(&mut events, "queued").await;
    assert_eq!(outcome(&events), done_with_x_log());
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_job_settles_crashed_and_replaces_the_child() {
    let fx = Fixture::new("crash");
    let (pool, mut events) = start(fx.settings(1, &["ok"], worker_config()))
        .await
        .expect("starts");
    pool.submit(fx.job("doomed", json!({"fault": "die"})), Admission::New)
        .expect("accepted");
    let seen = until_finished(&mut events, "doomed").await;
    let old_pid = started_pids(&seen, "doomed")[0];
    match outcome(&seen) {
        JobOutcome::Crashed { exit, message } => {
            assert_eq!(
                exit,
                ChildExit::Killed {
                    signal: libc::SIGKILL
                }
            );
            assert!(message.contains("possibly out of memory"), "{message}");
            assert!(message.contains(jid("doomed").as_str()), "{message}");
        }
        other => panic!("expected Crashed, got {other:?}"),
    }
    pool.submit(fx.job("next", json!({})), Admission::New)
        .expect("accepted");
    let seen = until_finished(&mut events, "next").await;
    assert_eq!(outcome(&seen), done_with_x_log());
    let new_pid = started_pids(&seen, "next")[0];
    assert_ne!(new_pid, old_pid);
    assert!(is_gone(old_pid));
    let status = pool.status().await;
    assert_eq!((status.crashed, status.slots[0].restarts), (1, 1));
    assert!(!status.degraded);
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_job_is_retried_at_the_front_on_a_new_child() {
    let fx = Fixture::new("retry");
    let config = WorkerConfig {
        retries: 1,
        ..worker_config()
    };
    let (pool, mut events) = start(fx.settings(1, &["ok"], config))
        .await
        .expect("starts");
    pool.submit(
        fx.job("flaky", json!({"fault": "die_once"})),
        Admission::New,
    )
    .expect("accepted");
    pool.submit(fx.job("after", json!({})), Admission::New)
        .expect("accepted");
    let seen = until_finished(&mut events, "flaky").await;
    assert_eq!(outcome(&seen), done_with_x_log());
    let pids = started_pids(&seen, "flaky");
    assert_eq!(pids.len(), 2, "{seen:?}");
    assert_ne!(pids[0], pids[1]);
    // The retry went before the job queued after it.
    assert!(started_pids(&seen, "after").is_empty());
    assert_eq!(
        outcome(&until_finished(&mut events, "after").await),
        done_with_x_log()
    );
    assert_eq!(pool.status().await.crashed, 1);
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_whole_process_group() {
    let fx = Fixture::new("timeout");
    let config = WorkerConfig {
        timeout: Duration::from_secs(1),
        ..worker_config()
    };
    let (pool, mut events) = start(fx.settings(1, &["ok"], config))
        .await
        .expect("starts");
    let began = Instant::now();
    pool.submit(fx.job("hung", json!({"fault": "hang"})), Admission::New)
        .expect("accepted");
    let seen = until_finished(&mut events, "hung").await;
    let elapsed = began.elapsed();
    assert_eq!(
        outcome(&seen),
        JobOutcome::TimedOut {
            after: Duration::from_secs(1)
        }
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let pgid = started_pids(&seen, "hung")[0];
    let grandchild: u32 = std::fs::read_to_string(fx.dir.join("hung/grandchild.pid"))
        .expect("grandchild pid written")
        .trim()
        .parse()
        .expect("a pid");
    assert!(group_is_gone(pgid), "group {pgid} still has members");
    assert!(is_gone(grandchild), "grandchild {grandchild} survived");
    let status = wait_status(&pool, "a new idle child", |s| {
        s.slots[0].state == SlotState::Idle && s.slots[0].pid != Some(pgid)
    })
    .await;
    assert_eq!(status.timed_out, 1);
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_dequeues_or_kills_and_replaces() {
    let fx = Fixture::new("cancel");
    let (pool, mut events) = start(fx.settings(1, &["ok"], worker_config()))
        .await
        .expect("starts");
    pool.submit(fx.job("long", json!({"fault": "hang"})), Admission::New)
        .expect("accepted");
    pool.submit(fx.job("waiting", json!({})), Admission::New)
        .expect("accepted");
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    let Ok(Some(PoolEvent::Started { pid, .. })) = first else {
        panic!("expected Started, got {first:?}");
    };
    assert_eq!(pool.cancel(&jid("waiting")).await, CancelOutcome::Dequeued);
    assert_eq!(pool.cancel(&jid("nobody")).await, CancelOutcome::Unknown);
    // Let the hang fault spawn its grandchild before cancelling.
    let pid_file = fx.dir.join("long/grandchild.pid");
    let until = Instant::now() + Duration::from_secs(5);
    while !pid_file.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.cancel(&jid("long")).await, CancelOutcome::Killed);
    assert!(group_is_gone(pid));
    let mut finished = Vec::new();
    while finished.len() < 2 {
        if let Some(PoolEvent::Finished { job_id, outcome }) = events.recv().await {
            finished.push((name_of(&job_id), outcome));
        }
    }
    finished.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        finished,
        [
            ("long".to_string(), JobOutcome::Cancelled),
            ("waiting".to_string(), JobOutcome::Cancelled)
        ]
    );
    let status = wait_status(&pool, "replacement", |s| {
        s.slots[0].state == SlotState::Idle && s.slots[0].pid.is_some_and(|p| p != pid)
    })
    .await;
    assert!(!status.degraded);
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_breaches_kill_and_replace_the_child() {
    let fx = Fixture::new("breach");
    let (pool, mut events) = start(fx.settings(1, &["ok"], worker_config()))
        .await
        .expect("starts");
    let cases = [
        ("garbage", "not a worker message"),
        ("long", "longer than max_line (1024 bytes)"),
        (
            "half",
            "wrote half a line (9 bytes: {\\\"job\\\": \\\") and stalled for 200ms",
        ),
        (
            "wrong_id",
            "answered for job \"someone-else\" while running job \"wrong_id\"",
        ),
    ];
    let mut pids = Vec::new();
    for (fault, expected) in cases {
        pool.submit(fx.job(fault, json!({"fault": fault})), Admission::New)
            .expect("accepted");
        let seen = until_finished(&mut events, fault).await;
        let pid = started_pids(&seen, fault)[0];
        match outcome(&seen) {
            JobOutcome::ProtocolError { message } => {
                // Messages name the job by its id.
                let quoted = format!("{fault:?}");
                let expected = expected.replace(&quoted, &format!("{:?}", jid(fault).as_str()));
                assert!(message.contains(&expected), "{fault}: {message}");
                assert!(message.contains(&format!("pid {pid}")), "{message}");
            }
            other => panic!("{fault}: expected ProtocolError, got {other:?}"),
        }
        assert!(group_is_gone(pid));
        pids.push(pid);
    }
    pids.dedup();
    assert_eq!(pids.len(), 4, "every breach replaced the child");
    pool.submit(fx.job("fine", json!({})), Admission::New)
        .expect("accepted");
    assert_eq!(
        outcome(&until_finished(&mut events, "fine").await),
        done_with_x_log()
    );
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_start_degrades_the_pool_until_the_child_starts_again() {
    let fx = Fixture::new("marker");
    let marker = fx.dir.join("marker");
    let marker_arg = marker.to_string_lossy().into_owned();
    let (pool, mut events) = start(fx.settings(1, &["marker", &marker_arg], worker_config()))
        .await
        .expect("starts");
    let status = wait_status(&pool, "backoff", |s| s.degraded).await;
    assert_eq!(status.slots[0].state, SlotState::Backoff);
    // Jobs wait in the queue meanwhile.
    pool.submit(fx.job("patient", json!({})), Admission::New)
        .expect("accepted");
    std::fs::write(&marker, b"").expect("marker");
    let seen = until_finished(&mut events, "patient").await;
    assert_eq!(outcome(&seen), done_with_x_log());
    let status = wait_status(&pool, "recovered", |s| s.slots[0].state == SlotState::Idle).await;
    assert!(!status.degraded);
    assert!(status.slots[0].restarts >= 1);
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_never_says_ready_is_replaced() {
    let fx = Fixture::new("noready");
    let config = WorkerConfig {
        start_timeout: Duration::from_millis(300),
        ..worker_config()
    };
    let began = Instant::now();
    let (pool, _events) = start(fx.settings(1, &["noready"], config))
        .await
        .expect("starts");
    assert!(began.elapsed() < Duration::from_secs(2));
    let first = pool.status().await.slots[0].pid;
    let status = wait_status(&pool, "a second child", |s| {
        s.slots[0].restarts >= 1 && s.slots[0].pid.is_some() && s.slots[0].pid != first
    })
    .await;
    assert_ne!(status.slots[0].state, SlotState::Idle);
    if let Some(pid) = first {
        assert!(group_is_gone(pid));
    }
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_recycled_after_max_jobs_and_see_only_allowed_env() {
    let fx = Fixture::new("recycle");
    std::env::set_var("PCAPD_POOL_TEST_ALLOWED", "1");
    let config = WorkerConfig {
        max_jobs: 2,
        env: vec!["PCAPD_POOL_TEST_ALLOWED".into()],
        ..worker_config()
    };
    let (pool, mut events) = start(fx.settings(1, &["ok"], config))
        .await
        .expect("starts");
    for id in ["a", "b", "c"] {
        pool.submit(fx.job(id, json!({"fault": "env"})), Admission::New)
            .expect("accepted");
    }
    let seen = until_finished(&mut events, "c").await;
    let pids: Vec<u32> = ["a", "b", "c"]
        .iter()
        .map(|id| started_pids(&seen, id)[0])
        .collect();
    assert_eq!(pids[0], pids[1]);
    assert_ne!(pids[1], pids[2]);
    match outcome(&seen) {
        JobOutcome::Done { warnings, .. } => {
            // The script reports its environment's names: the allowed one, PATH, and
            // whatever python3 itself sets (LC_CTYPE under some locales).
            let names: Vec<&str> = warnings
                .iter()
                .map(String::as_str)
                .filter(|n| *n != "LC_CTYPE")
                .collect();
            assert_eq!(names, ["PATH", "PCAPD_POOL_TEST_ALLOWED"]);
        }
        other => panic!("expected Done, got {other:?}"),
    }
    assert!(!pool.status().await.degraded);
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_grows_and_shrinks_the_pool() {
    let fx = Fixture::new("resize");
    let (pool, _events) = start(fx.settings(1, &["ok"], worker_config()))
        .await
        .expect("starts");
    pool.reconfigure(3, worker_config()).await;
    let status = wait_status(&pool, "three idle slots", |s| {
        s.slots.len() == 3 && s.slots.iter().all(|slot| slot.state == SlotState::Idle)
    })
    .await;
    let pids: Vec<u32> = status.slots.iter().filter_map(|s| s.pid).collect();
    assert_eq!(pids.len(), 3);
    pool.reconfigure(1, worker_config()).await;
    let status = wait_status(&pool, "one slot", |s| s.slots.len() == 1).await;
    assert_eq!(status.slots[0].slot, 0);
    assert_eq!(status.slots[0].pid, Some(pids[0]));
    assert!(is_gone(pids[1]) && is_gone(pids[2]));
    let unfinished = pool.shutdown(Duration::from_secs(1)).await;
    assert!(unfinished.is_empty());
    assert!(is_gone(pids[0]));
    assert!(pool.status().await.slots.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_short_jobs_finish_and_returns_the_rest() {
    let fx = Fixture::new("shutdown");
    let (pool, mut events) = start(fx.settings(2, &["ok"], worker_config()))
        .await
        .expect("starts");
    pool.submit(fx.job("quick", json!({"sleep": 0.1})), Admission::New)
        .expect("accepted");
    pool.submit(fx.job("slow", json!({"fault": "hang"})), Admission::New)
        .expect("accepted");
    pool.submit(fx.job("queued", json!({})), Admission::New)
        .expect("accepted");
    let mut pids = Vec::new();
    while pids.len() < 2 {
        if let Some(PoolEvent::Started { pid, .. }) = events.recv().await {
            pids.push(pid);
        }
    }
    let began = Instant::now();
    let unfinished = pool.shutdown(Duration::from_millis(500)).await;
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    let mut unfinished: Vec<String> = unfinished.iter().map(name_of).collect();
    unfinished.sort();
    assert_eq!(unfinished, ["queued", "slow"]);
    assert!(pids.iter().all(|&pid| group_is_gone(pid)));
    let mut finished = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let PoolEvent::Finished { job_id, outcome } = event {
            finished.push((name_of(&job_id), outcome));
        }
    }
    assert_eq!(finished, [("quick".to_string(), done_with_x_log())]);
    assert_eq!(
        pool.submit(fx.job("late", json!({})), Admission::New),
        Err(Rejected::ShuttingDown)
    );
}

#[tokio::test]
async fn missing_program_backs_off_instead_of_spinning() {
    let fx = Fixture::new("missing");
    let mut settings = fx.settings(1, &[], worker_config());
    settings.program = Path::new("/nonexistent/pcapd-worker").to_path_buf();
    let (pool, _events) = start(settings).await.expect("starts");
    let status = pool.status().await;
    assert!(status.degraded);
    assert_eq!(status.slots[0].state, SlotState::Backoff);
    assert_eq!(status.slots[0].pid, None);
    assert!(pool.shutdown(Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let fx = Fixture::new("invalid");
    let settings = fx.settings(0, &["ok"], worker_config());
    assert!(matches!(start(settings).await, Err(PoolError::EmptyPool)));
}
