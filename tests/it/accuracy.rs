//! Accuracy guard: runs the builtin analyzer over every case of the Zeek reference corpus
//! (`../shared/zeek-corpus`, beside the project), scores the logs with the corpus' own
//! `compare.py`, and fails if any log's field-match rate drops below the floor reached so
//! far. Raise a floor when the analyzer gets better; never lower one to make a change pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pcapd::analyzer::{analyze, AnalyzeOptions, LogFormat};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/zeek-corpus");
const OUT_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/accuracy");

/// Minimum share of fields matched per log (percent), set just below the score reached.
const FLOORS: &[(&str, f64)] = &[
    ("conn.log", 99.5),
    ("dns.log", 99.0),
    ("files.log", 75.0),
    ("http.log", 99.0),
    ("ssl.log", 99.0),
    ("weird.log", 99.0),
];

fn corpus_dir() -> PathBuf {
    let dir = PathBuf::from(CORPUS);
    assert!(
        dir.join("compare.py").is_file(),
        "the Zeek reference corpus is missing: expected {} (clone the project with shared/ beside it)",
        dir.display()
    );
    dir
}

fn case_dirs(corpus: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", corpus.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").is_file() && p.join("expected").is_dir())
        .collect();
    cases.sort();
    cases
}

/// Runs the analyzer for one case into `target/accuracy/<case>/`.
fn run_case(case: &Path) {
    let meta_text = std::fs::read_to_string(case.join("meta.json")).expect("meta.json readable");
    let meta: serde_json::Value = serde_json::from_str(&meta_text).expect("meta.json is JSON");
    let trace = meta["trace"]["file"]
        .as_str()
        .expect("meta.json names the trace file");
    let ignore_checksums = meta["ignore_checksums"].as_bool().unwrap_or(false);
    let name = case.file_name().expect("case dir has a name");
    let out = Path::new(OUT_ROOT).join(name);
    let _ = std::fs::remove_dir_all(&out);
    let opts = AnalyzeOptions {
        ignore_checksums,
        format: LogFormat::Tsv,
        only_logs: None,
    };
    let summary = analyze(&[case.join(trace)], &out, &opts, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("analyzing {}: {e}", case.display()));
    assert!(summary.packets > 0, "{}: no packets read", case.display());
}

/// Parses compare.py's "OVERALL" per-log lines: `   conn.log   rows 80/88 (..), fields 700/880 (..)`.
fn per_log_totals(report: &str) -> BTreeMap<String, (u64, u64)> {
    let mut totals = BTreeMap::new();
    let mut in_overall = false;
    for line in report.lines() {
        if line.starts_with("== OVERALL") {
            in_overall = true;
            continue;
        }
        if !in_overall {
            continue;
        }
        let Some((log, rest)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        let Some(fields) = rest.split("fields ").nth(1) else {
            continue;
        };
        let ratio = fields.split_whitespace().next().unwrap_or("");
        if let Some((matched, total)) = ratio.split_once('/') {
            if let (Ok(m), Ok(t)) = (matched.parse(), total.parse()) {
                totals.insert(log.to_string(), (m, t));
            }
        }
    }
    totals
}

#[test]
fn zeek_corpus_accuracy_does_not_regress() {
    let corpus = corpus_dir();
    let cases = case_dirs(&corpus);
    assert!(!cases.is_empty(), "no cases found in {}", corpus.display());
    for case in &cases {
        run_case(case);
    }
    let output = Command::new("python3")
        .arg(corpus.join("compare.py"))
        .arg("--all")
        .arg(&corpus)
        .arg(OUT_ROOT)
        .output()
        .expect("python3 runs compare.py");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let totals = per_log_totals(&report);
    assert!(
        totals.contains_key("conn.log"),
        "compare.py printed no conn.log total:\n{report}"
    );
    for (log, floor) in FLOORS {
        let (matched, total) = totals.get(*log).copied().unwrap_or((0, 0));
        let pct = if total == 0 {
            0.0
        } else {
            100.0 * matched as f64 / total as f64
        };
        println!("{log}: {matched}/{total} fields = {pct:.1}% (floor {floor}%)");
        assert!(
            pct >= *floor,
            "{log} accuracy fell to {pct:.1}% (floor {floor}%)"
        );
    }
}

#[test]
fn overall_report_lines_are_parsed() {
    let sample = "== OVERALL (2 cases): rows matched 1/2 (50.0%), fields matched 3/4 (75.0%)\n   conn.log   rows 80/88 (90.9%), fields 700/880 (79.5%)\n   dns.log    rows 1/2 (50.0%), fields 5/36 (13.9%)\n   cases fully matching: 0/2\n";
    let t = per_log_totals(sample);
    assert_eq!(t.get("conn.log"), Some(&(700, 880)));
    assert_eq!(t.get("dns.log"), Some(&(5, 36)));
    assert_eq!(t.len(), 2);
}
