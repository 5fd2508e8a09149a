//! Accuracy guard: runs the builtin analyzer over every case of the Zeek reference corpus
//! (`../shared/zeek-corpus`, beside the project), scores the logs with the corpus' own
//! `compare.py`, and fails if any (case, log) scores fewer matching rows or fields than the
//! floor recorded for it in `tests/it/accuracy-floors.tsv`.
//!
//! The floors are per case so that the guard keeps its meaning when the corpus grows: a new
//! case (a protocol not analysed yet, say) is reported, not failed, until its score is
//! recorded, and no recorded case may get worse. Record after an improvement or a corpus
//! update with `PCAPD_ACCURACY_RECORD=1 cargo test --test it accuracy`; recording refuses to
//! lower a floor, so it cannot be used to make a regression pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pcapd::analyzer::{analyze, AnalyzeOptions, LogFormat};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/zeek-corpus");
const OUT_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/accuracy");

const FLOORS_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/accuracy-floors.tsv");

/// Matched/total rows and fields of one log of one case, as compare.py scores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Score {
    rows: (u64, u64),
    fields: (u64, u64),
}

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
        // Zeek's default scripts extract nothing.
        ..AnalyzeOptions::default()
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

/// Parses compare.py's per-case lines: `== CASE: rows matched …` then, per log,
/// `   conn.log   conn rows matched 4/4, conn fields matched 36/40  […]`.
fn per_case_scores(report: &str) -> BTreeMap<(String, String), Score> {
    let mut scores = BTreeMap::new();
    let mut case = None;
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix("== ") {
            case = rest
                .split_once(':')
                .map(|(name, _)| name.to_string())
                .filter(|name| !name.starts_with("OVERALL"));
            continue;
        }
        let Some(case) = &case else { continue };
        let text = line.trim();
        let Some((log, rest)) = text.split_once(char::is_whitespace) else {
            continue;
        };
        let ratio_after = |word: &str| {
            let ratio = rest.split(word).nth(1)?.split([',', ' ']).next()?;
            let (m, t) = ratio.split_once('/')?;
            Some((m.parse().ok()?, t.parse().ok()?))
        };
        if let (Some(rows), Some(fields)) =
            (ratio_after("rows matched "), ratio_after("fields matched "))
        {
            scores.insert((case.clone(), log.to_string()), Score { rows, fields });
        }
    }
    scores
}

/// The recorded floors: `case<TAB>log<TAB>rows matched<TAB>rows<TAB>fields matched<TAB>fields`.
fn read_floors() -> BTreeMap<(String, String), Score> {
    let text = std::fs::read_to_string(FLOORS_FILE)
        .unwrap_or_else(|e| panic!("cannot read {FLOORS_FILE}: {e}"));
    let mut floors = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| -> u64 {
            cols.get(i)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("{FLOORS_FILE}:{}: bad line {line:?}", n + 1))
        };
        assert_eq!(cols.len(), 6, "{FLOORS_FILE}:{}: bad line {line:?}", n + 1);
        floors.insert(
            (cols[0].to_string(), cols[1].to_string()),
            Score {
                rows: (num(2), num(3)),
                fields: (num(4), num(5)),
            },
        );
    }
    floors
}

fn write_floors(scores: &BTreeMap<(String, String), Score>) {
    let mut text = String::from(
        "# Accuracy floors per corpus case and log (tests/it/accuracy.rs): rows matched, rows,\n\
         # fields matched, fields. Written by `PCAPD_ACCURACY_RECORD=1 cargo test --test it accuracy`.\n",
    );
    for ((case, log), s) in scores {
        text.push_str(&format!(
            "{case}\t{log}\t{}\t{}\t{}\t{}\n",
            s.rows.0, s.rows.1, s.fields.0, s.fields.1
        ));
    }
    std::fs::write(FLOORS_FILE, text).unwrap_or_else(|e| panic!("writing {FLOORS_FILE}: {e}"));
}

/// What is wrong with `actual` against the recorded `floors`: a recorded (case, log) that
/// scores fewer matching rows or fields, or whose totals changed (the case itself changed).
fn regressions(
    floors: &BTreeMap<(String, String), Score>,
    actual: &BTreeMap<(String, String), Score>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, floor) in floors {
        let (case, log) = key;
        let Some(now) = actual.get(key) else {
            problems.push(format!("{case} {log}: no longer scored (case removed?)"));
            continue;
        };
        if now.rows.1 != floor.rows.1 || now.fields.1 != floor.fields.1 {
            problems.push(format!(
                "{case} {log}: the case changed (rows {} → {}, fields {} → {}); record again",
                floor.rows.1, now.rows.1, floor.fields.1, now.fields.1
            ));
        } else if now.rows.0 < floor.rows.0 || now.fields.0 < floor.fields.0 {
            problems.push(format!(
                "{case} {log}: rows {}/{} (floor {}), fields {}/{} (floor {})",
                now.rows.0, now.rows.1, floor.rows.0, now.fields.0, now.fields.1, floor.fields.0
            ));
        }
    }
    problems
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
    let actual = per_case_scores(&report);
    assert!(!actual.is_empty(), "no per-case scores parsed:\n{report}");
    let floors = read_floors();
    let problems = regressions(&floors, &actual);
    let unrecorded: Vec<String> = actual
        .keys()
        .filter(|k| !floors.contains_key(*k))
        .map(|(case, log)| format!("{case} {log}"))
        .collect();
    if std::env::var_os("PCAPD_ACCURACY_RECORD").is_some() {
        assert!(
            problems.is_empty(),
            "not recording over regressions:\n{}",
            problems.join("\n")
        );
        write_floors(&actual);
        println!("recorded {} floors in {FLOORS_FILE}", actual.len());
        return;
    }
    if !unrecorded.is_empty() {
        println!(
            "not yet recorded (reported, not checked; record with PCAPD_ACCURACY_RECORD=1): {}",
            unrecorded.join(", ")
        );
    }
    assert!(
        problems.is_empty(),
        "accuracy regressed against {FLOORS_FILE}:\n{}",
        problems.join("\n")
    );
}

#[test]
fn per_case_lines_are_parsed_and_regressions_found() {
    let sample = "== dhcp-x: rows matched 4/7 (57.1%), fields matched 36/76 (47.4%)\n   conn.log   conn rows matched 4/4, conn fields matched 36/40\n   dhcp.log   dhcp rows matched 0/3, dhcp fields matched 0/36  [ACTUAL LOG MISSING]\n== OVERALL (1 cases): rows matched 4/7 (57.1%), fields matched 36/76 (47.4%)\n   conn.log   rows 4/4 (100.0%), fields 36/40 (90.0%)\n";
    let scores = per_case_scores(sample);
    let key = |log: &str| ("dhcp-x".to_string(), log.to_string());
    assert_eq!(scores.len(), 2);
    assert_eq!(
        scores[&key("conn.log")],
        Score {
            rows: (4, 4),
            fields: (36, 40)
        }
    );
    assert_eq!(scores[&key("dhcp.log")].fields, (0, 36));
    let mut worse = scores.clone();
    worse.get_mut(&key("conn.log")).unwrap().fields.0 = 35;
    assert_eq!(regressions(&scores, &worse).len(), 1);
    assert!(regressions(&scores, &scores).is_empty());
    let mut better = scores.clone();
    better.get_mut(&key("dhcp.log")).unwrap().fields.0 = 10;
    assert!(regressions(&scores, &better).is_empty());
}

#[test]
fn overall_report_lines_are_parsed() {
    let sample = "== OVERALL (2 cases): rows matched 1/2 (50.0%), fields matched 3/4 (75.0%)\n   conn.log   rows 80/88 (90.9%), fields 700/880 (79.5%)\n   dns.log    rows 1/2 (50.0%), fields 5/36 (13.9%)\n   cases fully matching: 0/2\n";
    let t = per_log_totals(sample);
    assert_eq!(t.get("conn.log"), Some(&(700, 880)));
    assert_eq!(t.get("dns.log"), Some(&(5, 36)));
    assert_eq!(t.len(), 2);
}
