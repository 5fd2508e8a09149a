//! `pcapd worker`: the long-lived pool child.
//!
//! It starts its analyzer backend once (a failure a restart would not fix exits with
//! [`EXIT_CANNOT_START`]), writes `{"ready": …}`, then reads one job line at a time on stdin
//! and answers each with zero or more progress lines and exactly one `done` or `failed` line
//! on stdout (`docs/protocol.md`, "Child protocols"). End of stdin is a clean exit. The protocol core,
//! [`serve`], is generic over its reader and writer so it is tested in-process.

use std::io::{BufRead, Write};

use crate::backend::{Backend, JobFailure, JobInput, JobResult, WorkerSettings};
use crate::exit::{EXIT_CANNOT_START, EXIT_FAILURE};
use crate::protocol::worker::{
    excerpt, Done, Failed, FailureKind, JobRequest, Progress, Ready, WorkerMessage,
};

/// Why [`serve`] stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("job line longer than max_line ({max} bytes)")]
    LineTooLong { max: usize },
    #[error("malformed job line ({reason}): {excerpt}")]
    BadRequest { reason: String, excerpt: String },
    #[error("reading jobs: {0}")]
    Read(std::io::Error),
    #[error("writing answers: {0}")]
    Write(std::io::Error),
}

/// Entry point of `pcapd worker`; returns the process exit code.
pub fn run(settings: WorkerSettings) -> i32 {
    let backend = match Backend::start(&settings) {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("pcapd worker: cannot start: {e}");
            return EXIT_CANNOT_START;
        }
    };
    if let Err(e) = take_the_group_down_with_the_daemon() {
        eprintln!("pcapd worker: cannot arrange to stop with pcapd: {e}");
        return EXIT_CANNOT_START;
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match serve(&backend, &settings, stdin, stdout) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pcapd worker: {e}");
            EXIT_FAILURE
        }
    }
}

/// Makes the death of pcapd (even by SIGKILL) end this worker's whole process group, so no
/// zeek or command outlives it and writes into a re-run of its job. The kernel's parent-death
/// signal reaches only this process, not the analyzers it started; so it is SIGTERM here,
/// caught by a handler that SIGKILLs the group (this process included). The analyzers never
/// leave the group (no `setsid`), and exec resets the handler in them.
fn take_the_group_down_with_the_daemon() -> std::io::Result<()> {
    extern "C" fn kill_own_group(_: libc::c_int) {
        // SAFETY: killpg is async-signal-safe; 0 is this process's own group.
        unsafe {
            libc::killpg(0, libc::SIGKILL);
        }
    }
    let parent = std::os::unix::process::parent_id();
    let handler: extern "C" fn(libc::c_int) = kill_own_group;
    // SAFETY: installs a handler that only calls an async-signal-safe function; prctl and
    // getppid take plain values.
    unsafe {
        if libc::signal(libc::SIGTERM, handler as libc::sighandler_t) == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    // pcapd may have died before the signal was armed.
    if std::os::unix::process::parent_id() != parent {
        kill_own_group(libc::SIGTERM);
    }
    Ok(())
}

/// The worker protocol over any reader and writer; returns at end of input.
pub fn serve<R: BufRead, W: Write>(
    backend: &Backend,
    settings: &WorkerSettings,
    mut input: R,
    mut output: W,
) -> Result<(), WorkerError> {
    let ready = WorkerMessage::Ready(Ready {
        version: env!("CARGO_PKG_VERSION").to_string(),
        analyzer: backend.name().to_string(),
    });
    write_message(&mut output, &ready)?;
    loop {
        let Some(line) = read_job_line(&mut input, settings.max_line)? else {
            return Ok(());
        };
        let request: JobRequest =
            serde_json::from_slice(&line).map_err(|e| WorkerError::BadRequest {
                reason: e.to_string(),
                excerpt: excerpt(&line),
            })?;
        let answer = run_job(backend, settings, &request, &mut output)?;
        write_message(&mut output, &answer)?;
    }
}

fn run_job<W: Write>(
    backend: &Backend,
    settings: &WorkerSettings,
    request: &JobRequest,
    output: &mut W,
) -> Result<WorkerMessage, WorkerError> {
    let job = request.job.clone();
    let failed = |failure: JobFailure| WorkerMessage::Failed {
        job: job.clone(),
        failed: Failed {
            kind: failure.kind,
            error: failure.error,
        },
    };
    if let Err(failure) = check_inputs(request) {
        return Ok(failed(failure));
    }
    let ignore_checksums = request
        .options
        .get("ignore_checksums")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(settings.ignore_checksums);
    let input = JobInput {
        pcaps: &request.pcaps,
        out: &request.out,
        ignore_checksums,
    };
    let mut write_error = None;
    let mut progress = |bytes: u64, total: u64| {
        if write_error.is_some() {
            return;
        }
        let line = WorkerMessage::Progress {
            job: job.clone(),
            progress: Progress { bytes, total },
        };
        if let Err(e) = write_message(output, &line) {
            write_error = Some(e);
        }
    };
    let result = backend.run(&input, &mut progress);
    if let Some(e) = write_error {
        return Err(e);
    }
    Ok(match result {
        Ok(mut result) => {
            let detect_hits = detect(settings, &request.out, &mut result);
            WorkerMessage::Done {
                job: job.clone(),
                done: Done {
                    logs: result.logs,
                    packets: result.packets,
                    bytes: result.bytes,
                    warnings: result.warnings,
                    files_extracted: result.files_extracted,
                    detect_hits,
                },
            }
        }
        Err(failure) => failed(failure),
    })
}

/// Runs the configured detectors on what the job extracted (docs/files.md); returns the
/// hits. Detection that cannot run is a warning of the job, not a failure: the logs stand.
fn detect(settings: &WorkerSettings, out: &std::path::Path, result: &mut JobResult) -> u64 {
    if settings.detect.detectors.is_empty() {
        return 0;
    }
    match crate::detect::run_detectors(out, settings.format.into(), &settings.detect) {
        Ok(summary) => {
            result.files_extracted = result.files_extracted.max(summary.files);
            for log in summary.logs {
                if !result.logs.contains(&log) {
                    result.logs.push(log);
                }
            }
            result.logs.sort();
            if summary.errors + summary.timeouts > 0 {
                result.warnings.push(format!(
                    "detectors: {} errors, {} timeouts in {} runs (detect.log)",
                    summary.errors, summary.timeouts, summary.runs
                ));
            }
            summary.hits
        }
        Err(e) => {
            result.warnings.push(format!("detectors did not run: {e}"));
            0
        }
    }
}

/// Captures must be readable regular files; the log directory is created if missing.
fn check_inputs(request: &JobRequest) -> Result<(), JobFailure> {
    if request.pcaps.is_empty() {
        return Err(JobFailure::new(
            FailureKind::BadInput,
            "the job names no capture",
        ));
    }
    for pcap in &request.pcaps {
        match std::fs::File::open(pcap).and_then(|f| f.metadata()) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(JobFailure::new(
                    FailureKind::BadInput,
                    format!("{} is not a regular file", pcap.display()),
                ))
            }
            Err(e) => {
                return Err(JobFailure::new(
                    FailureKind::BadInput,
                    format!("cannot read {}: {e}", pcap.display()),
                ))
            }
        }
    }
    fresh_log_dir(&request.out).map_err(|e| {
        JobFailure::new(
            FailureKind::Internal,
            format!("cannot create log directory {}: {e}", request.out.display()),
        )
    })
}

/// An empty log directory for this attempt: what an earlier attempt of the same job left
/// (logs of a run cut by a crash) is moved aside and removed, so the two never mix.
fn fresh_log_dir(out: &std::path::Path) -> std::io::Result<()> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(());
            }
            let mut stale = out.as_os_str().to_owned();
            stale.push(format!(".stale-{}", std::process::id()));
            let stale = std::path::PathBuf::from(stale);
            std::fs::rename(out, &stale)?;
            std::fs::remove_dir_all(&stale)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(out)
}

fn write_message<W: Write>(output: &mut W, message: &WorkerMessage) -> Result<(), WorkerError> {
    let mut line = message.to_line();
    line.push('\n');
    output
        .write_all(line.as_bytes())
        .and_then(|()| output.flush())
        .map_err(WorkerError::Write)
}

/// One line of at most `max` bytes (without its newline); `None` at a clean end of input.
/// An unterminated last line counts as a line.
fn read_job_line<R: BufRead>(input: &mut R, max: usize) -> Result<Option<Vec<u8>>, WorkerError> {
    let mut line = Vec::new();
    loop {
        let available = input.fill_buf().map_err(WorkerError::Read)?;
        if available.is_empty() {
            return Ok(if line.is_empty() { None } else { Some(line) });
        }
        let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > max {
            return Err(WorkerError::LineTooLong { max });
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(found_newline);
        input.consume(used);
        if found_newline {
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::backend::settings::OutputFormat;
    use crate::backend::{AnalyzerKind, StartError, ZeekSettings};

    fn settings(backend: AnalyzerKind, command: Option<&str>) -> WorkerSettings {
        WorkerSettings {
            backend,
            format: OutputFormat::Tsv,
            zeek: ZeekSettings {
                zeekbin: PathBuf::from("/nonexistent/zeek"),
                scripts: vec![],
                args: vec![],
            },
            command: command.map(str::to_string),
            ignore_checksums: true,
            max_line: 4096,
            extract: Default::default(),
            detect: Default::default(),
            analyzer: Default::default(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pcapd-worker-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok();
        dir
    }

    /// Runs `serve` over the given job lines and returns the parsed output lines.
    fn serve_lines(settings: &WorkerSettings, jobs: &[JobRequest]) -> Vec<WorkerMessage> {
        let backend = Backend::start(settings).expect("backend starts");
        let input: String = jobs.iter().map(|j| j.to_line() + "\n").collect();
        let mut output = Vec::new();
        serve(&backend, settings, input.as_bytes(), &mut output).expect("serve succeeds");
        output
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| WorkerMessage::parse(l).expect("every output line is protocol"))
            .collect()
    }

    #[test]
    fn backends_that_cannot_work_refuse_to_start() {
        assert!(Backend::start(&settings(AnalyzerKind::Builtin, None)).is_ok());
        let zeek = Backend::start(&settings(AnalyzerKind::Zeek, None));
        assert!(matches!(zeek, Err(StartError::ZeekUnusable { .. })));
        let command = Backend::start(&settings(AnalyzerKind::Command, None));
        assert!(matches!(command, Err(StartError::NoCommand)));
        assert_eq!(
            run(settings(AnalyzerKind::Command, None)),
            EXIT_CANNOT_START
        );
    }

    #[test]
    fn command_backend_runs_in_the_log_dir_and_reports_its_files() {
        let dir = scratch("ok");
        let pcap_a = dir.join("a b.pcap");
        let pcap_b = dir.join("c.pcap");
        std::fs::write(&pcap_a, b"12345").ok();
        std::fs::write(&pcap_b, b"678").ok();
        let out = dir.join("logs");
        // Writes into cwd (conn.log) and into {out} (both.log); its stdout must not reach
        // the protocol stream.
        let settings = settings(
            AnalyzerKind::Command,
            Some("echo noise; cat {pcaps} > {out}/both.log && printf x > conn.log"),
        );
        let job = JobRequest {
            job: "j1".into(),
            pcaps: vec![pcap_a, pcap_b],
            out: out.clone(),
            options: serde_json::json!({}),
        };
        let lines = serve_lines(&settings, &[job]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(matches!(&lines[0], WorkerMessage::Ready(r) if r.analyzer == "command"));
        assert_eq!(
            lines[1],
            WorkerMessage::Done {
                job: "j1".into(),
                done: Done {
                    logs: vec!["both.log".into(), "conn.log".into()],
                    packets: 0,
                    bytes: 8,
                    warnings: vec![],
                    files_extracted: 0,
                    detect_hits: 0,
                }
            }
        );
        assert_eq!(
            std::fs::read(out.join("both.log")).ok(),
            Some(b"12345678".to_vec())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn failing_command_and_missing_capture_are_answered_per_job() {
        let dir = scratch("fail");
        let pcap = dir.join("a.pcap");
        std::fs::write(&pcap, b"x").ok();
        let settings = settings(
            AnalyzerKind::Command,
            Some("echo 'bad capture header' >&2; exit 3"),
        );
        let jobs = [
            JobRequest {
                job: "missing".into(),
                pcaps: vec![dir.join("nope.pcap")],
                out: dir.join("logs1"),
                options: serde_json::Value::Null,
            },
            JobRequest {
                job: "exit3".into(),
                pcaps: vec![pcap],
                out: dir.join("logs2"),
                options: serde_json::Value::Null,
            },
        ];
        let lines = serve_lines(&settings, &jobs);
        assert_eq!(lines.len(), 3, "{lines:?}");
        match &lines[1] {
            WorkerMessage::Failed { job, failed } => {
                assert_eq!(job, "missing");
                assert_eq!(failed.kind, FailureKind::BadInput);
                assert!(failed.error.contains("nope.pcap"), "{}", failed.error);
            }
            other => panic!("expected failed, got {other:?}"),
        }
        match &lines[2] {
            WorkerMessage::Failed { job, failed } => {
                assert_eq!(job, "exit3");
                assert_eq!(failed.kind, FailureKind::Analyzer);
                assert!(
                    failed.error.contains("exited with code 3"),
                    "{}",
                    failed.error
                );
                assert!(
                    failed.error.contains("bad capture header"),
                    "{}",
                    failed.error
                );
            }
            other => panic!("expected failed, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn over_long_and_malformed_job_lines_stop_the_worker() {
        let settings = settings(AnalyzerKind::Command, Some("true"));
        let backend = Backend::start(&settings).expect("starts");
        let long = vec![b'x'; 5000];
        let result = serve(&backend, &settings, &long[..], Vec::new());
        assert!(matches!(
            result,
            Err(WorkerError::LineTooLong { max: 4096 })
        ));
        let result = serve(&backend, &settings, &b"{\"job\": 1}\n"[..], Vec::new());
        assert!(matches!(result, Err(WorkerError::BadRequest { .. })));
    }

    #[test]
    fn reads_lines_up_to_the_cap() {
        let mut input = &b"abc\n\nlast"[..];
        assert_eq!(
            read_job_line(&mut input, 3).ok().flatten(),
            Some(b"abc".to_vec())
        );
        assert_eq!(
            read_job_line(&mut input, 3).ok().flatten(),
            Some(Vec::new())
        );
        assert!(matches!(
            read_job_line(&mut input, 3),
            Err(WorkerError::LineTooLong { max: 3 })
        ));
    }
}
