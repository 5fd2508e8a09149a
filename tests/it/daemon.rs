//! End-to-end tests of the daemon: real `pcapd serve` over TLS, real workers, real kills.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use pcapd::protocol::frame::{read_reply, write_frame, RawReply};

/// An analyzer for the command backend that behaves according to the capture's first
/// bytes, so tests can make a job hang (with a grandchild), run slowly or fail.
const ANALYZER: &str = r#"#!/bin/sh
out="$1"; shift
case "$(head -c 4 "$1")" in
  HANG) sleep 1000 & sleep 1000 ;;
  SLOW) sleep 2 ;;
  FAIL) echo "cannot parse capture" >&2; exit 2 ;;
esac
cat "$@" | wc -c > "$out/size.log"
"#;

fn command_spec(
    dir_hint: &str,
    extra_global: &str,
    extra_worker: &str,
) -> (DaemonSpec, std::path::PathBuf) {
    let scripts = temp_dir(dir_hint);
    let script = write_file(&scripts, "analyzer.sh", ANALYZER.as_bytes());
    let spec = DaemonSpec {
        backend: "command",
        command: Some(format!("sh {} {{out}} {{pcaps}}", script.display())),
        extra_global: extra_global.into(),
        extra_worker: extra_worker.into(),
        ..DaemonSpec::default()
    };
    (spec, scripts)
}

async fn slot_of(client: &mut pcapd::client::Client, job_id: &str) -> Option<(u64, u32)> {
    let pool = client.call("pool", json!({})).await.unwrap();
    pool["slots"]
        .as_array()?
        .iter()
        .find(|s| s["job"] == job_id)
        .map(|s| {
            (
                s["slot"].as_u64().unwrap(),
                s["pid"].as_u64().unwrap() as u32,
            )
        })
}

async fn wait_running(client: &mut pcapd::client::Client, job_id: &str) -> (u64, u32) {
    let start = Instant::now();
    loop {
        if let Some(found) = slot_of(client, job_id).await {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "job {job_id} never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn builtin_jobs_end_to_end_with_brocapi_fields() {
    let daemon = TestDaemon::start("e2e", &DaemonSpec::default());
    let mut client = daemon.client().await;
    let ping = client.call("ping", json!({})).await.unwrap();
    assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));
    let answer = client
        .submit_files(
            &[sample("http.pcap"), sample("dns.pcap")],
            Some("sensor-1"),
            Default::default(),
            &mut |_, _| {},
        )
        .await
        .unwrap();
    for key in [
        "status", "files", "tag", "job_id", "success", "state", "sha256",
    ] {
        assert!(
            answer.get(key).is_some(),
            "submit answer lacks {key}: {answer}"
        );
    }
    assert_eq!(answer["success"], true);
    assert_eq!(answer["tag"], "sensor-1");
    assert_eq!(answer["files"], json!(["http.pcap", "dns.pcap"]));
    let id = answer["job_id"].as_str().unwrap().to_owned();
    let job = wait_done(&mut client, &id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done", "{job}");
    assert!(job["packets"].as_u64().unwrap() > 0);
    let logs = client.call("logs", json!({ "job_id": id })).await.unwrap();
    let names: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"conn.log"), "{names:?}");
    let conn_log = client
        .call_raw("fetch", json!({ "job_id": id, "log": "conn.log" }))
        .await
        .unwrap();
    let text = String::from_utf8(conn_log).unwrap();
    assert!(text.starts_with("#separator \\x09\n"), "{text}");
    assert!(
        text.contains("\thttp\t") || text.contains("\tdns\t"),
        "{text}"
    );
    // Past the end the fetch is empty; unknown logs and jobs are precise errors.
    let end = client
        .call_raw(
            "fetch",
            json!({ "job_id": id, "log": "conn.log", "offset": text.len() }),
        )
        .await
        .unwrap();
    assert!(end.is_empty());
    let missing = client
        .call(
            "status",
            json!({ "job_id": "00000000-0000-4000-8000-000000000000" }),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("not_found"));
    let bad_log = client
        .call_raw("fetch", json!({ "job_id": id, "log": "../job.json" }))
        .await
        .unwrap_err();
    assert!(bad_log.code().is_some());

    // The CLI path: status/list/fetch through the same config file.
    let out = daemon.cli(&["status", &id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["state"], "done");
    let out = daemon.cli(&["fetch", &id, "conn.log"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), text);

    // A capture that is not one: the error names it as the client did, not where it is kept.
    let garbage = write_file(&daemon.dir, "notes.txt", b"these are not packets at all");
    let id = submit(&mut client, &garbage, None).await;
    let job = wait_done(&mut client, &id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "failed", "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("notes.txt"), "{message}");
    assert!(!message.contains("pcaps/"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_submit_wait_returns_record_and_exit_code() {
    let (spec, scripts) = command_spec("cli-scripts", "", "");
    let daemon = TestDaemon::start("cli", &spec);
    let good = write_file(&scripts, "good.pcap", b"abcdef");
    let out = daemon.cli(&[
        "submit",
        "--wait",
        "--json",
        "--tag",
        "t1",
        good.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["state"], "done");
    assert_eq!(job["logs"][0]["name"], "size.log");
    let bad = write_file(&scripts, "bad.pcap", b"FAIL this");
    let out = daemon.cli(&["submit", "--wait", "--json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "failed job exits 3");
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["state"], "failed");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot parse capture"),
        "{job}"
    );
    // A wait that times out says so and exits 75, not 3; fractions of seconds are fine.
    let slow = write_file(&scripts, "slow.pcap", b"SLOW but fine");
    let out = daemon.cli(&["submit", slow.to_str().unwrap()]);
    let slow_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let out = daemon.cli(&["wait", "--timeout", "0.5", &slow_id]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("still"));
    let out = daemon.cli(&["submit", "--tag", "has space", good.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tag"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_worker_fails_only_its_job_and_is_replaced() {
    let (spec, scripts) = command_spec("kill-scripts", "", "");
    let daemon = TestDaemon::start("kill", &spec);
    let mut client = daemon.client().await;
    let slow = write_file(&scripts, "slow.pcap", b"SLOW capture");
    let victim = submit(&mut client, &slow, None).await;
    let other = submit(&mut client, &slow, None).await;
    let (slot, pid) = wait_running(&mut client, &victim).await;
    wait_running(&mut client, &other).await;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let killed_at = Instant::now();
    let job = wait_done(&mut client, &victim, Duration::from_secs(10)).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["signal"], 9, "{job}");
    // A new child takes the slot within a second.
    let mut replaced = None;
    while killed_at.elapsed() < Duration::from_secs(1) && replaced.is_none() {
        let pool = client.call("pool", json!({})).await.unwrap();
        let s = &pool["slots"][slot as usize];
        if s["pid"].as_u64().is_some_and(|p| p as u32 != pid) && s["state"] == "idle" {
            replaced = Some(s["pid"].as_u64().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(replaced.is_some(), "slot {slot} not refilled within 1 s");
    let other_job = wait_done(&mut client, &other, Duration::from_secs(10)).await;
    assert_eq!(
        other_job["state"], "done",
        "the other job is unaffected: {other_job}"
    );
    let good = write_file(&scripts, "good.pcap", b"fine");
    let next = submit(&mut client, &good, None).await;
    assert_eq!(
        wait_done(&mut client, &next, Duration::from_secs(10)).await["state"],
        "done"
    );
    let pool = client.call("pool", json!({})).await.unwrap();
    assert!(pool["crashed"].as_u64().unwrap() >= 1, "{pool}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_analyzer_times_out_and_its_whole_group_dies() {
    let (spec, scripts) = command_spec("hang-scripts", "", "timeout = 1s\ntimeout_per_gb = 0\n");
    let daemon = TestDaemon::start("hang", &spec);
    let mut client = daemon.client().await;
    let hang = write_file(&scripts, "hang.pcap", b"HANG forever");
    let id = submit(&mut client, &hang, None).await;
    let (_, pid) = wait_running(&mut client, &id).await;
    // The worker is its group's leader: its analyzer and the analyzer's sleep share the group.
    let job = wait_done(&mut client, &id, Duration::from_secs(15)).await;
    assert_eq!(job["state"], "timed_out", "{job}");
    assert!(
        eventually(Duration::from_secs(3), || (!group_alive(pid as i32))
            .then_some(()))
        .await
        .is_some(),
        "process group {pid} survived"
    );
    let good = write_file(&scripts, "good.pcap", b"fine");
    let next = submit(&mut client, &good, None).await;
    let job = wait_done(&mut client, &next, Duration::from_secs(10)).await;
    assert_eq!(job["state"], "done", "slot serves again: {job}");
    let pool = client.call("pool", json!({})).await.unwrap();
    assert_eq!(pool["timed_out"], 1, "{pool}");
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_sigkilled_with_jobs_loses_none() {
    let (spec, scripts) = command_spec("crash-scripts", "", "");
    let spec = DaemonSpec { pool: 1, ..spec };
    let mut daemon = TestDaemon::start("crash", &spec);
    let mut client = daemon.client().await;
    let slow = write_file(&scripts, "slow.pcap", b"SLOW but fine");
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(submit(&mut client, &slow, None).await);
    }
    wait_running(&mut client, &ids[0]).await;
    drop(client);
    daemon.signal(Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(5));
    daemon.spawn();
    let mut client = daemon.client().await;
    for id in &ids {
        let job = wait_done(&mut client, id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "done", "{job}");
    }
    let first = client
        .call("status", json!({ "job_id": ids[0] }))
        .await
        .unwrap();
    let states: Vec<&str> = first["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"interrupted"), "{states:?}");
}

/// `kill -9` of pcapd mid-job: the command's shell and its grandchild die with it (the
/// worker's group goes), and the re-run after the restart writes a log of its own run only.
#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_daemon_takes_its_analyzers_and_reruns_in_a_fresh_log_dir() {
    let (spec, scripts) = script_backend(
        "orphan",
        b"#!/bin/sh\nout=\"$1\"\necho \"start $$\" >> \"$out/x.log\"\nsleep 3 &\nsleep 3\necho \"end $$\" >> \"$out/x.log\"\n",
    );
    let mut daemon = TestDaemon::start("orphans", &spec);
    let mut client = daemon.client().await;
    let capture = write_file(&scripts, "any.pcap", b"not looked at");
    let id = submit(&mut client, &capture, None).await;
    let (_, worker) = wait_running(&mut client, &id).await;
    // Let the shell start its grandchild.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(group_alive(worker as i32), "the job's group runs");
    drop(client);
    daemon.signal(Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(5));
    let gone = eventually(Duration::from_secs(3), || {
        (!group_alive(worker as i32)).then_some(())
    })
    .await;
    assert!(gone.is_some(), "worker group {worker} outlived pcapd");
    daemon.spawn();
    let mut client = daemon.client().await;
    let job = wait_done(&mut client, &id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job}");
    let log = String::from_utf8(
        client
            .call_raw("fetch", json!({ "job_id": id, "log": "x.log" }))
            .await
            .unwrap(),
    )
    .unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "one run's lines only: {log:?}");
    assert!(
        lines[0].starts_with("start ") && lines[1].starts_with("end "),
        "{log:?}"
    );
}

/// `min_free` on a real tmpfs: a job whose logs fill the disk ends `failed` with kind
/// `disk_full` while the disk is still full (its record written from the reserve); uploads
/// are refused with `disk_full` and no job starts below the watermark; both resume by
/// themselves when space returns.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_the_job_refuses_uploads_and_resumes_when_space_returns() {
    let disk = SmallDisk::mount("full-disk", "8m");
    let (spec, scripts) = script_backend(
        "full-disk",
        b"#!/bin/sh\nout=\"$1\"\nsleep 1\nhead -c 1048576 /dev/zero > \"$out/x.log\"\n",
    );
    let spec = DaemonSpec {
        extra_global: format!("jobs_dir = {}\nmin_free = 1M\n", disk.path.display()),
        ..spec
    };
    let daemon = TestDaemon::start("full-disk", &spec);
    let mut client = daemon.client().await;
    let capture = write_file(&scripts, "small.pcap", b"small");
    let first = submit(&mut client, &capture, None).await;
    wait_running(&mut client, &first).await;
    let filler = disk.fill_completely();
    // The job fails writing its log; the disk stays full, and the job still ends: its record
    // is written in the space of the reserve.
    let failed = wait_done(&mut client, &first, Duration::from_secs(15)).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "disk_full", "{failed}");
    assert!(filler.exists());
    assert!(
        daemon.stderr().contains("released the reserve"),
        "{}",
        daemon.stderr()
    );
    // Below min_free: refused at once, nothing stored, and the pool says why it waits.
    let refused = client
        .submit_files(
            std::slice::from_ref(&capture),
            None,
            Default::default(),
            &mut |_, _| {},
        )
        .await
        .expect_err("an upload on a full disk is refused");
    match &refused {
        pcapd::client::ClientError::Server { code, message } => {
            assert_eq!(code, "disk_full", "{message}");
            assert!(message.contains("min_free"), "{message}");
            assert!(
                !message.contains(&*disk.path.to_string_lossy()),
                "{message}"
            );
        }
        other => panic!("expected disk_full, got {other:?}"),
    }
    let mut client = daemon.client().await;
    let pool = client.call("pool", json!({})).await.unwrap();
    assert_eq!(pool["dispatch_paused"], json!(["disk_low"]), "{pool}");
    assert_eq!(pool["disk"]["low"], true, "{pool}");
    assert!(
        daemon.stderr().contains("below min_free"),
        "{}",
        daemon.stderr()
    );
    // Space returns: uploads and dispatch resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    let start = Instant::now();
    let next = loop {
        match client
            .submit_files(
                std::slice::from_ref(&capture),
                None,
                Default::default(),
                &mut |_, _| {},
            )
            .await
        {
            Ok(answer) => break answer["job_id"].as_str().unwrap().to_owned(),
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "still refused: {e}"
                );
                client = daemon.client().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let done = wait_done(&mut client, &next, Duration::from_secs(15)).await;
    assert_eq!(done["state"], "done", "{done}");
    let pool = client.call("pool", json!({})).await.unwrap();
    assert_eq!(pool["dispatch_paused"], json!([]), "{pool}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_requeues() {
    let (spec, scripts) = command_spec("term-scripts", "", "grace = 300ms\n");
    let spec = DaemonSpec { pool: 1, ..spec };
    let mut daemon = TestDaemon::start("term", &spec);
    let mut client = daemon.client().await;
    let slow = write_file(&scripts, "slow.pcap", b"SLOW but fine");
    let a = submit(&mut client, &slow, None).await;
    let b = submit(&mut client, &slow, None).await;
    wait_running(&mut client, &a).await;
    drop(client);
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    // The queued job stays queued on disk; that is no error.
    let log = daemon.stderr();
    assert!(!log.contains(" ERROR "), "{log}");
    let record: Value = serde_json::from_slice(
        &std::fs::read(daemon.dir.join(format!("state/jobs/{b}/job.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["state"], "queued");
    daemon.spawn();
    let mut client = daemon.client().await;
    for id in [&a, &b] {
        assert_eq!(
            wait_done(&mut client, id, Duration::from_secs(30)).await["state"],
            "done"
        );
    }
}

/// A `wait` on a queued job used to hold the drain for the whole `grace` after the running
/// job finished; it is answered as the drain starts.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_answers_waiting_clients_instead_of_sitting_out_grace() {
    let (spec, scripts) = command_spec("term-wait-scripts", "", "grace = 6s\n");
    let spec = DaemonSpec { pool: 1, ..spec };
    let mut daemon = TestDaemon::start("term-wait", &spec);
    let mut client = daemon.client().await;
    let slow = write_file(&scripts, "slow.pcap", b"SLOW but fine");
    let running = submit(&mut client, &slow, None).await;
    let queued = submit(&mut client, &slow, None).await;
    wait_running(&mut client, &running).await;
    let waiter = tokio::spawn(async move {
        client
            .call("wait", json!({ "job_id": queued, "timeout": 60 }))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    // The running job takes up to 2 s; no 6 s grace on top for the waiting client.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let answer = waiter.await.unwrap().expect("the wait is answered");
    assert_eq!(answer["state"], "queued", "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_password_and_pool_size() {
    let (spec, _scripts) = command_spec("hup-scripts", "", "");
    let daemon = TestDaemon::start("hup", &spec);
    let mut client = daemon.client().await;
    assert_eq!(
        client.call("pool", json!({})).await.unwrap()["slots"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let config = std::fs::read_to_string(&daemon.config)
        .unwrap()
        .replace("pool = 2", "pool = 3");
    std::fs::write(&daemon.config, config).unwrap();
    std::fs::write(daemon.dir.join("state/password"), "a-new-password\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    let mut settings = daemon.settings();
    settings.password = "a-new-password".into();
    let reloaded = eventually(Duration::from_secs(5), || {
        let s = settings.clone();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let mut c = pcapd::client::Client::connect(s).await.ok()?;
                c.call("pool", json!({})).await.ok()
            })
        })
        .join()
        .unwrap()
    })
    .await
    .expect("new password accepted after SIGHUP");
    assert!(
        eventually(Duration::from_secs(5), || {
            let s = settings.clone();
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new().unwrap().block_on(async {
                    let mut c = pcapd::client::Client::connect(s).await.ok()?;
                    let pool = c.call("pool", json!({})).await.ok()?;
                    (pool["slots"]
                        .as_array()?
                        .iter()
                        .filter(|s| s["state"] == "idle")
                        .count()
                        == 3)
                        .then_some(())
                })
            })
            .join()
            .unwrap()
        })
        .await
        .is_some(),
        "pool grew to 3: {reloaded}"
    );
    let err = client.call("ping", json!({})).await.unwrap_err();
    assert!(
        matches!(err, pcapd::client::ClientError::Auth),
        "old password refused: {err}"
    );
    assert_eq!(children_of(daemon.pid()).len(), 3);
}

/// Uploads `capture` on a fresh connection and expects the server to refuse it with `code`
/// (the server closes a refused upload, so each attempt needs its own connection).
async fn assert_refused(daemon: &TestDaemon, capture: &std::path::Path, code: &str) {
    let mut client = daemon.client().await;
    let err = client
        .submit_files(
            &[capture.to_owned()],
            None,
            Default::default(),
            &mut |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(code), "{err}");
}

/// A raw TLS connection for byte-level protocol tests.
async fn raw_tls(daemon: &TestDaemon) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    raw_tls_from(daemon, "127.0.0.1").await
}

/// A TLS connection to the daemon from loopback address `source` (127.0.0.0/8 is all
/// loopback), so a test can be a peer other than the other clients.
async fn raw_tls_from(
    daemon: &TestDaemon,
    source: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = pcapd::tls::connector(&daemon.cert).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    let tcp = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], daemon.port)))
        .await
        .unwrap();
    connector
        .connect(pcapd::tls::server_name("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// 20 wrong passwords at once from one address used to be answered within the longest delay
/// (10 s), 20 guesses in 10 s. Now that address's checks take turns: by 11 s at most 5
/// answers (1 + 2 + 4 = 7 s, then 8 s more), while a client from another address gets in.
#[tokio::test(flavor = "multi_thread")]
async fn guesses_from_one_address_take_turns_whatever_the_connections() {
    // The harness's daemons answer after 200 ms; this one after whole seconds.
    let dir = temp_dir("guessing");
    let (creds, tls, password) = tls_credentials(&dir.join("state"));
    let config = format!(
        "[Global]\nport = 0\nbind = 127.0.0.1\npool = 1\n{tls}state_dir = {}\nauth_delay = 1s\n",
        dir.join("state").display()
    );
    let daemon = TestDaemon::launch(dir, &config, password, creds.cert.clone(), Vec::new());
    let start = Instant::now();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut guesses = Vec::new();
    for _ in 0..20 {
        let mut tls = raw_tls_from(&daemon, "127.0.0.2").await;
        let answered = answered.clone();
        guesses.push(tokio::spawn(async move {
            let request = br#"{"password":"guess","func":"ping"}"#;
            write_frame(&mut tls, request).await.unwrap();
            let reply = read_reply(&mut tls, 1024).await;
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            reply
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut client = daemon.client().await;
    let ping = client.call("ping", json!({})).await;
    assert!(ping.is_ok(), "a client from 127.0.0.1 gets in: {ping:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    tokio::time::sleep(Duration::from_secs(11).saturating_sub(start.elapsed())).await;
    let by_11s = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (3..=5).contains(&by_11s),
        "{by_11s} guesses answered within 11 s"
    );
    for guess in guesses {
        guess.abort();
    }
}

/// 100 wrong passwords at once from 127.0.0.2, an address listed in `auth_exempt` (front ends
/// sharing an address, one with an old password): a client with the right password from that
/// same address is served at once, and so is one from 127.0.0.1; every wrong password is still
/// answered `KO` after its delay.
#[tokio::test(flavor = "multi_thread")]
async fn an_exempt_source_s_flood_does_not_lock_out_its_right_password() {
    let dir = temp_dir("auth-exempt");
    let (creds, tls, password) = tls_credentials(&dir.join("state"));
    let config = format!(
        "[Global]\nport = 0\nbind = 127.0.0.1\npool = 1\nmax_connections = 400\n{tls}state_dir = {}\n\
         auth_delay = 1s\nauth_exempt = 127.0.0.2, 10.0.0.0/8\n",
        dir.join("state").display()
    );
    let daemon = TestDaemon::launch(
        dir,
        &config,
        password.clone(),
        creds.cert.clone(),
        Vec::new(),
    );
    let start = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..100 {
        let mut tls = raw_tls_from(&daemon, "127.0.0.2").await;
        flood.push(tokio::spawn(async move {
            let request = br#"{"password":"old password","func":"ping"}"#;
            write_frame(&mut tls, request).await.unwrap();
            let reply = read_reply(&mut tls, 1024).await;
            (reply, start.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = Instant::now();
    let mut same_source = raw_tls_from(&daemon, "127.0.0.2").await;
    let request = json!({"password": password, "func": "ping"}).to_string();
    write_frame(&mut same_source, request.as_bytes())
        .await
        .unwrap();
    let reply = read_reply(&mut same_source, 4096).await;
    assert!(
        matches!(reply, Ok(RawReply::Ok(_))),
        "the right password from the flooding address: {reply:?}"
    );
    assert!(
        served.elapsed() < Duration::from_millis(900),
        "served in {:?}, not after the flood's delays",
        served.elapsed()
    );
    let mut client = daemon.client().await;
    assert!(client.call("ping", json!({})).await.is_ok());
    assert!(served.elapsed() < Duration::from_secs(2));
    for guess in flood {
        let (reply, after) = guess.await.unwrap();
        assert!(matches!(reply, Ok(RawReply::Ko)), "{reply:?}");
        assert!(
            after >= Duration::from_secs(1),
            "a wrong password is still answered late"
        );
    }
}

/// A huge function name or job id is not echoed back whole: every error message a client
/// gets is at most 256 bytes (`protocol::message`).
#[tokio::test(flavor = "multi_thread")]
async fn error_messages_do_not_echo_huge_values() {
    let daemon = TestDaemon::start("echo", &DaemonSpec::default());
    let huge = "x".repeat(500_000);
    for request in [
        json!({"password": daemon.password, "func": huge}),
        json!({"password": daemon.password, "func": "status", "kwargs": {"job_id": huge}}),
        json!({"password": daemon.password, "func": "submit", "kwargs": {"tag": huge, "paths": ["a"]}}),
    ] {
        let mut tls = raw_tls_from(&daemon, "127.0.0.1").await;
        write_frame(&mut tls, request.to_string().as_bytes())
            .await
            .unwrap();
        match read_reply(&mut tls, 1 << 20).await {
            Ok(RawReply::Er(payload)) => {
                let body: Value = serde_json::from_slice(&payload).expect("a JSON error");
                let message = body["message"].as_str().expect("a message");
                assert!(
                    message.len() <= 256,
                    "{} bytes: {}",
                    message.len(),
                    &message[..80]
                );
                assert!(body["error"].is_string(), "{body}");
            }
            other => panic!("expected ER, got {other:?}"),
        }
    }
}

/// Connections that finish the TLS handshake and never send a request used to hold every
/// `max_connections` slot for `idle_timeout`; now at most half of them wait unauthenticated
/// (the oldest pushed out by newer ones) and each for `login_timeout` at most, so a client
/// with the password gets in while the flood goes on.
#[tokio::test(flavor = "multi_thread")]
async fn connections_that_never_log_in_cannot_lock_clients_out() {
    let spec = DaemonSpec {
        extra_global: "max_connections = 64\nlogin_timeout = 2s\n".into(),
        ..DaemonSpec::default()
    };
    let daemon = TestDaemon::start("lockout", &spec);
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(raw_tls(&daemon).await);
    }
    let started = Instant::now();
    let mut client = daemon.client().await;
    assert!(client.call("ping", json!({})).await.is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // More idle connections keep coming; the logged-in client is not pushed out.
    for _ in 0..64 {
        idle.push(raw_tls(&daemon).await);
    }
    assert!(client.call("ping", json!({})).await.is_ok());
    // Every idle connection is closed by login_timeout at the latest.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for mut conn in idle {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(1), conn.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "an idle unauthenticated connection is closed: {read:?}"
        );
    }
    assert!(
        client.call("ping", json!({})).await.is_ok(),
        "logged in: idle_timeout applies"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_clients_get_precise_answers_and_lose_nothing() {
    let (spec, scripts) = command_spec("bad-scripts", "max_queue = 1\nmax_request = 4096\n", "");
    let spec = DaemonSpec { pool: 1, ..spec };
    let daemon = TestDaemon::start("bad", &spec);

    // Wrong password: KO, late.
    let mut settings = daemon.settings();
    settings.password = "wrong".into();
    let mut bad = pcapd::client::Client::connect(settings).await.unwrap();
    let t0 = Instant::now();
    assert!(matches!(
        bad.call("ping", json!({})).await,
        Err(pcapd::client::ClientError::Auth)
    ));
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "answered after {:?}",
        t0.elapsed()
    );
    assert!(
        !daemon.stderr().contains("\"wrong\""),
        "password never logged"
    );

    // Oversized frame: ER before the body is read, then closed.
    let mut raw = raw_tls(&daemon).await;
    raw.write_all(&(1u64 << 40).to_be_bytes()).await.unwrap();
    let RawReply::Er(body) = read_reply(&mut raw, 1 << 20).await.unwrap() else {
        panic!("not ER")
    };
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"],
        "request_too_large"
    );
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "closed after ER");

    // Readiness probe: nothing back.
    let mut raw = raw_tls(&daemon).await;
    raw.write_all(b"RE").await.unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest).await;
    assert!(rest.is_empty());

    // Truncated upload: ER, and no job is created.
    let mut raw = raw_tls(&daemon).await;
    let req = json!({"password": daemon.password, "func": "submit", "kwargs": {"files": [{"name": "x.pcap", "size": 100}]}});
    write_frame(&mut raw, &serde_json::to_vec(&req).unwrap())
        .await
        .unwrap();
    write_frame(&mut raw, &[0u8; 40]).await.unwrap();
    raw.shutdown().await.unwrap();
    let RawReply::Er(body) = read_reply(&mut raw, 1 << 20).await.unwrap() else {
        panic!("not ER")
    };
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"],
        "upload_failed"
    );
    let mut client = daemon.client().await;
    let list = client.call("list", json!({})).await.unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0, "{list}");
    let leftovers: Vec<_> = std::fs::read_dir(daemon.dir.join("state/jobs"))
        .unwrap()
        .flatten()
        .collect();
    assert!(leftovers.is_empty(), "nothing half-written: {leftovers:?}");

    // Queue full: one running, one queued, the third is refused at once.
    let slow = write_file(&scripts, "slow.pcap", b"SLOW");
    let running = submit(&mut client, &slow, None).await;
    wait_running(&mut client, &running).await;
    let queued = submit(&mut client, &slow, None).await;
    assert_refused(&daemon, &slow, "queue_full").await;
    // A refusal while megabytes are still in flight must reach the client intact (the
    // server lingers instead of resetting the connection).
    let mut big = b"SLOW".to_vec();
    big.resize(8 << 20, 0);
    let big = write_file(&scripts, "big.pcap", &big);
    assert_refused(&daemon, &big, "queue_full").await;
    let mut client = daemon.client().await;
    let list = client.call("list", json!({})).await.unwrap();
    assert_eq!(
        list["jobs"].as_array().unwrap().len(),
        2,
        "refused job not stored: {list}"
    );
    let pool = client.call("pool", json!({})).await.unwrap();
    assert!(pool["rejected"].as_u64().unwrap() >= 1, "{pool}");
    for id in [&running, &queued] {
        assert_eq!(
            wait_done(&mut client, id, Duration::from_secs(20)).await["state"],
            "done"
        );
    }

    // Cancel a queued job and a running one.
    let a = submit(&mut client, &slow, None).await;
    wait_running(&mut client, &a).await;
    let b = submit(&mut client, &slow, None).await;
    assert_eq!(
        client.call("cancel", json!({ "job_id": b })).await.unwrap()["state"],
        "cancelled"
    );
    assert_eq!(
        client.call("cancel", json!({ "job_id": a })).await.unwrap()["state"],
        "cancelled"
    );
    // Cancels that worked are not errors (the dequeued job used to log one).
    let log = daemon.stderr();
    assert!(!log.contains("cannot record"), "{log}");
    assert!(!log.contains('\u{1b}'), "no terminal colours in a log file");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_clients_share_a_pool_of_two() {
    let daemon = TestDaemon::start(
        "many",
        &DaemonSpec {
            pool: 2,
            ..DaemonSpec::default()
        },
    );
    let pid = daemon.pid();
    let capture = sample("dns.pcap");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let max_children = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = {
        let (done, max_children) = (done.clone(), max_children.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let n = children_of(pid).len();
                max_children.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut tasks = Vec::new();
    for i in 0..200 {
        let settings = daemon.settings();
        let capture = capture.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = pcapd::client::Client::connect(settings)
                .await
                .expect("connect");
            let id = submit(&mut client, &capture, Some(&format!("client-{i}"))).await;
            wait_done(&mut client, &id, Duration::from_secs(120)).await
        }));
    }
    for task in tasks {
        let job = task.await.unwrap();
        assert_eq!(job["state"], "done", "{job}");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.join().unwrap();
    assert_eq!(
        max_children.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "daemon + 2 workers throughout"
    );
    assert_eq!(children_of(pid).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn spool_paths_are_confined_and_duplicates_return_the_existing_job() {
    let (spec, scripts) = command_spec("spool-scripts", "", "");
    let spool = temp_dir("spool");
    write_file(&spool, "a.pcap", b"spooled capture");
    write_file(&scripts, "outside.pcap", b"not in the spool");
    std::os::unix::fs::symlink(scripts.join("outside.pcap"), spool.join("link.pcap")).unwrap();
    let spec = DaemonSpec {
        extra_global: format!("spool_dir = {}\n", spool.display()),
        extra_sections: "[Jobs]\ndedupe = true\n".into(),
        ..spec
    };
    let daemon = TestDaemon::start("spool", &spec);
    let mut client = daemon.client().await;
    let answer = client
        .call("submit", json!({ "paths": ["a.pcap"], "tag": "spooled" }))
        .await
        .unwrap();
    let id = answer["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_done(&mut client, &id, Duration::from_secs(20)).await["state"],
        "done"
    );
    for escape in [
        "../outside.pcap",
        "link.pcap",
        scripts.join("outside.pcap").to_str().unwrap(),
    ] {
        let err = client
            .call("submit", json!({ "paths": [escape] }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("path_rejected"), "{escape}: {err}");
    }
    // The same bytes uploaded again: the existing job answers, nothing new is stored.
    let again = client
        .submit_files(
            &[spool.join("a.pcap")],
            None,
            Default::default(),
            &mut |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(again["job_id"], id.as_str());
    assert_eq!(again["deduplicated"], true);
    let list = client.call("list", json!({})).await.unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn a_syslog_ca_that_is_not_a_certificate_is_refused_at_start() {
    let dir = temp_dir("bad-ca");
    let creds = pcapd::config::ensure_embedded_credentials(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let config = dir.join("pcapd.cfg");
    std::fs::write(
        &config,
        format!(
            "[Global]\nport = 0\nbind = 127.0.0.1\nsslcert = {}\nsslkey = {}\npassword_file = {}\nstate_dir = {}\n[Syslog]\nhost = 127.0.0.1\nproto = tls\nca = {}\n",
            creds.cert.display(),
            creds.key.display(),
            creds.password_file.display(),
            dir.display(),
            ca.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(PCAPD)
        .args(["serve", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[Syslog] ca") && stderr.contains("ca.pem"),
        "{stderr}"
    );
}

/// Each cause is said once ("Connection refused (os error 111)" used to appear twice).
#[test]
fn client_errors_say_their_cause_once() {
    let out = std::process::Command::new(PCAPD)
        .args([
            "ping",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--password",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
}

/// `--json` errors are JSON on stdout; `analyze --logs` refuses names it does not write;
/// `fetch --json` says it does not apply rather than printing TSV.
#[test]
fn cli_json_errors_and_bad_log_names_are_precise() {
    let run = |args: &[&str]| {
        std::process::Command::new(PCAPD)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "ping",
        "--json",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        "--password",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{answer}"
    );
    let out = run(&[
        "fetch",
        "--json",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        "--password",
        "x",
        "j",
        "conn.log",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json does not apply"));
    let dir = temp_dir("analyze-logs");
    let out = run(&[
        "analyze",
        "-o",
        dir.to_str().unwrap(),
        "--logs",
        "conn,bogus",
        sample("http.pcap").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"bogus\": no such log (valid: conn, dhcp, dns"),
        "{err}"
    );
}

/// The client pins the configured certificate: presenting exactly it is enough, whatever
/// name is dialled (docs/operations.md says so and why); another certificate is refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_pinned_certificate_is_accepted_under_any_name_and_no_other() {
    let daemon = TestDaemon::start("pinning", &DaemonSpec::default());
    let mut settings = daemon.settings();
    if let Some(tls) = settings.tls.as_mut() {
        tls.server_name = "not-the-daemon.example".into();
    }
    let mut client = pcapd::client::Client::connect(settings.clone())
        .await
        .expect("pinned certificate accepted");
    assert!(client.call("ping", json!({})).await.is_ok());
    let other = pcapd::config::ensure_embedded_credentials(&temp_dir("pinning-other")).unwrap();
    if let Some(tls) = settings.tls.as_mut() {
        tls.ca = other.cert;
    }
    let refused = pcapd::client::Client::connect(settings).await;
    assert!(
        matches!(&refused, Err(pcapd::client::ClientError::Handshake { .. })),
        "another certificate is refused: {:?}",
        refused.err()
    );
}
