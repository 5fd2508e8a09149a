//! Security properties as tests: the password never in a log at any level, TLS below 1.2
//! refused, what pcapd stores not readable by other users, `memory_limit` really limiting an
//! analyzer, and workers started as root with `[Worker] user`/`group` really unprivileged.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use crate::harness::{
    children_of, sample, script_backend, submit, wait_done, write_file, DaemonSpec, TestDaemon,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_password_is_in_no_log_line_even_at_trace_level() {
    let spec = DaemonSpec {
        env: vec![("RUST_LOG".into(), "trace".into())],
        ..DaemonSpec::default()
    };
    let daemon = TestDaemon::start("secret-trace", &spec);
    let mut client = daemon.client().await;
    let id = submit(&mut client, &sample("http.pcap"), None).await;
    wait_done(&mut client, &id, Duration::from_secs(60)).await;
    let mut wrong = daemon.settings();
    wrong.password = format!("{}-almost", daemon.password);
    let mut bad = pcapd::client::Client::connect(wrong).await.unwrap();
    assert!(bad.call("ping", json!({})).await.is_err());
    let log = daemon.stderr();
    assert!(log.lines().count() > 20, "trace logging is on: {log}");
    assert!(
        !log.contains(&daemon.password),
        "the password is in the log"
    );
}

#[test]
fn tls_below_1_2_is_refused() {
    let daemon = TestDaemon::start("tls-old", &DaemonSpec::default());
    let connect = |version: &str| {
        std::process::Command::new("openssl")
            .args(["s_client", version, "-connect"])
            .arg(format!("127.0.0.1:{}", daemon.port))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl (tests/setup.sh installs it)")
    };
    // OpenSSL's default security level refuses TLS 1.1 itself; lower it so the server decides.
    let old = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-connect",
        ])
        .arg(format!("127.0.0.1:{}", daemon.port))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!old.status.success(), "TLS 1.1 accepted");
    assert!(connect("-tls1_2").status.success(), "TLS 1.2 works");
    assert!(connect("-tls1_3").status.success(), "TLS 1.3 works");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_pcapd_stores_is_not_readable_by_other_users() {
    let daemon = TestDaemon::start("modes", &DaemonSpec::default());
    let mut client = daemon.client().await;
    let id = submit(&mut client, &sample("dns.pcap"), None).await;
    assert_eq!(
        wait_done(&mut client, &id, Duration::from_secs(60)).await["state"],
        "done"
    );
    let job = daemon.dir.join("state/jobs").join(&id);
    let mut paths = vec![daemon.dir.join("state/jobs"), job.clone()];
    for sub in ["pcaps", "logs"] {
        paths.push(job.join(sub));
        paths.extend(
            std::fs::read_dir(job.join(sub))
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
    }
    paths.push(job.join("job.json"));
    for path in paths {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "{} is {:o}", path.display(), mode & 0o777);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_stops_an_analyzer_that_allocates_past_it() {
    let (spec, scripts) = script_backend(
        "memlimit",
        b"#!/bin/sh\nout=\"$1\"\npython3 -c 'x = bytearray(400 * 1024 * 1024)' || exit 7\necho fit > \"$out/x.log\"\n",
    );
    let spec = DaemonSpec {
        extra_worker: "memory_limit = 256M\n".into(),
        ..spec
    };
    let daemon = TestDaemon::start("memlimit", &spec);
    let mut client = daemon.client().await;
    let capture = write_file(&scripts, "any.pcap", b"x");
    let id = submit(&mut client, &capture, None).await;
    let job = wait_done(&mut client, &id, Duration::from_secs(60)).await;
    assert_eq!(
        job["state"], "failed",
        "the 400 MiB allocation must fail: {job}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_started_as_root_run_as_the_configured_user() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let spec = DaemonSpec {
        pool: 1,
        extra_worker: "user = nobody\ngroup = nogroup\n".into(),
        foreign_workers: true,
        ..DaemonSpec::default()
    };
    let daemon = TestDaemon::start("worker-user", &spec);
    let workers = children_of(daemon.pid());
    assert_eq!(workers.len(), 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", workers[0])).unwrap();
    let ids = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>())
            .unwrap()
    };
    assert_eq!(ids("Uid:"), ["65534"; 4], "{status}");
    assert!(ids("Gid:").iter().all(|g| *g != "0"), "{status}");
    // And it can still do its work: read the captures, write the logs, and start a re-run
    // afresh (it used to fail: the job directories were root's alone).
    let mut client = daemon.client().await;
    for _ in 0..2 {
        let id = submit(&mut client, &sample("http.pcap"), None).await;
        let job = wait_done(&mut client, &id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "done", "{job}");
        let logs = client.call("logs", json!({ "job_id": id })).await.unwrap();
        assert!(
            logs["logs"].as_array().is_some_and(|l| !l.is_empty()),
            "{logs}"
        );
    }
    let jobs = daemon.dir.join("state/jobs");
    let mode = std::fs::metadata(&jobs).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o007,
        0,
        "still nothing for others: {:o}",
        mode & 0o777
    );
}

/// `recycle_memory`: a worker whose RSS is past it is replaced between jobs (here every
/// worker is, the limit being below any process's RSS), and no job is lost to it.
#[tokio::test(flavor = "multi_thread")]
async fn recycle_memory_replaces_a_grown_worker_between_jobs() {
    let spec = DaemonSpec {
        pool: 1,
        extra_worker: "recycle_memory = 1M\n".into(),
        ..DaemonSpec::default()
    };
    let daemon = TestDaemon::start("recycle", &spec);
    let mut client = daemon.client().await;
    let mut pids = Vec::new();
    for _ in 0..3 {
        let id = submit(&mut client, &sample("dns.pcap"), None).await;
        let job = wait_done(&mut client, &id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "done", "{job}");
        pids.push(job["worker_pid"].as_u64().unwrap());
    }
    pids.dedup();
    assert_eq!(pids.len(), 3, "a new worker for each job: {pids:?}");
    let pool = client.call("pool", json!({})).await.unwrap();
    assert!(
        pool["slots"][0]["restarts"].as_u64().unwrap() >= 2,
        "{pool}"
    );
}

/// Plaintext on the TLS port and 2,000 idle TCP connections that never start TLS: the
/// daemon closes what it cannot use and a real client still gets in, at once.
#[tokio::test(flavor = "multi_thread")]
async fn plaintext_and_two_thousand_idle_connections_do_not_keep_clients_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let spec = DaemonSpec {
        extra_global: "handshake_timeout = 2s\n".into(),
        ..DaemonSpec::default()
    };
    let daemon = TestDaemon::start("idle-2000", &spec);
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", daemon.port))
        .await
        .unwrap();
    let request = br#"{"password":"x","func":"ping"}"#;
    plain
        .write_all(&(request.len() as u64).to_be_bytes())
        .await
        .unwrap();
    plain.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "plaintext on the TLS port is closed, not left hanging"
    );
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", daemon.port))
                .await
                .unwrap(),
        );
    }
    let started = std::time::Instant::now();
    let mut client = daemon.client().await;
    assert!(client.call("ping", json!({})).await.is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    assert!(client.call("ping", json!({})).await.is_ok());
}
