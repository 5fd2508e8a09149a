//! One worker child process: how it is started, isolated, read, and stopped.
//!
//! A child runs in its own process group with a parent-death signal, rlimits, an allow-listed
//! environment and, under root, the configured user and group. Its stdout is read by its own
//! task into capped lines ([`StdoutEvent`]); its stderr is drained by another task into
//! tracing, so a noisy child can never block on a full pipe. Stopping always addresses the
//! whole group (SIGTERM, grace, SIGKILL), because killing only the leader would leave zeek or
//! a command's grandchildren running.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// PATH given to children when the allow-list does not pass the parent's.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// RLIMIT_NOFILE of a child (lowered to the hard limit if that is smaller).
const CHILD_OPEN_FILES: u64 = 4096;
/// How long a stop waits for the SIGKILLed members of a group to disappear. Grandchildren
/// are reaped by init, not by us, so this is a bounded courtesy wait, not a guarantee.
const GROUP_GONE_WAIT: Duration = Duration::from_secs(1);
/// Longest stderr line logged; the rest of the line is dropped.
const STDERR_LINE_MAX: usize = 4096;

/// Everything needed to start a child; built from `PoolSettings` + `WorkerConfig`.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env_allow: Vec<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub memory_limit: u64,
    pub max_line: usize,
    /// Time a child has to finish a line it started writing.
    pub line_deadline: Duration,
    /// Slot number, for log lines.
    pub slot: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {program}: {source}")]
    Exec {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("worker user {user:?} does not exist")]
    UnknownUser { user: String },
    #[error("worker group {group:?} does not exist")]
    UnknownGroup { group: String },
    #[error("looking up worker user/group {name:?}: {source}")]
    Lookup {
        name: String,
        #[source]
        source: nix::Error,
    },
}

impl SpawnError {
    /// Whether a restart can fix it (a missing program or user will still be missing).
    pub fn is_permanent(&self) -> bool {
        match self {
            SpawnError::Exec { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
            ),
            SpawnError::UnknownUser { .. } | SpawnError::UnknownGroup { .. } => true,
            SpawnError::Lookup { .. } => false,
        }
    }
}

/// What the stdout reader saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdoutEvent {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// A line longer than `max_line`; reading stopped.
    TooLong { limit: usize },
    /// A started line was not finished within the line deadline; reading stopped.
    Stalled { partial: Vec<u8>, after: Duration },
    /// End of output (with an unterminated partial line, if any); reading stopped.
    Eof { partial: Vec<u8> },
    /// Reading failed; reading stopped.
    ReadError(String),
}

/// A running child. Its stdout events come on the receiver [`spawn`] returns beside it, so a
/// slot can wait for output and for the exit at the same time.
pub struct WorkerProcess {
    child: Child,
    pub pid: u32,
    stdin: Option<ChildStdin>,
    pub started: SystemTime,
    /// Set once the leader was reaped and the group got its final SIGKILL: the pid may be
    /// reused from then on, so the group must not be signalled again.
    swept: bool,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited by itself with this code.
    Exited { code: i32 },
    /// A signal ended it (ours, the kernel's OOM killer's, anyone's).
    Killed { signal: i32 },
    /// Waiting for it failed, so how it ended is not known.
    Unknown,
}

impl ChildExit {
    fn from_status(status: ExitStatus) -> ChildExit {
        match (status.code(), status.signal()) {
            (_, Some(signal)) => ChildExit::Killed { signal },
            (Some(code), None) => ChildExit::Exited { code },
            (None, None) => ChildExit::Unknown,
        }
    }

    pub fn code(&self) -> Option<i32> {
        match self {
            ChildExit::Exited { code } => Some(*code),
            _ => None,
        }
    }

    pub fn signal(&self) -> Option<i32> {
        match self {
            ChildExit::Killed { signal } => Some(*signal),
            _ => None,
        }
    }

    /// A message for operators ("exited with code 3", "killed by SIGKILL, possibly out of memory").
    pub fn describe(&self) -> String {
        match *self {
            ChildExit::Killed { signal } if signal == libc::SIGKILL => {
                "killed by SIGKILL, possibly out of memory".to_string()
            }
            ChildExit::Killed { signal } => match Signal::try_from(signal) {
                Ok(name) => format!("killed by {name}"),
                Err(_) => format!("killed by signal {signal}"),
            },
            ChildExit::Exited { code } => format!("exited with code {code}"),
            ChildExit::Unknown => "ended for an unknown reason".to_string(),
        }
    }
}

/// uid/gid to switch to, resolved before fork (lookups are not async-signal-safe).
#[derive(Debug, Clone, Copy, Default)]
struct Credentials {
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
}

fn resolve_credentials(spec: &ChildSpec) -> Result<Credentials, SpawnError> {
    resolve_identity(spec.user.as_deref(), spec.group.as_deref())
}

/// The uid/gid children switch to for `[Worker] user`/`group`; none unless pcapd is root.
fn resolve_identity(user: Option<&str>, group: Option<&str>) -> Result<Credentials, SpawnError> {
    // Switching identity is only possible, and only wanted, when pcapd runs as root.
    if !nix::unistd::geteuid().is_root() {
        return Ok(Credentials::default());
    }
    let mut creds = Credentials::default();
    if let Some(name) = user {
        let user = nix::unistd::User::from_name(name)
            .map_err(|source| SpawnError::Lookup {
                name: name.to_owned(),
                source,
            })?
            .ok_or_else(|| SpawnError::UnknownUser {
                user: name.to_owned(),
            })?;
        creds.uid = Some(user.uid.as_raw());
        creds.gid = Some(user.gid.as_raw());
    }
    if let Some(name) = group {
        let group = nix::unistd::Group::from_name(name)
            .map_err(|source| SpawnError::Lookup {
                name: name.to_owned(),
                source,
            })?
            .ok_or_else(|| SpawnError::UnknownGroup {
                group: name.to_owned(),
            })?;
        creds.gid = Some(group.gid.as_raw());
    }
    Ok(creds)
}

/// The identity workers run as when it is not pcapd's own: `(uid, gid)`.
pub fn worker_identity(
    user: Option<&str>,
    group: Option<&str>,
) -> Result<Option<(u32, u32)>, SpawnError> {
    let creds = resolve_identity(user, group)?;
    if creds.uid.is_none() && creds.gid.is_none() {
        return Ok(None);
    }
    Ok(Some((
        creds.uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw()),
        creds.gid.unwrap_or_else(|| nix::unistd::getegid().as_raw()),
    )))
}

fn open_files_limit() -> u64 {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => CHILD_OPEN_FILES.min(hard),
        Err(_) => CHILD_OPEN_FILES,
    }
}

/// Starts a child as described by `spec`.
pub fn spawn(spec: &ChildSpec) -> Result<(WorkerProcess, mpsc::Receiver<StdoutEvent>), SpawnError> {
    let creds = resolve_credentials(spec)?;
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Only the leader; the group is stopped explicitly by `stop`.
        .kill_on_drop(true)
        .process_group(0);
    for name in &spec.env_allow {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    if !spec.env_allow.iter().any(|name| name == "PATH") {
        command.env("PATH", DEFAULT_PATH);
    }
    let parent = std::process::id() as libc::pid_t;
    let memory_limit = spec.memory_limit as libc::rlim_t;
    let open_files = open_files_limit() as libc::rlim_t;
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe libc
    // functions on values computed before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || pre_exec_isolation(parent, memory_limit, open_files, creds));
    }
    let mut child = command.spawn().map_err(|source| SpawnError::Exec {
        program: spec.program.clone(),
        source,
    })?;
    let pid = child.id().unwrap_or(0);
    let stdin = child.stdin.take();
    let (tx, stdout) = mpsc::channel(16);
    if let Some(out) = child.stdout.take() {
        let reader = BufReader::new(out);
        tokio::spawn(read_stdout(reader, spec.max_line, spec.line_deadline, tx));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(drain_stderr(BufReader::new(err), spec.slot, pid));
    }
    let process = WorkerProcess {
        child,
        pid,
        stdin,
        started: SystemTime::now(),
        swept: false,
    };
    Ok((process, stdout))
}

/// Runs in the child between fork and exec.
fn pre_exec_isolation(
    parent: libc::pid_t,
    memory_limit: libc::rlim_t,
    open_files: libc::rlim_t,
    creds: Credentials,
) -> io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        // Die with pcapd. Linux sends it when the spawning *thread* ends; tokio's worker
        // threads live as long as the runtime, so in practice that is pcapd's lifetime.
        check(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ))?;
        // The parent may have died before prctl took effect.
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(libc::setrlimit(libc::RLIMIT_CORE, &no_core))?;
        let files = libc::rlimit {
            rlim_cur: open_files,
            rlim_max: open_files,
        };
        check(libc::setrlimit(libc::RLIMIT_NOFILE, &files))?;
        if memory_limit > 0 {
            let memory = libc::rlimit {
                rlim_cur: memory_limit,
                rlim_max: memory_limit,
            };
            check(libc::setrlimit(libc::RLIMIT_AS, &memory))?;
        }
        if let Some(gid) = creds.gid {
            check(libc::setgroups(1, &gid))?;
            check(libc::setgid(gid))?;
        }
        if let Some(uid) = creds.uid {
            check(libc::setuid(uid))?;
        }
    }
    Ok(())
}

/// Result of one capped line read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// `buf` holds a whole line without its newline.
    Line,
    /// `buf` reached `max` bytes without a newline.
    Overflow,
    /// A started line did not end within the deadline; `buf` holds what came.
    Stalled,
    /// End of input; `buf` holds an unterminated tail, if any.
    Eof,
}

/// Appends one line to `buf` (which must start empty), reading at most `max` bytes of it.
/// Once a line has started, the rest must come within `partial_deadline`.
pub async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
    partial_deadline: Option<Duration>,
) -> io::Result<ReadLine> {
    let mut partial_since: Option<Instant> = None;
    loop {
        let available = match (partial_since, partial_deadline) {
            (Some(since), Some(deadline)) => {
                match tokio::time::timeout_at(since + deadline, reader.fill_buf()).await {
                    Ok(result) => result?,
                    Err(_) => return Ok(ReadLine::Stalled),
                }
            }
            _ => reader.fill_buf().await?,
        };
        if available.is_empty() {
            return Ok(ReadLine::Eof);
        }
        let room = max.saturating_sub(buf.len());
        match available.iter().position(|&b| b == b'\n') {
            Some(end) if end <= room => {
                buf.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                return Ok(ReadLine::Line);
            }
            _ => {
                let take = available.len().min(room);
                buf.extend_from_slice(&available[..take]);
                reader.consume(take);
                if buf.len() >= max {
                    return Ok(ReadLine::Overflow);
                }
                partial_since.get_or_insert_with(Instant::now);
            }
        }
    }
}

async fn read_stdout<R: AsyncBufRead + Unpin>(
    mut reader: R,
    max_line: usize,
    line_deadline: Duration,
    tx: mpsc::Sender<StdoutEvent>,
) {
    loop {
        let mut buf = Vec::new();
        let event =
            match read_line_capped(&mut reader, &mut buf, max_line, Some(line_deadline)).await {
                Ok(ReadLine::Line) => StdoutEvent::Line(buf),
                Ok(ReadLine::Overflow) => StdoutEvent::TooLong { limit: max_line },
                Ok(ReadLine::Stalled) => StdoutEvent::Stalled {
                    partial: buf,
                    after: line_deadline,
                },
                Ok(ReadLine::Eof) => StdoutEvent::Eof { partial: buf },
                Err(e) => StdoutEvent::ReadError(e.to_string()),
            };
        let last = !matches!(event, StdoutEvent::Line(_));
        if tx.send(event).await.is_err() || last {
            return;
        }
    }
}

async fn drain_stderr<R: AsyncBufRead + Unpin>(mut reader: R, slot: usize, pid: u32) {
    loop {
        let mut buf = Vec::new();
        match read_line_capped(&mut reader, &mut buf, STDERR_LINE_MAX, None).await {
            Ok(ReadLine::Line) | Ok(ReadLine::Stalled) => log_stderr(slot, pid, &buf, false),
            Ok(ReadLine::Overflow) => {
                log_stderr(slot, pid, &buf, true);
                // Drop the rest of the over-long line.
                loop {
                    let mut rest = Vec::new();
                    match read_line_capped(&mut reader, &mut rest, STDERR_LINE_MAX, None).await {
                        Ok(ReadLine::Overflow) => continue,
                        Ok(ReadLine::Eof) | Err(_) => return,
                        Ok(_) => break,
                    }
                }
            }
            Ok(ReadLine::Eof) => {
                if !buf.is_empty() {
                    log_stderr(slot, pid, &buf, false);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(slot, pid, error = %e, "reading worker stderr failed");
                return;
            }
        }
    }
}

fn log_stderr(slot: usize, pid: u32, line: &[u8], truncated: bool) {
    let text = String::from_utf8_lossy(line);
    let suffix = if truncated { " …(truncated)" } else { "" };
    tracing::warn!(slot, pid, "worker stderr: {text}{suffix}");
}

impl WorkerProcess {
    /// Writes one line to the child's stdin.
    pub async fn send_line(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdin already closed"))?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        stdin.write_all(&bytes).await?;
        stdin.flush().await
    }

    /// Waits for the leader to exit. Cancel safe.
    pub async fn wait(&mut self) -> ChildExit {
        match self.child.wait().await {
            Ok(status) => ChildExit::from_status(status),
            Err(e) => {
                tracing::error!(pid = self.pid, error = %e, "waiting for worker failed");
                ChildExit::Unknown
            }
        }
    }

    /// Sends `signal` to the child's whole process group; a gone group is not an error.
    pub fn signal_group(&self, signal: Signal) {
        if self.pid == 0 || self.swept {
            return;
        }
        match killpg(Pid::from_raw(self.pid as i32), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                tracing::error!(pid = self.pid, %signal, error = %e, "signalling worker group")
            }
        }
    }

    /// Stops the whole group: SIGTERM, up to `grace` for the leader to exit, then SIGKILL to
    /// the group (always, so grandchildren that outlived the leader go too).
    pub async fn stop(&mut self, grace: Duration) -> ChildExit {
        self.stdin = None;
        self.signal_group(Signal::SIGTERM);
        let exit = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(ChildExit::from_status(status)),
            _ => None,
        };
        self.signal_group(Signal::SIGKILL);
        let exit = match exit {
            Some(exit) => exit,
            None => self.wait().await,
        };
        self.sweep().await;
        exit
    }

    /// After the leader is reaped: SIGKILL what is left of the group and wait (bounded) for it
    /// to disappear, then never signal this group again.
    async fn sweep(&mut self) {
        if self.swept || self.pid == 0 {
            return;
        }
        self.signal_group(Signal::SIGKILL);
        let until = Instant::now() + GROUP_GONE_WAIT;
        while group_has_live_members(self.pid) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.swept = true;
    }

    /// Stops a child whose leader already exited: kills what is left of its group.
    pub async fn reap(&mut self) -> ChildExit {
        self.signal_group(Signal::SIGKILL);
        let exit = self.wait().await;
        self.sweep().await;
        exit
    }

    /// Ends an idle child politely: close stdin (a worker exits at end of input), wait up to
    /// `grace`, then stop the group.
    pub async fn retire(&mut self, grace: Duration) -> ChildExit {
        self.stdin = None;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.sweep().await;
                ChildExit::from_status(status)
            }
            _ => self.stop(Duration::ZERO).await,
        }
    }

    /// Resident set size in bytes, from /proc; `None` when unavailable.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        parse_vm_rss(&status)
    }
}

/// Whether process group `pgid` has a member that is not a zombie. Zombies are dead (they
/// hold only a pid) and orphans' zombies are init's to reap, so they do not count.
pub(super) fn group_has_live_members(pgid: u32) -> bool {
    if killpg(Pid::from_raw(pgid as i32), None) == Err(nix::errno::Errno::ESRCH) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| parse_stat_state_and_group(&stat))
        .any(|(state, group)| group == pgid && state != 'Z')
}

/// State and process group from /proc/PID/stat ("pid (comm) S ppid pgrp …"); comm may hold
/// spaces and parentheses, so fields are counted from the last ')'.
fn parse_stat_state_and_group(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(2 * 1024 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn parses_proc_stat() {
        let stat = "4242 (my (odd) name) Z 1 4240 4240 0 -1 4194564";
        assert_eq!(parse_stat_state_and_group(stat), Some(('Z', 4240)));
        assert_eq!(parse_stat_state_and_group("garbage"), None);
    }

    #[test]
    fn describes_exits() {
        let killed = ChildExit::Killed {
            signal: libc::SIGKILL,
        };
        assert_eq!(
            killed.describe(),
            "killed by SIGKILL, possibly out of memory"
        );
        let code = ChildExit::Exited { code: 3 };
        assert_eq!(code.describe(), "exited with code 3");
        let term = ChildExit::Killed {
            signal: libc::SIGTERM,
        };
        assert_eq!(term.describe(), "killed by SIGTERM");
    }

    #[tokio::test]
    async fn capped_reader_splits_lines_and_stops_at_the_cap() {
        let data: &[u8] = b"short\nexactly10\n0123456789ABC\n";
        let mut reader = BufReader::with_capacity(4, data);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 10, None).await.ok(),
            Some(ReadLine::Line)
        );
        assert_eq!(buf, b"short");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 10, None).await.ok(),
            Some(ReadLine::Line)
        );
        assert_eq!(buf, b"exactly10");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 10, None).await.ok(),
            Some(ReadLine::Overflow)
        );
        assert_eq!(buf, b"0123456789");
    }

    #[tokio::test]
    async fn capped_reader_reports_a_stalled_half_line() {
        let (mut writer, reader) = tokio::io::duplex(64);
        writer.write_all(b"{\"job\": ").await.ok();
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        let started = std::time::Instant::now();
        let result =
            read_line_capped(&mut reader, &mut buf, 100, Some(Duration::from_millis(100))).await;
        assert_eq!(result.ok(), Some(ReadLine::Stalled));
        assert_eq!(buf, b"{\"job\": ");
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(writer);
    }
}
