//! Running one detector command on one file, as `/bin/sh -c` would (directly when `sh` would
//! only split it into words, see `crate::shell`), in a process group of its own
//! (killed whole at the timeout, and by the kernel if the worker dies), stdin from
//! /dev/null, stdout and stderr read concurrently and kept up to a cap (the rest is read and
//! dropped, so a chatty detector neither blocks nor fills memory).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use crate::shell::ShellLine;
use std::time::{Duration, Instant};

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    /// Killed by a signal it did not get from us (a crash).
    Signaled(i32),
    /// Still running at the timeout: its group was killed.
    TimedOut,
}

/// What one run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub ending: Ending,
    /// The first `cap` bytes of stdout, and whether more came.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
}

fn reader(mut source: impl Read + Send + 'static, cap: usize) -> JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut more = false;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match source.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    more |= n > room;
                }
            }
        }
        (kept, more)
    })
}

fn kill_group(pgid: i32) {
    // SAFETY: killpg takes plain values; the group is the child's own (pgid = its pid).
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Runs `script` as `sh -c` would, with `env` added, for at most `timeout`.
pub fn run(
    script: &str,
    env: &[(&str, &str)],
    cwd: &std::path::Path,
    timeout: Duration,
    cap: usize,
) -> std::io::Result<RunResult> {
    let configure = |command: &mut Command| -> std::io::Result<()> {
        command
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in env {
            command.env(k, v);
        }
        // SAFETY: prctl is async-signal-safe and touches only this (forked) process.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    };
    let mut child = ShellLine::new(script.to_owned()).spawn(configure)?;
    let pgid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let out = reader(child.stdout.take().expect("piped"), cap);
    let err = reader(child.stderr.take().expect("piped"), cap);
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    // Whatever it left running in its group goes too (and closes the pipes).
    kill_group(pgid);
    let status = match status {
        Some(s) => Some(s),
        None => {
            child.wait()?;
            None
        }
    };
    let (stdout, more_out) = out.join().unwrap_or_default();
    let (stderr, more_err) = err.join().unwrap_or_default();
    let ending = match status {
        None => Ending::TimedOut,
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(sig)) => Ending::Signaled(sig),
            (None, None) => Ending::Signaled(0),
        },
    };
    Ok(RunResult {
        ending,
        stdout,
        stderr,
        truncated: more_out || more_err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> RunResult {
        run(
            script,
            &[("PCAPD_X", "v")],
            Path::new("/"),
            Duration::from_millis(timeout_ms),
            1000,
        )
        .unwrap()
    }
    use std::path::Path;

    #[test]
    fn exit_status_output_and_environment() {
        let r = sh("echo \"$PCAPD_X\"; echo e >&2; exit 3", 5000);
        assert_eq!(r.ending, Ending::Exited(3));
        assert_eq!(r.stdout, b"v\n");
        assert_eq!(r.stderr, b"e\n");
        assert!(!r.truncated);
    }

    #[test]
    fn a_hang_is_killed_with_its_group_and_output_is_capped() {
        let start = Instant::now();
        let r = sh("sleep 30 & sleep 30", 200);
        assert_eq!(r.ending, Ending::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
        let r = sh("head -c 10000000 /dev/zero", 10_000);
        assert_eq!(r.ending, Ending::Exited(0));
        assert_eq!(r.stdout.len(), 1000);
        assert!(r.truncated);
        let r = sh("kill -SEGV $$", 5000);
        assert_eq!(r.ending, Ending::Signaled(libc::SIGSEGV));
    }
}
