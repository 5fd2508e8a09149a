//! `contrib/systemd/pcapd.service`, as far as a machine without systemd as PID 1 allows: the
//! daemon runs as an unprivileged user with the unit's environment (`STATE_DIRECTORY`, no
//! `HOME`), takes a job through a worker, drains on SIGTERM, and every system call it and its
//! worker make (recorded by strace) is one the unit's `SystemCallFilter=` lines allow
//! (expanded by `systemd-analyze syscall-filter`). A call outside the filter would kill pcapd
//! with SIGSYS under systemd.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{
    children_of, sample, shared_pcapd, shared_temp_dir, submit, tls_credentials, wait_done,
};
use pcapd::client::{Client, ClientSettings, TlsTrust, DEFAULT_CHUNK};

const HINT: &str = "run tests/setup.sh (the README's test command does)";
/// `nobody`: a user with no rights of its own.
const UNPRIVILEGED: &str = "65534";

fn unit_file() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/pcapd.service"),
    )
    .expect("the unit file")
}

/// The syscalls a `SystemCallFilter=` token names: a group expanded recursively, or a name.
fn expand(token: &str, groups: &mut HashMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    if !token.starts_with('@') {
        return BTreeSet::from([token.to_owned()]);
    }
    if let Some(known) = groups.get(token) {
        return known.clone();
    }
    let out = Command::new("systemd-analyze")
        .args(["syscall-filter", token])
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze: {e}; {HINT}"));
    assert!(
        out.status.success(),
        "systemd-analyze syscall-filter {token}"
    );
    let mut names = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let item = line.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        names.extend(expand(item, groups));
    }
    groups.insert(token.to_owned(), names.clone());
    names
}

/// What the unit's filter lines allow: the allow-lists' union minus the `~` deny-lists.
fn allowed_syscalls(unit: &str) -> BTreeSet<String> {
    let mut groups = HashMap::new();
    let mut allowed = BTreeSet::new();
    let mut denied = BTreeSet::new();
    for line in unit.lines() {
        let Some(value) = line.trim().strip_prefix("SystemCallFilter=") else {
            continue;
        };
        let (deny, list) = match value.strip_prefix('~') {
            Some(list) => (true, list),
            None => (false, value),
        };
        for token in list.split_whitespace() {
            let names = expand(token, &mut groups);
            if deny {
                denied.extend(names);
            } else {
                allowed.extend(names);
            }
        }
    }
    assert!(!allowed.is_empty(), "the unit has SystemCallFilter= lines");
    allowed.difference(&denied).cloned().collect()
}

/// Syscall names in an `strace -f` output file.
fn traced_syscalls(trace: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(trace).expect("strace output");
    let mut names = BTreeSet::new();
    for line in text.lines() {
        // "PID name(args) = …" or "PID <... name resumed>…"; signals and exits start "---"/"+++".
        let rest = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        let rest = rest.strip_prefix("<... ").unwrap_or(rest);
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            names.insert(name);
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unit_runs_pcapd_unprivileged_within_its_syscall_filter() {
    for tool in ["strace", "setpriv", "systemd-analyze"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: {HINT}");
    }
    let allowed = allowed_syscalls(&unit_file());

    // pcapd runs as nobody here: its directory and binary must be reachable by nobody
    // wherever the checkout is.
    let dir = shared_temp_dir("systemd-unit");
    let state = dir.join("state");
    let (creds, tls, password) = tls_credentials(&state);
    let config = dir.join("pcapd.cfg");
    std::fs::write(
        &config,
        format!("[Global]\nport = 0\nbind = 127.0.0.1\npool = 1\n{tls}"),
    )
    .unwrap();
    let trace = dir.join("strace.out");
    // The unit's StateDirectory= belongs to its User=.
    let chown = Command::new("chown")
        .args(["-R", &format!("{UNPRIVILEGED}:{UNPRIVILEGED}")])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(chown.success());
    let mut traced = Command::new("setpriv")
        .args([
            &format!("--reuid={UNPRIVILEGED}"),
            &format!("--regid={UNPRIVILEGED}"),
            "--clear-groups",
            "--",
            "strace",
            "-f",
            "-qq",
            "-o",
        ])
        .arg(&trace)
        .arg(shared_pcapd())
        .args(["serve", "-c"])
        .arg(&config)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("STATE_DIRECTORY", &state)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .expect("setpriv + strace + pcapd");
    let strace_pid = traced.id();
    let stdout = traced.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let stderr = || std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("pcapd did not start as an unprivileged user:\n{}", stderr()));
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut client = Client::connect(ClientSettings {
        host: "127.0.0.1".into(),
        port,
        password,
        tls: Some(TlsTrust {
            ca: creds.cert.clone(),
            server_name: "127.0.0.1".into(),
        }),
        connect_timeout: Duration::from_secs(10),
        chunk: DEFAULT_CHUNK,
    })
    .await
    .expect("connect");
    let id = submit(&mut client, &sample("http.pcap"), None).await;
    let job = wait_done(&mut client, &id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done", "{job}\n{}", stderr());
    drop(client);
    // SIGTERM to pcapd itself (strace's child); strace ends with it.
    let pcapd: Vec<u32> = children_of(strace_pid);
    assert_eq!(pcapd.len(), 1, "strace runs pcapd");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pcapd[0] as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = traced.wait().unwrap();
    assert!(
        status.success(),
        "drained and exited 0: {status:?}\n{}",
        stderr()
    );
    assert!(state.join("jobs").join(&id).join("job.json").exists());

    let used = traced_syscalls(&trace);
    assert!(
        used.contains("setrlimit") || used.contains("prlimit64"),
        "{used:?}"
    );
    let outside: Vec<&String> = used.difference(&allowed).collect();
    assert!(
        outside.is_empty(),
        "pcapd makes system calls the unit's SystemCallFilter kills it for: {outside:?}"
    );
}
