//! Running an external analyzer (zeek, a command) for one job, shared by both backends.
//!
//! The program runs in the job's log directory with stdin closed (it must never read the
//! worker's job lines) and stdout sent to the worker's stderr (it must never write into the
//! protocol stream). Its stderr is echoed too, and the last lines are kept for the error
//! message when it fails. It stays in the worker's process group.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{JobFailure, JobInput, JobResult};
use crate::protocol::worker::FailureKind;

/// Stderr lines kept for the failure message, and the length each is cut to.
const STDERR_TAIL_LINES: usize = 10;
const STDERR_TAIL_LINE_MAX: usize = 500;

/// Starts a program with `spawn` in `job.out` and lists the logs it left there. `spawn` is
/// handed the set-up every `Command` it spawns must get (directory, stdio) and returns the
/// child.
pub fn run_in_log_dir(
    what: &str,
    job: &JobInput<'_>,
    spawn: impl FnOnce(&dyn Fn(&mut Command) -> std::io::Result<()>) -> std::io::Result<Child>,
) -> Result<JobResult, JobFailure> {
    let internal = |error: String| JobFailure::new(FailureKind::Internal, error);
    let configure = |command: &mut Command| -> std::io::Result<()> {
        let stdout_to_stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        command
            .current_dir(job.out)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout_to_stderr))
            .stderr(Stdio::piped());
        Ok(())
    };
    let mut child = spawn(&configure)
        .map_err(|e| JobFailure::new(FailureKind::Analyzer, format!("cannot run {what}: {e}")))?;
    let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
    if let Some(stderr) = child.stderr.take() {
        let mut echo = std::io::stderr();
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).into_owned();
            let _ = writeln!(echo, "{what}: {text}");
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(truncate(text, STDERR_TAIL_LINE_MAX));
        }
    }
    let status = child
        .wait()
        .map_err(|e| internal(format!("waiting for {what}: {e}")))?;
    if !status.success() {
        let how = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => "failed".to_string(),
        };
        let mut error = format!("{what} {how}");
        if !tail.is_empty() {
            error.push_str(": ");
            error.push_str(&Vec::from(tail).join(" | "));
        }
        return Err(JobFailure::new(FailureKind::Analyzer, error));
    }
    let logs =
        list_logs(job.out).map_err(|e| internal(format!("listing {}: {e}", job.out.display())))?;
    Ok(JobResult {
        logs,
        packets: 0,
        bytes: input_bytes(job),
        warnings: Vec::new(),
        // Counted from files.log when detectors run (src/detect).
        files_extracted: 0,
    })
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Regular files in `dir`, sorted by name.
pub fn list_logs(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            logs.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    logs.sort();
    Ok(logs)
}

fn input_bytes(job: &JobInput<'_>) -> u64 {
    job.pcaps
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
