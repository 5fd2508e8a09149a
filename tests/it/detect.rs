//! Detectors on extracted files with the real tools: Debian's `yara` (a rule written here)
//! and ClamAV's `clamscan` (an `.hdb` signature of one payload's MD5 written here; nothing is
//! downloaded), over the captures of `files.rs`; then the faults (a detector that hangs,
//! crashes, or floods its output) and the daemon path, where a hung detector must not keep
//! its slot from the next job. tests/setup.sh installs yara and clamav.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use pcapd::config::{DetectConfig, DetectorConfig, ExtractLayout, LogFormat};
use pcapd::detect::run_detectors;
use serde_json::json;

use crate::files::{extract_all, files_log, known_capture, run, sha256_hex, tsv_log, Known};
use crate::harness::{temp_dir, wait_done, DaemonSpec, TestDaemon};

fn require(tool: &str) {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is not installed: run tests/setup.sh");
}

fn detector(name: &str, mime: &[&str], command: String, hit_exit: Option<i32>) -> DetectorConfig {
    DetectorConfig {
        name: name.into(),
        mime: mime.iter().map(|m| m.to_string()).collect(),
        command,
        hit_exit,
        hit_output: hit_exit.is_none(),
    }
}

/// detect.log rows (column → value).
fn detect_log(out: &Path) -> Vec<BTreeMap<String, String>> {
    tsv_log(&out.join("detect.log"))
}

/// The verdict of `detector` on the file carrying `payload`.
fn verdict_on(
    files: &[BTreeMap<String, String>],
    detects: &[BTreeMap<String, String>],
    payload: &Known,
    detector: &str,
) -> Option<String> {
    let fuid = &files
        .iter()
        .find(|r| r["sha256"] == sha256_hex(&payload.body))
        .unwrap_or_else(|| panic!("{} not in files.log", payload.what))["fuid"];
    detects
        .iter()
        .find(|r| &r["fuid"] == fuid && r["detector"] == detector)
        .map(|r| r["verdict"].clone())
}

/// Signatures for the known payloads: ClamAV hashes the executable, YARA looks for a string
/// of the PDF.
fn signatures(dir: &Path, known: &[Known]) -> (PathBuf, PathBuf) {
    let exe = &known.iter().find(|k| k.what == "exe").unwrap().body;
    let md5: String = Md5::digest(exe)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hdb = dir.join("pcapd-test.hdb");
    std::fs::write(&hdb, format!("{md5}:{}:Pcapd.Test.Setup\n", exe.len())).unwrap();
    let rules = dir.join("rules.yar");
    std::fs::write(
        &rules,
        "rule pdf_catalog { strings: $a = \"/Type /Catalog\" condition: $a }\n",
    )
    .unwrap();
    (hdb, rules)
}

#[test]
fn yara_and_clamscan_give_the_expected_verdicts() {
    require("yara");
    require("clamscan");
    let dir = temp_dir("detect-real");
    let (capture, known) = known_capture(&dir, true);
    let out = dir.join("logs");
    run(&capture, &out, extract_all(ExtractLayout::Mime));
    let (hdb, rules) = signatures(&dir, &known);
    let config = DetectConfig {
        detectors: vec![
            detector(
                "clamav",
                &["application/x-dosexec", "application/pdf"],
                format!("clamscan --no-summary -d {} {{file}}", hdb.display()),
                Some(1),
            ),
            detector(
                "yara",
                &["*"],
                format!("yara {} {{file}}", rules.display()),
                None,
            ),
        ],
        ..DetectConfig::default()
    };
    let summary = run_detectors(&out, LogFormat::Tsv, &config).unwrap();
    let files = files_log(&out);
    let detects = detect_log(&out);
    let by = |what: &str| known.iter().find(|k| k.what == what).unwrap();
    // clamav runs on executables and PDFs only; its signature names the first executable.
    assert_eq!(
        verdict_on(&files, &detects, by("exe"), "clamav").as_deref(),
        Some("hit")
    );
    for what in ["pdf", "chunked", "retransmitted", "upload"] {
        assert_eq!(
            verdict_on(&files, &detects, by(what), "clamav").as_deref(),
            Some("clean"),
            "{what}"
        );
    }
    for what in ["text", "gzip"] {
        assert_eq!(
            verdict_on(&files, &detects, by(what), "clamav"),
            None,
            "{what}"
        );
    }
    // yara runs on everything; the rule's string is in the PDF and the uploaded PDF.
    for k in &known {
        let want = if matches!(k.what, "pdf" | "upload") {
            "hit"
        } else {
            "clean"
        };
        assert_eq!(
            verdict_on(&files, &detects, k, "yara").as_deref(),
            Some(want),
            "{}",
            k.what
        );
    }
    assert_eq!(summary.hits, 3);
    assert_eq!(summary.errors + summary.timeouts, 0);
    assert_eq!(summary.runs, detects.len() as u64);
    let clam_hit = detects
        .iter()
        .find(|r| r["detector"] == "clamav" && r["verdict"] == "hit")
        .unwrap();
    assert_eq!(clam_hit["exit"], "1");
    assert!(
        clam_hit["output"].contains("Pcapd.Test.Setup"),
        "{clam_hit:?}"
    );
    assert_eq!(clam_hit["mime_type"], "application/x-dosexec");
    assert_eq!(clam_hit["id.resp_p"], "80");
}

#[test]
fn hangs_crashes_floods_and_missing_files_are_contained() {
    let dir = temp_dir("detect-faults");
    let (capture, _) = known_capture(&dir, false);
    let out = dir.join("logs");
    run(&capture, &out, extract_all(ExtractLayout::Flat));
    let config = DetectConfig {
        timeout: Duration::from_millis(300),
        max_output: 4096,
        detectors: vec![
            detector("hang", &["application/pdf"], "sleep 59.75 & sleep 59.75".into(), Some(1)),
            detector("crash", &["text/*"], "kill -SEGV $$".into(), Some(1)),
            detector("env", &["text/plain"], "test \"$PCAPD_FILE\" = {file} && test \"$PCAPD_MIME\" = {mime} && echo \"$PCAPD_FUID\"".into(), None),
            detector("nothing", &["video/*"], "echo never".into(), None),
        ],
    };
    let start = Instant::now();
    let summary = run_detectors(&out, LogFormat::Tsv, &config).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let detects = detect_log(&out);
    let of = |name: &str| -> Vec<&BTreeMap<String, String>> {
        detects.iter().filter(|r| r["detector"] == name).collect()
    };
    assert_eq!(of("hang").len(), 2);
    assert!(of("hang")
        .iter()
        .all(|r| r["verdict"] == "timeout" && r["exit"] == "-"));
    assert!(of("crash")
        .iter()
        .all(|r| r["verdict"] == "error" && r["exit"] == "-"));
    assert!(of("flood").is_empty());
    // 100 MB of output, in its own run so that the short timeout above does not cut it.
    let flood = DetectConfig {
        timeout: Duration::from_secs(60),
        max_output: 4096,
        detectors: vec![detector(
            "flood",
            &["application/x-dosexec"],
            "head -c 100000000 /dev/zero | tr '\\0' x".into(),
            None,
        )],
    };
    run_detectors(&out, LogFormat::Tsv, &flood).unwrap();
    let floods = detect_log(&out);
    assert_eq!(floods.len(), 2);
    for r in &floods {
        assert_eq!(r["verdict"], "hit");
        assert!(
            r["output"].len() < 4200 && r["output"].ends_with("[output cut]"),
            "{}",
            r["output"].len()
        );
    }
    let env = of("env");
    assert_eq!(env.len(), 2);
    assert!(
        env.iter()
            .all(|r| r["verdict"] == "hit" && r["output"] == r["fuid"]),
        "{env:?}"
    );
    assert!(of("nothing").is_empty());
    assert_eq!(summary.timeouts, 2);
    // Nothing the hung detectors started is left running.
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 59.75"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );

    // A file files.log names but that is gone is an error row, not a failure.
    let gone = files_log(&out)
        .into_iter()
        .find(|r| r["mime_type"] == "application/pdf")
        .unwrap();
    std::fs::remove_file(out.join("extract_files").join(&gone["extracted"])).unwrap();
    let config = DetectConfig {
        detectors: vec![detector("any", &["*"], "true".into(), Some(1))],
        ..DetectConfig::default()
    };
    run_detectors(&out, LogFormat::Json, &config).unwrap();
    let text = std::fs::read_to_string(out.join("detect.log")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let missing = rows
        .iter()
        .find(|r| r["fuid"] == gone["fuid"].as_str())
        .unwrap();
    assert_eq!(missing["verdict"], "error");
    assert!(rows
        .iter()
        .filter(|r| r["fuid"] != gone["fuid"].as_str())
        .all(|r| r["verdict"] == "clean"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_detectors_in_the_slot_and_a_hang_does_not_keep_it() {
    require("yara");
    let dir = temp_dir("detect-daemon-inputs");
    let (capture, known) = known_capture(&dir, false);
    let (_, rules) = signatures(&dir, &known);
    let spec = DaemonSpec {
        pool: 1,
        extra_sections: format!(
            "[Extract]\nmime = *\nlayout = mime\n[Detect]\ntimeout = 500ms\n\
             [Detector yara]\ncommand = yara {} {{file}}\nhit_output = true\n\
             [Detector hang]\nmime = text/plain\ncommand = sleep 60\nhit_exit = 1\n",
            rules.display()
        ),
        ..DaemonSpec::default()
    };
    let daemon = TestDaemon::start("detect-daemon", &spec);
    let mut client = daemon.client().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let answer = client
            .submit_files(
                std::slice::from_ref(&capture),
                None,
                Default::default(),
                &mut |_, _| {},
            )
            .await
            .unwrap();
        ids.push(answer["job_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let job = wait_done(&mut client, id, Duration::from_secs(90)).await;
        assert_eq!(job["state"], "done", "{job}");
        let detect = client
            .call_raw("fetch", json!({ "job_id": id, "log": "detect.log" }))
            .await
            .unwrap();
        let text = String::from_utf8(detect).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        // yara on all six files, the hang on the two text/plain ones.
        assert_eq!(rows.len(), 8, "{text}");
        assert_eq!(
            rows.iter().filter(|l| l.contains("\tyara\thit\t")).count(),
            1,
            "{text}"
        );
        assert_eq!(
            rows.iter()
                .filter(|l| l.contains("\thang\ttimeout\t"))
                .count(),
            2,
            "{text}"
        );
    }
}
