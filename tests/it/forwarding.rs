//! Syslog forwarding to a real rsyslogd (`rsyslog.rs`), and export to a directory: every
//! line of a job arrives exactly once with the right HOSTNAME, APP-NAME and PRI over UDP, TCP
//! octet-counted, TCP LF and TLS, in RFC 5424 and RFC 3164; a receiver stopped mid-job gets
//! every line once it is back; an unreachable one leaves the job `done` with forwarding
//! `retrying` in its status, resumed after a pcapd SIGKILL and restart.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{sample, script_backend, submit, temp_dir, wait_done, DaemonSpec, TestDaemon};
use crate::rsyslog::{Received, Rsyslog};

/// Logs pcapd does not forward by default (Brocapi's `log_blacklist` and more).
const EXCLUDED: [&str; 5] = [
    "capture_loss",
    "stats",
    "loaded_scripts",
    "packet_filter",
    "reporter",
];

/// The rows a job forwards, by APP-NAME (`bro25_conn`…), read from its logs on disk.
fn expected_rows(daemon: &TestDaemon, job_id: &str) -> HashMap<String, Vec<String>> {
    let logs = daemon.dir.join("state/jobs").join(job_id).join("logs");
    let mut rows = HashMap::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if EXCLUDED.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        rows.insert(format!("bro25_{name}"), lines);
    }
    rows
}

/// What arrived for `hostname`, by APP-NAME, with RFC 3164's space after the TAG removed.
fn arrived(received: &[Received], hostname: &str) -> HashMap<String, Vec<String>> {
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    for message in received.iter().filter(|m| m.hostname == hostname) {
        assert_eq!(message.pri, 29, "daemon.notice: {message:?}");
        let msg = message.msg.strip_prefix(' ').unwrap_or(&message.msg);
        rows.entry(message.app_name.clone())
            .or_default()
            .push(msg.to_owned());
    }
    rows
}

fn total(rows: &HashMap<String, Vec<String>>) -> usize {
    rows.values().map(Vec::len).sum()
}

async fn status(daemon: &TestDaemon, job_id: &str) -> Value {
    let mut client = daemon.client().await;
    client
        .call("status", json!({ "job_id": job_id }))
        .await
        .expect("status")
}

/// Waits until the job's forwarding reaches `state`.
async fn forwarding_reaches(
    daemon: &TestDaemon,
    job_id: &str,
    state: &str,
    limit: Duration,
) -> Value {
    let began = Instant::now();
    loop {
        let job = status(daemon, job_id).await;
        if job["forwarding"]["state"] == state {
            return job;
        }
        assert!(began.elapsed() < limit, "forwarding never {state}: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn syslog_section(
    host_port: u16,
    proto: &str,
    format: &str,
    framing: Option<&str>,
    ca: &Path,
) -> String {
    let mut section = format!(
        "[Syslog]\nhost = 127.0.0.1\nport = {host_port}\nproto = {proto}\nformat = {format}\nprefix = bro25_%s\n"
    );
    if let Some(framing) = framing {
        section.push_str(&format!("framing = {framing}\n"));
    }
    if proto == "tls" {
        section.push_str(&format!("ca = {}\n", ca.display()));
    }
    section
}

#[tokio::test(flavor = "multi_thread")]
async fn every_line_arrives_once_over_each_transport_and_format() {
    let rsyslog = Rsyslog::start(&temp_dir("fwd-rsyslog"));
    let cases = [
        ("udp", rsyslog.udp_port(), "rfc5424", None),
        ("tcp", rsyslog.tcp_port(), "rfc5424", Some("octet-counting")),
        (
            "tcp",
            rsyslog.tcp_port(),
            "rfc3164",
            Some("non-transparent"),
        ),
        (
            "tcp",
            rsyslog.ptcp_port(),
            "rfc5424",
            Some("non-transparent"),
        ),
        ("tls", rsyslog.tls_port(), "rfc5424", None),
        ("tls", rsyslog.tls_port(), "rfc3164", Some("octet-counting")),
    ];
    for (index, (proto, port, format, framing)) in cases.into_iter().enumerate() {
        let tag = format!("case{index}-{proto}-{format}");
        let spec = DaemonSpec {
            pool: 1,
            extra_sections: syslog_section(port, proto, format, framing, rsyslog.ca_path()),
            ..DaemonSpec::default()
        };
        let daemon = TestDaemon::start(&format!("fwd-{index}"), &spec);
        let mut client = daemon.client().await;
        let job_id = submit(&mut client, &sample("mixed.pcapng"), Some(&tag)).await;
        let job = wait_done(&mut client, &job_id, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "done", "{job}");
        let job = forwarding_reaches(&daemon, &job_id, "done", Duration::from_secs(30)).await;
        let expected = expected_rows(&daemon, &job_id);
        let want = total(&expected);
        assert!(want > 20, "the sample gives enough rows: {want}");
        assert_eq!(job["forwarding"]["sent"], want as u64, "{job}");
        assert_eq!(job["forwarding"]["total"], want as u64, "{job}");
        // UDP is not confirmed: give the last datagrams a moment.
        let began = Instant::now();
        let mut got = arrived(&rsyslog.received(), &tag);
        while total(&got) < want && began.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
            got = arrived(&rsyslog.received(), &tag);
        }
        std::thread::sleep(Duration::from_millis(300));
        let got = arrived(&rsyslog.received(), &tag);
        for (app, rows) in &expected {
            let mut want_rows = rows.clone();
            let mut got_rows = got.get(app).cloned().unwrap_or_default();
            want_rows.sort();
            got_rows.sort();
            assert_eq!(got_rows, want_rows, "{proto} {format} {framing:?}: {app}");
        }
        assert_eq!(
            got.keys().filter(|k| !expected.contains_key(*k)).count(),
            0,
            "nothing but the job's logs arrived: {:?}",
            got.keys().collect::<Vec<_>>()
        );
        // Tabs arrive intact: a conn row has the TSV's columns.
        assert!(
            got["bro25_conn"][0].split('\t').count() > 15,
            "{:?}",
            got["bro25_conn"][0]
        );
    }
}

/// A command analyzer writing `rows` rows into `big.log`.
fn big_log_backend(name: &str, rows: u32) -> (DaemonSpec, std::path::PathBuf) {
    let body = format!(
        "awk 'BEGIN {{ print \"#fields\\tid\\tvalue\"; for (i = 1; i <= {rows}; i++) printf \"row-%06d\\tvalue\\t%d\\n\", i, i }}' > \"$1/big.log\"\n"
    );
    script_backend(name, body.as_bytes())
}

fn unique_rows(received: &[Received], tag: &str) -> (usize, usize) {
    let rows: Vec<&str> = received
        .iter()
        .filter(|m| m.hostname == tag && m.app_name == "bro25_big")
        .map(|m| m.msg.as_str())
        .collect();
    let unique: std::collections::HashSet<&str> = rows.iter().copied().collect();
    (unique.len(), rows.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_stopped_mid_job_gets_every_line_once_it_is_back() {
    // Enough rows that forwarding is still going when the first ones are seen, even on a
    // busy machine (40,000 were once all through before the stop below).
    const ROWS: u32 = 150_000;
    let mut rsyslog = Rsyslog::start(&temp_dir("fwd-outage-rsyslog"));
    let (mut spec, _scripts) = big_log_backend("fwd-outage", ROWS);
    spec.extra_sections = syslog_section(
        rsyslog.tcp_port(),
        "tcp",
        "rfc5424",
        Some("octet-counting"),
        rsyslog.ca_path(),
    );
    let daemon = TestDaemon::start("fwd-outage", &spec);
    let mut client = daemon.client().await;
    let tag = "outage";
    let job_id = submit(&mut client, &sample("dns.pcap"), Some(tag)).await;
    let job = wait_done(&mut client, &job_id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done");
    // Stop the receiver in the middle of the job's forwarding: as soon as rows arrive.
    let began = Instant::now();
    while unique_rows(&rsyslog.received(), tag).0 == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "forwarding never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    rsyslog.stop();
    let (during, _) = unique_rows(&rsyslog.received(), tag);
    assert!(
        during < ROWS as usize,
        "stopped too late to test anything ({during} rows)"
    );
    let job = forwarding_reaches(&daemon, &job_id, "retrying", Duration::from_secs(30)).await;
    assert_eq!(
        job["state"], "done",
        "forwarding never changes the job's state"
    );
    assert!(
        job["forwarding"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{job}"
    );
    std::thread::sleep(Duration::from_secs(2));
    rsyslog.start_again();
    let job = forwarding_reaches(&daemon, &job_id, "done", Duration::from_secs(90)).await;
    assert_eq!(job["forwarding"]["sent"], ROWS);
    let (unique, all) = unique_rows(&rsyslog.received(), tag);
    assert_eq!(
        unique, ROWS as usize,
        "every row arrived ({all} messages with repeats)"
    );
    eprintln!("outage: {during} rows before the stop; {all} messages for {ROWS} rows in the end");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_receiver_leaves_the_job_done_and_a_restart_resumes() {
    let mut rsyslog = Rsyslog::start(&temp_dir("fwd-down-rsyslog"));
    rsyslog.stop();
    let (mut spec, _scripts) = big_log_backend("fwd-down", 12_000);
    spec.extra_sections = syslog_section(
        rsyslog.tcp_port(),
        "tcp",
        "rfc3164",
        Some("non-transparent"),
        rsyslog.ca_path(),
    );
    let mut daemon = TestDaemon::start("fwd-down", &spec);
    let mut client = daemon.client().await;
    let job_id = submit(&mut client, &sample("dns.pcap"), Some("down")).await;
    let job = wait_done(&mut client, &job_id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done");
    let job = forwarding_reaches(&daemon, &job_id, "retrying", Duration::from_secs(30)).await;
    let error = job["forwarding"]["error"].as_str().unwrap();
    assert!(error.contains("refused"), "{error}");
    assert_eq!(job["forwarding"]["sent"], 0);
    assert_eq!(job["forwarding"]["total"], 12_000);

    // pcapd dies; the receiver comes back; the next start resumes from the record.
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(10));
    rsyslog.start_again();
    daemon.spawn();
    forwarding_reaches(&daemon, &job_id, "done", Duration::from_secs(60)).await;
    let (unique, _) = unique_rows(&rsyslog.received(), "down");
    assert_eq!(unique, 12_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn done_jobs_appear_in_export_dir_complete() {
    let dir = temp_dir("export");
    let export = dir.join("export");
    for mode in ["copy", "move"] {
        let spec = DaemonSpec {
            pool: 1,
            extra_sections: format!(
                "[Output]\nexport_dir = {}\nexport_mode = {mode}\n",
                export.display()
            ),
            ..DaemonSpec::default()
        };
        let daemon = TestDaemon::start(&format!("export-{mode}"), &spec);
        let mut client = daemon.client().await;
        let tagged = submit(&mut client, &sample("http.pcap"), Some("shipper")).await;
        let untagged = submit(&mut client, &sample("dns.pcap"), None).await;
        for (job_id, group) in [(&tagged, "shipper"), (&untagged, untagged.as_str())] {
            let job = wait_done(&mut client, job_id, Duration::from_secs(60)).await;
            let logs: Vec<String> = job["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["name"].as_str().unwrap().to_owned())
                .collect();
            let began = Instant::now();
            let job = loop {
                let job = status(&daemon, job_id).await;
                if job["export"]["state"] == "done" {
                    break job;
                }
                assert!(
                    began.elapsed() < Duration::from_secs(20),
                    "never exported: {job}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let target = export.join(group).join(job_id);
            assert_eq!(job["export"]["path"], target.display().to_string());
            for name in &logs {
                let exported = std::fs::read(target.join(name)).unwrap();
                let sizes: Vec<u64> = job["logs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|l| l["name"] == name.as_str())
                    .map(|l| l["bytes"].as_u64().unwrap())
                    .collect();
                assert_eq!(exported.len() as u64, sizes[0], "{name} complete");
                let original = daemon
                    .dir
                    .join("state/jobs")
                    .join(job_id)
                    .join("logs")
                    .join(name);
                assert_eq!(original.exists(), mode == "copy", "{mode}: {name}");
            }
        }
        // Nothing half-made is left where a shipper looks.
        let staging = export.join(".pcapd-staging");
        assert!(std::fs::read_dir(&staging).map_or(true, |mut d| d.next().is_none()));
        drop(daemon);
        std::fs::remove_dir_all(&export).unwrap();
    }
}
