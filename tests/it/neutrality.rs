//! Neutrality guard: the analyzer's logs must not change unless a change means them to.
//!
//! Runs `pcapd analyze` on every capture of the Zeek reference corpus
//! (`../shared/zeek-corpus/*/*.pcap*`, beside the project) and on the bundled samples
//! (`share/pcapd/samples/*`), with the variants `bench/same-logs.sh` uses (`-C`, no flag, JSON,
//! `--logs conn`, `--logs conn,weird`), and hashes (SHA-256) every file it writes, with the
//! `#open`/`#close` lines of the logs left out (they hold the time of the run), and what it
//! printed. The digests are compared against `tests/it/neutrality.tsv`.
//!
//! A speed or layout change must leave the table as it is. A change that is meant to change
//! the logs (an accuracy fix) records the table again, so that the commit shows which logs of
//! which captures changed:
//!
//! ```text
//! PCAPD_NEUTRALITY_RECORD=1 cargo test --test it neutrality
//! ```
//!
//! `PCAPD_NEUTRALITY_BIN=/path/to/pcapd` runs another binary instead of the one under test
//! (to record the table with the build before a change, or check an old build against it).
//! A capture added to the corpus is reported, not failed, until it is recorded; a recorded
//! capture that is gone fails (record again after a corpus update).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::harness::{temp_dir, PCAPD};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TABLE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/neutrality.tsv");

/// The flag sets every capture is analyzed with (as in `bench/same-logs.sh`).
const VARIANTS: [&str; 5] = [
    "-C",
    "",
    "-C --json-logs",
    "-C --logs conn",
    "--logs conn,weird",
];

/// One digest: (capture, variant, output file) → SHA-256 hex. The capture is named relative
/// to the source it came from (`zeek-corpus/<case>/<file>`, `samples/<file>`); the output
/// file is a path under the output directory, or `(printed)` for stdout and stderr with the
/// exit status.
type Key = (String, String, String);

const PRINTED: &str = "(printed)";

/// The captures, each as (name in the table, path).
fn captures() -> Vec<(String, PathBuf)> {
    let corpus = Path::new(ROOT).join("../shared/zeek-corpus");
    assert!(
        corpus.join("compare.py").is_file(),
        "the Zeek reference corpus is missing: expected {} (clone the project with shared/ beside it)",
        corpus.display()
    );
    let mut found = Vec::new();
    for case in sorted_entries(&corpus).into_iter().filter(|p| p.is_dir()) {
        let case_name = file_name(&case);
        for file in sorted_entries(&case) {
            if is_capture(&file) {
                found.push((
                    format!("zeek-corpus/{case_name}/{}", file_name(&file)),
                    file,
                ));
            }
        }
    }
    let samples = Path::new(ROOT).join("share/pcapd/samples");
    for file in sorted_entries(&samples) {
        if is_capture(&file) {
            found.push((format!("samples/{}", file_name(&file)), file));
        }
    }
    found
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a listed entry has a name")
        .to_string_lossy()
        .into_owned()
}

fn is_capture(path: &Path) -> bool {
    path.is_file()
        && matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng")
        )
}

/// The binary to run: the one under test unless `PCAPD_NEUTRALITY_BIN` names another.
fn binary() -> PathBuf {
    std::env::var_os("PCAPD_NEUTRALITY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(PCAPD))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// A log's bytes without its `#open`/`#close` lines (the only part that depends on when the
/// analyzer ran); other files as they are.
fn comparable_bytes(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if path.extension().and_then(|e| e.to_str()) != Some("log") {
        return bytes;
    }
    let mut kept = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !(line.starts_with(b"#open\t") || line.starts_with(b"#close\t")) {
            kept.extend_from_slice(line);
        }
    }
    kept
}

/// Every file under `dir`, as paths relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in sorted_entries(&d) {
            if entry.is_dir() {
                pending.push(entry);
            } else {
                files.push(entry.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// Runs one (capture, variant) into `out` and adds its digests to `digests`.
fn run_one(
    bin: &Path,
    name: &str,
    capture: &Path,
    variant: &str,
    out: &Path,
    digests: &mut BTreeMap<Key, String>,
) {
    let _ = std::fs::remove_dir_all(out);
    let output = Command::new(bin)
        .arg("analyze")
        .args(variant.split_whitespace())
        .arg("-o")
        .arg(out)
        .arg(capture)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    // What it printed, with the paths of this run replaced, and how it ended.
    let mut printed = format!("exit {:?}\n", output.status.code()).into_bytes();
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream)
            .replace(&out.display().to_string(), "OUT")
            .replace(&capture.display().to_string(), "CAPTURE");
        printed.extend_from_slice(text.as_bytes());
        printed.push(0);
    }
    let key = |file: String| (name.to_string(), variant.to_string(), file);
    digests.insert(key(PRINTED.to_string()), sha256_hex(&printed));
    if out.is_dir() {
        for file in files_under(out) {
            let digest = sha256_hex(&comparable_bytes(&out.join(&file)));
            digests.insert(key(file.to_string_lossy().into_owned()), digest);
        }
    }
}

/// Table lines: `capture<TAB>variant<TAB>file<TAB>sha256`; the variant `-` is no flag.
fn read_table() -> BTreeMap<Key, String> {
    let text = std::fs::read_to_string(TABLE_FILE)
        .unwrap_or_else(|e| panic!("cannot read {TABLE_FILE}: {e}"));
    parse_table(&text)
}

fn parse_table(text: &str) -> BTreeMap<Key, String> {
    let mut table = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            cols.len() == 4 && cols[3].len() == 64,
            "{TABLE_FILE}:{}: bad line {line:?}",
            n + 1
        );
        let variant = if cols[1] == "-" { "" } else { cols[1] };
        table.insert(
            (
                cols[0].to_string(),
                variant.to_string(),
                cols[2].to_string(),
            ),
            cols[3].to_string(),
        );
    }
    table
}

fn format_table(digests: &BTreeMap<Key, String>) -> String {
    let mut text = String::from(
        "# Digests of the analyzer's output per capture, flags and file (tests/it/neutrality.rs):\n\
         # SHA-256 of each log without its #open/#close lines; (printed) is stdout, stderr and\n\
         # the exit status. Written by `PCAPD_NEUTRALITY_RECORD=1 cargo test --test it neutrality`.\n",
    );
    for ((capture, variant, file), digest) in digests {
        let variant = if variant.is_empty() { "-" } else { variant };
        let _ = writeln!(text, "{capture}\t{variant}\t{file}\t{digest}");
    }
    text
}

/// What differs between the recorded table and this run, for the captures the table knows;
/// plus the captures of this run the table does not know yet.
fn differences(
    recorded: &BTreeMap<Key, String>,
    actual: &BTreeMap<Key, String>,
) -> (Vec<String>, Vec<String>) {
    let recorded_captures: std::collections::BTreeSet<&String> =
        recorded.keys().map(|(c, _, _)| c).collect();
    let actual_captures: std::collections::BTreeSet<&String> =
        actual.keys().map(|(c, _, _)| c).collect();
    let mut problems = Vec::new();
    for capture in recorded_captures.difference(&actual_captures) {
        problems.push(format!(
            "{capture}: recorded but not found (corpus changed? record again)"
        ));
    }
    let flags = |variant: &str| {
        if variant.is_empty() {
            "no flag".to_string()
        } else {
            variant.to_string()
        }
    };
    for (key @ (capture, variant, file), digest) in recorded {
        if !actual_captures.contains(capture) {
            continue;
        }
        let variant = flags(variant);
        match actual.get(key) {
            None => problems.push(format!("{capture} [{variant}] {file}: no longer written")),
            Some(now) if now != digest => {
                problems.push(format!("{capture} [{variant}] {file}: different"))
            }
            Some(_) => {}
        }
    }
    for key @ (capture, variant, file) in actual.keys() {
        if recorded_captures.contains(capture) && !recorded.contains_key(key) {
            problems.push(format!(
                "{capture} [{variant}] {file}: written, not recorded"
            ));
        }
    }
    let unrecorded = actual_captures
        .difference(&recorded_captures)
        .map(|c| c.to_string())
        .collect();
    (problems, unrecorded)
}

#[test]
fn analyzer_logs_are_unchanged() {
    let bin = binary();
    let work = temp_dir("neutrality");
    let mut actual = BTreeMap::new();
    let all = captures();
    assert!(all.len() > 5, "too few captures found: {all:?}");
    for (name, capture) in &all {
        for variant in VARIANTS {
            run_one(&bin, name, capture, variant, &work.join("out"), &mut actual);
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    if std::env::var_os("PCAPD_NEUTRALITY_RECORD").is_some() {
        if Path::new(TABLE_FILE).is_file() {
            let (changed, _) = differences(&read_table(), &actual);
            for line in &changed {
                println!("recording over: {line}");
            }
        }
        std::fs::write(TABLE_FILE, format_table(&actual))
            .unwrap_or_else(|e| panic!("writing {TABLE_FILE}: {e}"));
        println!(
            "recorded {} digests of {} captures in {TABLE_FILE} (binary {})",
            actual.len(),
            all.len(),
            bin.display()
        );
        return;
    }
    let (problems, unrecorded) = differences(&read_table(), &actual);
    if !unrecorded.is_empty() {
        println!(
            "not yet recorded (reported, not checked; record with PCAPD_NEUTRALITY_RECORD=1): {}",
            unrecorded.join(", ")
        );
    }
    assert!(
        problems.is_empty(),
        "the analyzer's output changed against {TABLE_FILE} ({} differences; \
         bench/same-logs.sh shows the lines):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn table_round_trips_and_differences_are_found() {
    let digest = |c: char| c.to_string().repeat(64);
    let mut recorded = BTreeMap::new();
    for (capture, variant, file, d) in [
        ("samples/dns.pcap", "", "conn.log", 'a'),
        ("samples/dns.pcap", "-C", "dns.log", 'b'),
        ("samples/dns.pcap", "-C", PRINTED, 'c'),
        ("samples/gone.pcap", "-C", "conn.log", 'd'),
    ] {
        recorded.insert(
            (capture.to_string(), variant.to_string(), file.to_string()),
            digest(d),
        );
    }
    assert_eq!(parse_table(&format_table(&recorded)), recorded);

    let mut actual = recorded.clone();
    actual.retain(|(c, _, _), _| c != "samples/gone.pcap");
    let key = |c: &str, v: &str, f: &str| (c.to_string(), v.to_string(), f.to_string());
    actual.insert(key("samples/dns.pcap", "-C", "dns.log"), digest('e'));
    actual.insert(key("samples/dns.pcap", "-C", "weird.log"), digest('f'));
    actual.remove(&key("samples/dns.pcap", "", "conn.log"));
    actual.insert(key("samples/new.pcap", "-C", "conn.log"), digest('0'));
    let (problems, unrecorded) = differences(&recorded, &actual);
    assert_eq!(unrecorded, vec!["samples/new.pcap".to_string()]);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("gone.pcap")));
    assert!(problems.iter().any(|p| p.contains("dns.log: different")));
    assert!(problems.iter().any(|p| p.contains("weird.log: written")));
    assert!(problems.iter().any(|p| p.contains("conn.log: no longer")));

    let (none, _) = differences(&recorded, &recorded);
    assert!(none.is_empty());
}

#[test]
fn open_and_close_lines_are_left_out() {
    let dir = temp_dir("neutrality-strip");
    let log = dir.join("conn.log");
    std::fs::write(
        &log,
        "#separator \\x09\n#open\t2026-01-01\nrow\n#close\t2026-01-02\n",
    )
    .unwrap();
    assert_eq!(comparable_bytes(&log), b"#separator \\x09\nrow\n");
    let other = dir.join("extract-1.bin");
    std::fs::write(&other, "#open\tkept\n").unwrap();
    assert_eq!(comparable_bytes(&other), b"#open\tkept\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a log says must not depend on which other logs are kept: `--logs` lets the analyzer
/// skip work (MIME bodies without files.log, analyzers whose logs nobody keeps), never change
/// a line. For every capture, each log of the full run is compared with the same log written
/// alone (`-C --logs NAME`).
#[test]
fn a_log_does_not_depend_on_the_others_kept() {
    let bin = binary();
    let work = temp_dir("neutrality-alone");
    let mut problems = Vec::new();
    let mut compared = 0;
    for (name, capture) in captures() {
        let mut full = BTreeMap::new();
        run_one(&bin, &name, &capture, "-C", &work.join("full"), &mut full);
        let logs: Vec<String> = full
            .keys()
            .filter_map(|(_, _, file)| file.strip_suffix(".log").map(str::to_string))
            .filter(|log| !log.contains('/'))
            .collect();
        for log in logs {
            let variant = format!("-C --logs {log}");
            let mut alone = BTreeMap::new();
            run_one(
                &bin,
                &name,
                &capture,
                &variant,
                &work.join("alone"),
                &mut alone,
            );
            let file = format!("{log}.log");
            let full_digest = full.get(&(name.clone(), "-C".to_string(), file.clone()));
            let alone_digest = alone.get(&(name.clone(), variant.clone(), file.clone()));
            compared += 1;
            if full_digest != alone_digest {
                problems.push(format!(
                    "{name}: {file} differs when it is the only log kept"
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(compared > 50, "too few logs compared: {compared}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
