//! Detectors on extracted files (BroAPT's model): after a job's analysis, in its worker slot,
//! every file its `files.log` lists as extracted is handed to each `[Detector NAME]` whose
//! MIME globs match its type; each verdict is a row of `detect.log`, in the job's log format.
//!
//! Works with any backend that leaves `files.log` and `extract_files/` (the builtin analyzer
//! with `[Extract]`, Zeek with extraction on). Bounds: one detector at a time (the slot is
//! the concurrency limit), `[Detect] timeout` per file and detector (then its process group
//! is killed: verdict `timeout`), `max_output` bytes of output kept; the job's deadline
//! still holds, since the pool kills the worker and the kernel kills its detector with it.
//!
//! Layout: `files_log` reads files.log, `run` runs one command, this file decides verdicts
//! and writes the log. docs/files.md describes the pipeline for operators.

mod files_log;
mod run;

use std::path::Path;

use crate::analyzer::app::files::{mime_matches, EXTRACT_DIR};
use crate::analyzer::log::{log_row, ConnId, LogSink, Time};
use crate::analyzer::writer::LogWriterSet;
use crate::config::{DetectConfig, DetectorConfig, LogFormat};
use crate::shell::quote as shell_quote;
pub use files_log::{extracted_files, ExtractedFile, FilesLogError};
use run::{Ending, RunResult};

log_row! {
    /// One detect.log line: one detector's verdict on one extracted file.
    pub struct DetectRow<'a> => DETECT_SCHEMA("detect") {
        ts: Time,
        fuid: &'a str,
        id: ConnId<'a>,
        mime_type: Option<&'a str>,
        /// Path under `extract_files/`.
        file: &'a str,
        detector: &'a str,
        /// `clean`, `hit`, `error` or `timeout`.
        verdict: &'a str,
        /// Exit status; unset when the detector was killed or could not start.
        exit: Option<u64>,
        /// The start of what it printed (stdout, then stderr).
        output: Option<&'a str>,
    }
}

/// What detection did for one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectSummary {
    /// Extracted files files.log lists.
    pub files: u64,
    /// Detector runs (files × matching detectors).
    pub runs: u64,
    pub hits: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// `detect.log` when any row was written.
    pub logs: Vec<String>,
}

/// Why detection could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    FilesLog(#[from] FilesLogError),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The verdict of one run under a detector's rules.
fn verdict(detector: &DetectorConfig, result: &RunResult) -> &'static str {
    let printed = !result.stdout.iter().all(u8::is_ascii_whitespace);
    match result.ending {
        Ending::TimedOut => "timeout",
        Ending::Signaled(_) => "error",
        Ending::Exited(code) if Some(code) == detector.hit_exit => "hit",
        Ending::Exited(0) if detector.hit_output && printed => "hit",
        Ending::Exited(0) => "clean",
        Ending::Exited(_) => "error",
    }
}

/// The output column: stdout then stderr, as text, marked when cut.
fn excerpt(result: &RunResult) -> Option<String> {
    let mut text = String::from_utf8_lossy(&result.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&result.stderr).trim().to_string();
    if !err.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&err);
    }
    if result.truncated {
        text.push_str(" [output cut]");
    }
    (!text.is_empty()).then_some(text)
}

/// `command` with its placeholders replaced, shell-quoted.
fn expand(command: &str, file: &str, mime: &str, fuid: &str) -> String {
    command
        .replace("{file}", &shell_quote(file))
        .replace("{mime}", &shell_quote(mime))
        .replace("{fuid}", &shell_quote(fuid))
}

/// Runs the configured detectors on the files extracted into `out` (a job's log directory)
/// and writes `out/detect.log`.
pub fn run_detectors(
    out: &Path,
    format: LogFormat,
    config: &DetectConfig,
) -> Result<DetectSummary, DetectError> {
    // Detectors run in `out` and get absolute paths, whatever the caller's directory.
    let absolute = std::path::absolute(out).map_err(|source| DetectError::Write {
        path: out.display().to_string(),
        source,
    })?;
    let out = absolute.as_path();
    let files = extracted_files(&out.join("files.log"))?;
    let mut summary = DetectSummary {
        files: files.len() as u64,
        ..DetectSummary::default()
    };
    let mut sink = LogWriterSet::to_dir(out, format, None);
    let cap = usize::try_from(config.max_output).unwrap_or(usize::MAX);
    for f in &files {
        let path = out.join(EXTRACT_DIR).join(&f.extracted);
        let path_text = path.to_string_lossy();
        let mime = f.mime_type.as_deref();
        for detector in &config.detectors {
            if !mime_matches(&detector.mime, mime) {
                continue;
            }
            summary.runs += 1;
            let mime_text = mime.unwrap_or("");
            let script = expand(&detector.command, &path_text, mime_text, &f.fuid);
            let env = [
                ("PCAPD_FILE", path_text.as_ref()),
                ("PCAPD_MIME", mime_text),
                ("PCAPD_FUID", f.fuid.as_str()),
            ];
            let (verdict, exit, output) = if !path.is_file() {
                ("error", None, Some(format!("{} is missing", f.extracted)))
            } else {
                match run::run(&script, &env, out, config.timeout, cap) {
                    Ok(result) => {
                        let exit = match result.ending {
                            Ending::Exited(code) => u64::try_from(code).ok(),
                            _ => None,
                        };
                        (verdict(detector, &result), exit, excerpt(&result))
                    }
                    Err(e) => ("error", None, Some(format!("cannot run: {e}"))),
                }
            };
            match verdict {
                "hit" => summary.hits += 1,
                "timeout" => summary.timeouts += 1,
                "error" => summary.errors += 1,
                _ => {}
            }
            sink.write(&DetectRow {
                ts: Time(f.ts),
                fuid: &f.fuid,
                id: ConnId {
                    uid: &f.uid,
                    orig_h: f.orig_h,
                    orig_p: f.orig_p,
                    resp_h: f.resp_h,
                    resp_p: f.resp_p,
                },
                mime_type: mime,
                file: &f.extracted,
                detector: &detector.name,
                verdict,
                exit,
                output: output.as_deref(),
            });
        }
    }
    summary.logs = sink.finish().map_err(|(path, source)| DetectError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(hit_exit: Option<i32>, hit_output: bool) -> DetectorConfig {
        DetectorConfig {
            name: "d".into(),
            mime: vec!["*".into()],
            command: String::new(),
            hit_exit,
            hit_output,
        }
    }

    fn ended(ending: Ending, stdout: &[u8]) -> RunResult {
        RunResult {
            ending,
            stdout: stdout.to_vec(),
            stderr: Vec::new(),
            truncated: false,
        }
    }

    #[test]
    fn verdicts_follow_hit_exit_and_hit_output() {
        let clam = detector(Some(1), false);
        assert_eq!(
            verdict(&clam, &ended(Ending::Exited(1), b"x: FOUND")),
            "hit"
        );
        assert_eq!(verdict(&clam, &ended(Ending::Exited(0), b"x: OK")), "clean");
        assert_eq!(verdict(&clam, &ended(Ending::Exited(2), b"")), "error");
        let yara = detector(None, true);
        assert_eq!(
            verdict(&yara, &ended(Ending::Exited(0), b"rule f\n")),
            "hit"
        );
        assert_eq!(verdict(&yara, &ended(Ending::Exited(0), b"\n")), "clean");
        assert_eq!(
            verdict(&yara, &ended(Ending::Exited(1), b"rule f")),
            "error"
        );
        assert_eq!(verdict(&yara, &ended(Ending::TimedOut, b"")), "timeout");
        assert_eq!(verdict(&yara, &ended(Ending::Signaled(11), b"")), "error");
    }

    #[test]
    fn placeholders_are_shell_quoted() {
        assert_eq!(
            expand("scan {file} --type={mime} #{fuid}", "/x/it's", "a/b", "F1"),
            r"scan '/x/it'\''s' --type='a/b' #'F1'"
        );
    }
}
