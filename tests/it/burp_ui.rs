//! Burp-UI 1.1.1's own client code (its "parallel" backend, `burpui.misc.backend.parallel`)
//! against the real bui-monitor 1.1.1 and against `pcapd serve` with `backend = burp`, both
//! pool 2, over the same real burp 3.1.4 server: `tests/burp/burpui_compare.py` stands all of
//! it up and compares the answers call by call; this runs it and checks its summary.
//!
//! Needs Debian's burp and the test venv (burp-ui, burp-ui-monitor) that `tests/setup.sh`
//! installs; without them this fails, it never skips.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const HINT: &str = "run tests/setup.sh (the README's test command does)";

/// Longer than the script's own worst case (its burp setup, two cold starts, two collections).
const DEADLINE: Duration = Duration::from_secs(420);

fn test_env() -> PathBuf {
    match std::env::var_os("PCAPD_TEST_ENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-env"),
    }
}

#[test]
fn burp_ui_parallel_backend_gets_the_same_answers_from_pcapd_as_from_bui_monitor() {
    let python = test_env().join("venv/bin/python");
    assert!(python.exists(), "{} is missing: {HINT}", python.display());
    for bin in ["/usr/sbin/burp", "/usr/sbin/burp_ca"] {
        assert!(Path::new(bin).exists(), "{bin} is missing: {HINT}");
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/burp/burpui_compare.py");
    assert!(script.exists(), "{} is missing", script.display());

    let mut child = Command::new(&python)
        .arg(&script)
        .arg("--pcapd")
        .arg(env!("CARGO_BIN_EXE_pcapd"))
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {HINT}", python.display()));
    let pump = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = pump(Box::new(child.stdout.take().unwrap()));
    let err = pump(Box::new(child.stderr.take().unwrap()));

    // The script stops what it started on SIGTERM; SIGKILL only if it does not.
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE && !timed_out {
            timed_out = true;
            // SAFETY: kill(2) with our own child's pid (not yet reaped: try_wait saw it alive).
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        if started.elapsed() > DEADLINE + Duration::from_secs(30) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let report = format!(
        "{} --pcapd {} --json\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        env!("CARGO_BIN_EXE_pcapd")
    );
    assert!(
        !timed_out,
        "burpui_compare.py still running after {DEADLINE:?}\n{report}"
    );

    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v.get("calls").is_some())
        })
        .unwrap_or_else(|| {
            panic!("burpui_compare.py printed no JSON summary ({status})\n{report}")
        });
    assert!(
        status.success(),
        "burpui_compare.py exited with {status}: {summary}\n{report}"
    );
    let calls = summary["calls"].as_u64().unwrap_or(0);
    let equal = summary["equal"].as_u64().unwrap_or(0);
    assert!(
        calls >= 12,
        "only {calls} calls compared: {summary}\n{report}"
    );
    assert_eq!(equal, calls, "answers differ: {summary}\n{report}");
    assert_eq!(
        summary["different"],
        Value::Array(vec![]),
        "{summary}\n{report}"
    );
    assert_eq!(
        summary["failed"],
        Value::Array(vec![]),
        "{summary}\n{report}"
    );
}
