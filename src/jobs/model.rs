//! The job model: identifiers, states, the on-disk record and its pure state machine.
//!
//! Nothing here touches the disk or the clock: every transition takes `now` from its caller,
//! validates that it is legal from the current state, and stamps `history`. The store
//! (`store.rs`) persists records; the pool and router decide *when* a transition happens.
//!
//! States: `queued → running → done | failed | timed_out | cancelled`; `queued → cancelled`;
//! `running → interrupted` (found running after a crash) `→ queued` once, or `→ failed` when it
//! was already requeued after an interrupt; `running → queued` when the pool hands a job back
//! (shutdown drain, retry after a crash).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::time::Timestamp;

/// A job identifier: a UUID in canonical lowercase hyphenated form.
///
/// Invariant: the string is exactly 36 characters of `[0-9a-f-]` with hyphens at 8, 13, 18
/// and 23, so it is always a safe single path component (no `/`, no `.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a job id (expected a lowercase hyphenated UUID): {0:?}")]
pub struct JobIdError(pub String);

const UUID_HYPHENS: [usize; 4] = [8, 13, 18, 23];

impl JobId {
    /// A fresh random (version 4) UUID from the operating system's generator.
    pub fn generate() -> std::io::Result<JobId> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)
            .map_err(|error| std::io::Error::other(format!("random source: {error}")))?;
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        let mut text = String::with_capacity(36);
        for (index, byte) in bytes.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                text.push('-');
            }
            text.push_str(&format!("{byte:02x}"));
        }
        Ok(JobId(text))
    }

    /// Accepts only the canonical form, so an id taken from a request can be joined to a path.
    pub fn parse(text: &str) -> Result<JobId, JobIdError> {
        let canonical = text.len() == 36
            && text.bytes().enumerate().all(|(index, byte)| {
                if UUID_HYPHENS.contains(&index) {
                    byte == b'-'
                } else {
                    matches!(byte, b'0'..=b'9' | b'a'..=b'f')
                }
            });
        if canonical {
            Ok(JobId(text.to_owned()))
        } else {
            Err(JobIdError(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = JobIdError;
    fn try_from(text: String) -> Result<JobId, JobIdError> {
        JobId::parse(&text)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    TimedOut,
    Cancelled,
    /// Found `running` after a crash; transient until recovery requeues or fails it.
    Interrupted,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
        JobState::TimedOut,
        JobState::Cancelled,
        JobState::Interrupted,
    ];

    /// A terminal job never changes state again (retention may remove it).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::TimedOut | JobState::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::TimedOut => "timed_out",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?} (expected queued, running, done, failed, timed_out, cancelled or interrupted)")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(text: &str) -> Result<JobState, UnknownState> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_owned()))
    }
}

/// Why a job did not end `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The capture could not be read (the client's fault).
    BadInput,
    /// The analyzer ran and reported failure.
    Analyzer,
    /// pcapd itself failed (disk, protocol with the worker).
    Internal,
    /// The worker or analyzer died (exit code or signal recorded).
    Crashed,
    TimedOut,
    Cancelled,
    /// Interrupted by a daemon crash after it had already been requeued once.
    Interrupted,
    /// The job's logs could not be written: `jobs_dir`'s file system was full.
    DiskFull,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
}

impl JobError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> JobError {
        JobError {
            kind,
            message: message.into(),
            exit_code: None,
            signal: None,
        }
    }
}

/// One capture of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// The client's name: a label only, never used as a path.
    pub name: String,
    /// Path relative to the job directory, e.g. `pcaps/0.pcap`.
    pub stored: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes stored.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub state: JobState,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub bytes: u64,
    pub total: u64,
}

/// A log file a job produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    pub name: String,
    pub bytes: u64,
    pub lines: u64,
    /// Lines that are rows ([`is_row`]): what syslog forwarding sends of this log.
    #[serde(default)]
    pub rows: u64,
}

/// A log line that is a row, not a `#` header or an empty line (its newline, and a CR before
/// it, already removed).
pub fn is_row(line: &[u8]) -> bool {
    !line.is_empty() && line[0] != b'#'
}

/// Where a finished job's output step (syslog forwarding, export) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputState {
    /// Waiting its turn (also after a restart).
    Pending,
    /// The receiver or the disk refused; tried again with a capped backoff.
    Retrying,
    Done,
    /// Given up; `error` says why (the logs stay in the job directory).
    Failed,
}

impl OutputState {
    pub fn is_settled(self) -> bool {
        matches!(self, OutputState::Done | OutputState::Failed)
    }
}

/// Syslog forwarding of a done job: `sent` of `total` lines, a durable cursor that resumes
/// after a receiver outage or a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarding {
    pub state: OutputState,
    /// Lines known sent, in forwarding order (logs by name, rows in file order).
    #[serde(alias = "forwarded")]
    pub sent: u64,
    /// Lines to send; known once forwarding started.
    #[serde(default)]
    pub total: Option<u64>,
    /// Over-long lines cut to fit a datagram (UDP).
    #[serde(default)]
    pub truncated: u64,
    /// The last failure, while retrying or failed.
    #[serde(default)]
    pub error: Option<String>,
}

impl Forwarding {
    pub fn pending() -> Forwarding {
        Forwarding {
            state: OutputState::Pending,
            sent: 0,
            total: None,
            truncated: 0,
            error: None,
        }
    }
}

/// A job's place in a cluster's shared queue (`[Cluster]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The host that accepted the job; it publishes the job's stream entry.
    pub submitted_by: String,
    /// Whether the job's entry is in the stream (false while Redis was unreachable).
    pub published: bool,
    /// The host that runs (or last ran) the job.
    #[serde(default)]
    pub owner: Option<String>,
    /// Bumped at every takeover: a result from an older epoch, or another owner, is discarded.
    #[serde(default)]
    pub epoch: u64,
    /// Deliveries of the job's entry: runs started by hosts, counting ones that died.
    #[serde(default)]
    pub deliveries: u32,
    /// Why the last delivery ended without a result (its worker crashed).
    #[serde(default)]
    pub last_failure: Option<String>,
}

/// Export of a done job's logs to `export_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub state: OutputState,
    /// The directory the logs are in, once exported.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

impl Export {
    pub fn pending() -> Export {
        Export {
            state: OutputState::Pending,
            path: None,
            error: None,
        }
    }
}

/// The job record: `jobs/ID/job.json`, and the answer to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: JobId,
    pub state: JobState,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub options: Map<String, Value>,
    pub files: Vec<JobFile>,
    pub created_at: Timestamp,
    pub queued_at: Timestamp,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub history: Vec<Transition>,
    /// Runs started (`queued → running` transitions).
    #[serde(default)]
    pub attempts: u32,
    /// Times recovery requeued this job after finding it interrupted.
    #[serde(default)]
    pub requeues_after_interrupt: u32,
    #[serde(default)]
    pub progress: Option<Progress>,
    #[serde(default)]
    pub error: Option<JobError>,
    #[serde(default)]
    pub logs: Vec<LogInfo>,
    #[serde(default)]
    pub packets: Option<u64>,
    /// The pid of the worker that ran (or runs) the job; cleared when it goes back to the queue.
    #[serde(default)]
    pub worker_pid: Option<u32>,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub forwarding: Option<Forwarding>,
    /// Export to `export_dir`, when configured at the time the job finished.
    #[serde(default)]
    pub export: Option<Export>,
    /// With `[Cluster]`: who published, owns and ran the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterState>,
    /// A done job that extracted files (`[Extract]`): how many, and the detectors' hits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<ExtractedCounts>,
}

/// What a done job's analysis got out of its traffic (docs/files.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractedCounts {
    /// Files written under `extract_files/`.
    pub files: u64,
    /// Detector results that were hits (`detect.log`, verdict `hit`).
    pub detect_hits: u64,
}

/// A transition that is not legal from the job's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {job_id}: cannot {action} a job that is {from}")]
pub struct TransitionError {
    pub job_id: JobId,
    pub from: JobState,
    pub action: &'static str,
}

impl JobRecord {
    /// A freshly submitted job: `queued`, with one history entry.
    pub fn new_queued(
        job_id: JobId,
        tag: Option<String>,
        options: Map<String, Value>,
        files: Vec<JobFile>,
        now: Timestamp,
    ) -> JobRecord {
        JobRecord {
            job_id,
            state: JobState::Queued,
            tag,
            options,
            files,
            created_at: now,
            queued_at: now,
            started_at: None,
            finished_at: None,
            history: vec![Transition {
                state: JobState::Queued,
                at: now,
            }],
            attempts: 0,
            requeues_after_interrupt: 0,
            progress: None,
            error: None,
            logs: Vec::new(),
            packets: None,
            worker_pid: None,
            warnings: Vec::new(),
            forwarding: None,
            export: None,
            cluster: None,
            extracted: None,
        }
    }

    /// A done job whose syslog forwarding or export has not settled yet.
    pub fn outputs_pending(&self) -> bool {
        self.state == JobState::Done
            && (self
                .forwarding
                .as_ref()
                .is_some_and(|f| !f.state.is_settled())
                || self.export.as_ref().is_some_and(|e| !e.state.is_settled()))
    }

    /// Total bytes of the job's captures (used for the per-byte deadline allowance).
    pub fn input_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    pub fn sha256s(&self) -> Vec<String> {
        self.files.iter().map(|file| file.sha256.clone()).collect()
    }

    /// `queued → running` on worker `pid`.
    pub fn start(&mut self, now: Timestamp, pid: u32) -> Result<(), TransitionError> {
        self.move_to(&[JobState::Queued], JobState::Running, "start", now)?;
        self.attempts += 1;
        self.started_at = Some(now);
        self.worker_pid = Some(pid);
        self.progress = None;
        Ok(())
    }

    /// Records analyzer progress; only meaningful while running.
    pub fn set_progress(&mut self, progress: Progress) -> Result<(), TransitionError> {
        self.require(&[JobState::Running], "report progress on")?;
        self.progress = Some(progress);
        Ok(())
    }

    /// `running → done`.
    pub fn finish_done(
        &mut self,
        now: Timestamp,
        logs: Vec<LogInfo>,
        packets: u64,
        warnings: Vec<String>,
    ) -> Result<(), TransitionError> {
        self.move_to(&[JobState::Running], JobState::Done, "finish", now)?;
        self.finished_at = Some(now);
        self.logs = logs;
        self.packets = Some(packets);
        self.warnings = warnings;
        self.error = None;
        Ok(())
    }

    /// `running → failed` with the reason.
    pub fn finish_failed(
        &mut self,
        now: Timestamp,
        error: JobError,
    ) -> Result<(), TransitionError> {
        self.move_to(&[JobState::Running], JobState::Failed, "fail", now)?;
        self.finished_at = Some(now);
        self.error = Some(error);
        Ok(())
    }

    /// `running → timed_out`.
    pub fn finish_timed_out(
        &mut self,
        now: Timestamp,
        message: impl Into<String>,
    ) -> Result<(), TransitionError> {
        self.move_to(&[JobState::Running], JobState::TimedOut, "time out", now)?;
        self.finished_at = Some(now);
        self.error = Some(JobError::new(ErrorKind::TimedOut, message));
        Ok(())
    }

    /// `queued | running → cancelled`. For a running job the pool kills the child first.
    pub fn cancel(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.move_to(
            &[JobState::Queued, JobState::Running],
            JobState::Cancelled,
            "cancel",
            now,
        )?;
        self.finished_at = Some(now);
        self.error = Some(JobError::new(ErrorKind::Cancelled, "cancelled by request"));
        Ok(())
    }

    /// `running → interrupted`: the daemon died while the job ran.
    pub fn interrupt(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.move_to(
            &[JobState::Running],
            JobState::Interrupted,
            "interrupt",
            now,
        )
    }

    /// `interrupted → queued`, counted in `requeues_after_interrupt`.
    pub fn requeue(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.move_to(&[JobState::Interrupted], JobState::Queued, "requeue", now)?;
        self.requeues_after_interrupt += 1;
        self.back_in_queue(now);
        Ok(())
    }

    /// `interrupted → failed` (kind `interrupted`): it was already requeued once.
    pub fn fail_interrupted(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.move_to(&[JobState::Interrupted], JobState::Failed, "fail", now)?;
        self.finished_at = Some(now);
        self.error = Some(JobError::new(
            ErrorKind::Interrupted,
            format!(
                "interrupted by a daemon restart {} times; not requeued again",
                self.requeues_after_interrupt + 1
            ),
        ));
        Ok(())
    }

    /// `running → queued`: the pool hands the job back (shutdown drain, retry after a crash).
    /// Not an interrupt, so `requeues_after_interrupt` is unchanged; `attempts` keeps counting.
    pub fn return_to_queue(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.move_to(&[JobState::Running], JobState::Queued, "requeue", now)?;
        self.back_in_queue(now);
        Ok(())
    }

    /// A cluster host claims the job to run it: its first delivery, or a takeover from a host
    /// that died (or stopped) with it, which `interrupted` marks in the history. The job is
    /// `queued` after, owned by `owner` in a new epoch.
    pub fn claim(&mut self, now: Timestamp, owner: &str) -> Result<(), TransitionError> {
        self.require(
            &[JobState::Queued, JobState::Running, JobState::Interrupted],
            "claim",
        )?;
        if self.state == JobState::Running {
            self.move_to(
                &[JobState::Running],
                JobState::Interrupted,
                "interrupt",
                now,
            )?;
        }
        if self.state == JobState::Interrupted {
            self.move_to(&[JobState::Interrupted], JobState::Queued, "requeue", now)?;
            self.back_in_queue(now);
        }
        if let Some(cluster) = &mut self.cluster {
            cluster.owner = Some(owner.to_owned());
            cluster.epoch += 1;
            cluster.deliveries += 1;
        }
        Ok(())
    }

    /// `queued | running | interrupted → failed`: dead-lettered after `deliveries` runs whose
    /// hosts died or whose workers crashed.
    pub fn dead_letter(&mut self, now: Timestamp, reason: String) -> Result<(), TransitionError> {
        self.move_to(
            &[JobState::Queued, JobState::Running, JobState::Interrupted],
            JobState::Failed,
            "dead-letter",
            now,
        )?;
        self.finished_at = Some(now);
        self.error = Some(JobError::new(ErrorKind::Crashed, reason));
        Ok(())
    }

    /// The answer to `submit`: Brocapi's fields plus pcapd's `state` and `sha256`.
    pub fn submit_answer(&self) -> Value {
        json!({
            "status": "job queued",
            "files": self.files.iter().map(|file| file.name.as_str()).collect::<Vec<_>>(),
            "tag": self.tag,
            "job_id": self.job_id,
            "success": true,
            "state": self.state,
            "sha256": self.sha256s(),
        })
    }

    fn back_in_queue(&mut self, now: Timestamp) {
        self.queued_at = now;
        self.worker_pid = None;
        self.progress = None;
    }

    fn require(&self, allowed: &[JobState], action: &'static str) -> Result<(), TransitionError> {
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(TransitionError {
                job_id: self.job_id.clone(),
                from: self.state,
                action,
            })
        }
    }

    fn move_to(
        &mut self,
        allowed: &[JobState],
        to: JobState,
        action: &'static str,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        self.require(allowed, action)?;
        self.state = to;
        self.history.push(Transition { state: to, at: now });
        Ok(())
    }
}

/// The longest tag accepted; a tag becomes a syslog HOSTNAME (RFC 5424 allows 255, but
/// RFC 3164 receivers often truncate far earlier).
pub const MAX_TAG_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag is empty")]
    Empty,
    #[error("tag is {len} bytes long; at most {MAX_TAG_LEN} are allowed")]
    TooLong { len: usize },
    #[error("tag has {found:?} at position {position}; only printable ASCII without spaces is allowed (it becomes a syslog HOSTNAME)")]
    BadChar { position: usize, found: char },
}

/// A tag is 1 to 64 printable ASCII characters without spaces: it is written verbatim as a
/// syslog HOSTNAME, where a space would shift every following header field.
pub fn validate_tag(tag: &str) -> Result<(), TagError> {
    if tag.is_empty() {
        return Err(TagError::Empty);
    }
    if let Some((position, found)) = tag
        .chars()
        .enumerate()
        .find(|(_, ch)| !ch.is_ascii_graphic())
    {
        return Err(TagError::BadChar { position, found });
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(TagError::TooLong { len: tag.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    fn sample_record() -> JobRecord {
        let file = JobFile {
            name: "capture.pcap".into(),
            stored: "pcaps/0.pcap".into(),
            size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        };
        JobRecord::new_queued(
            JobId::parse("507965ab-6511-4cd4-9542-4671eb140f92").unwrap(),
            Some("testing".into()),
            Map::new(),
            vec![file],
            at(1_000),
        )
    }

    fn states(record: &JobRecord) -> Vec<(JobState, i64)> {
        record
            .history
            .iter()
            .map(|step| (step.state, step.at.unix_millis()))
            .collect()
    }

    #[test]
    fn generated_ids_are_canonical_version_4_and_distinct() {
        let first = JobId::generate().unwrap();
        let second = JobId::generate().unwrap();
        assert_ne!(first, second);
        for id in [&first, &second] {
            assert_eq!(JobId::parse(id.as_str()).as_ref(), Ok(id));
            assert_eq!(&id.as_str()[14..15], "4");
            assert!(matches!(&id.as_str()[19..20], "8" | "9" | "a" | "b"));
        }
    }

    #[test]
    fn parse_rejects_everything_but_the_canonical_form() {
        for bad in [
            "",
            "507965AB-6511-4cd4-9542-4671eb140f92",
            "507965ab65114cd495424671eb140f92",
            "{507965ab-6511-4cd4-9542-4671eb140f92}",
            "507965ab-6511-4cd4-9542-4671eb140f9",
            "../../../../../../../../etc/passwd/x",
            "507965ab-6511-4cd4-9542-4671eb140f9/",
            "507965ab-6511-4cd4-9542-4671eb140f9g",
        ] {
            assert!(JobId::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(serde_json::from_str::<JobId>("\"../x\"").is_err());
    }

    #[test]
    fn state_names_match_serde_and_from_str() {
        for state in JobState::ALL {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, Value::String(state.as_str().into()));
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        assert!("TimedOut".parse::<JobState>().is_err());
        let terminal: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                JobState::Done,
                JobState::Failed,
                JobState::TimedOut,
                JobState::Cancelled
            ]
        );
    }

    #[test]
    fn happy_path_stamps_every_transition() {
        let mut job = sample_record();
        job.start(at(2_000), 4242).unwrap();
        assert_eq!(job.attempts, 1);
        assert_eq!(job.worker_pid, Some(4242));
        job.set_progress(Progress { bytes: 1, total: 3 }).unwrap();
        let logs = vec![LogInfo {
            name: "conn.log".into(),
            bytes: 10,
            lines: 1,
            rows: 1,
        }];
        job.finish_done(at(3_000), logs.clone(), 7, vec!["truncated".into()])
            .unwrap();
        assert_eq!(job.state, JobState::Done);
        assert_eq!(job.started_at, Some(at(2_000)));
        assert_eq!(job.finished_at, Some(at(3_000)));
        assert_eq!(job.logs, logs);
        assert_eq!(job.packets, Some(7));
        assert_eq!(
            states(&job),
            [
                (JobState::Queued, 1_000),
                (JobState::Running, 2_000),
                (JobState::Done, 3_000)
            ]
        );
    }

    #[test]
    fn terminal_states_refuse_every_transition() {
        let mut done = sample_record();
        done.start(at(2), 1).unwrap();
        done.finish_done(at(3), vec![], 0, vec![]).unwrap();
        let before = done.clone();
        let error = done.cancel(at(4)).unwrap_err();
        assert_eq!(error.from, JobState::Done);
        assert!(error
            .to_string()
            .contains("cannot cancel a job that is done"));
        assert!(done.start(at(4), 2).is_err());
        assert!(done
            .finish_failed(at(4), JobError::new(ErrorKind::Analyzer, "x"))
            .is_err());
        assert!(done.finish_timed_out(at(4), "late").is_err());
        assert!(done.interrupt(at(4)).is_err());
        assert!(done.requeue(at(4)).is_err());
        assert!(done.return_to_queue(at(4)).is_err());
        assert_eq!(
            done, before,
            "a refused transition must not change the record"
        );
    }

    #[test]
    fn queued_job_can_only_start_or_be_cancelled() {
        let mut job = sample_record();
        assert!(job.finish_done(at(2), vec![], 0, vec![]).is_err());
        assert!(job
            .finish_failed(at(2), JobError::new(ErrorKind::Internal, "x"))
            .is_err());
        assert!(job.finish_timed_out(at(2), "x").is_err());
        assert!(job.interrupt(at(2)).is_err());
        assert!(job.requeue(at(2)).is_err());
        assert!(job.set_progress(Progress { bytes: 0, total: 0 }).is_err());
        job.cancel(at(5)).unwrap();
        assert_eq!(job.state, JobState::Cancelled);
        assert_eq!(
            job.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Cancelled)
        );
        assert_eq!(job.finished_at, Some(at(5)));
    }

    #[test]
    fn failure_and_timeout_record_the_reason() {
        let mut failed = sample_record();
        failed.start(at(2), 9).unwrap();
        let crash = JobError {
            kind: ErrorKind::Crashed,
            message: "killed, possibly out of memory".into(),
            exit_code: None,
            signal: Some(9),
        };
        failed.finish_failed(at(3), crash.clone()).unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.error, Some(crash));

        let mut late = sample_record();
        late.start(at(2), 9).unwrap();
        late.finish_timed_out(at(600_002), "deadline 600 s passed")
            .unwrap();
        assert_eq!(late.state, JobState::TimedOut);
        let error = late.error.unwrap();
        assert_eq!(error.kind, ErrorKind::TimedOut);
        assert_eq!(error.message, "deadline 600 s passed");
    }

    #[test]
    fn interrupted_job_is_requeued_once_then_failed() {
        let mut job = sample_record();
        job.start(at(2_000), 11).unwrap();
        job.interrupt(at(3_000)).unwrap();
        assert!(!job.state.is_terminal());
        job.requeue(at(3_000)).unwrap();
        assert_eq!(job.state, JobState::Queued);
        assert_eq!(job.requeues_after_interrupt, 1);
        assert_eq!(job.queued_at, at(3_000));
        assert_eq!(job.worker_pid, None);

        job.start(at(4_000), 12).unwrap();
        assert_eq!(job.attempts, 2);
        job.interrupt(at(5_000)).unwrap();
        job.fail_interrupted(at(5_000)).unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(
            job.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Interrupted)
        );
        assert_eq!(
            states(&job),
            [
                (JobState::Queued, 1_000),
                (JobState::Running, 2_000),
                (JobState::Interrupted, 3_000),
                (JobState::Queued, 3_000),
                (JobState::Running, 4_000),
                (JobState::Interrupted, 5_000),
                (JobState::Failed, 5_000),
            ]
        );
    }

    #[test]
    fn return_to_queue_does_not_count_as_interrupt() {
        let mut job = sample_record();
        job.start(at(2), 1).unwrap();
        job.return_to_queue(at(3)).unwrap();
        assert_eq!(job.state, JobState::Queued);
        assert_eq!(job.requeues_after_interrupt, 0);
        assert_eq!(job.attempts, 1);
        assert_eq!(job.worker_pid, None);
    }

    #[test]
    fn record_round_trips_through_json() {
        let mut job = sample_record();
        job.start(at(2), 1).unwrap();
        job.forwarding = Some(Forwarding {
            state: OutputState::Retrying,
            sent: 3,
            total: Some(5),
            truncated: 0,
            error: Some("connection refused".into()),
        });
        let text = serde_json::to_string(&job).unwrap();
        let back: JobRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, job);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["state"], "running");
        assert_eq!(value["created_at"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn submit_answer_has_brocapis_fields() {
        let job = sample_record();
        let answer = job.submit_answer();
        assert_eq!(
            answer,
            json!({
                "status": "job queued",
                "files": ["capture.pcap"],
                "tag": "testing",
                "job_id": "507965ab-6511-4cd4-9542-4671eb140f92",
                "success": true,
                "state": "queued",
                "sha256": ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
            })
        );
    }

    #[test]
    fn tags_are_printable_ascii_without_spaces() {
        assert_eq!(validate_tag("sensor-01.example_net"), Ok(()));
        assert_eq!(validate_tag(&"x".repeat(64)), Ok(()));
        assert_eq!(validate_tag(""), Err(TagError::Empty));
        assert_eq!(
            validate_tag(&"x".repeat(65)),
            Err(TagError::TooLong { len: 65 })
        );
        assert_eq!(
            validate_tag("two words"),
            Err(TagError::BadChar {
                position: 3,
                found: ' '
            })
        );
        assert!(validate_tag("tab\there").is_err());
        assert!(validate_tag("new\nline").is_err());
        assert!(validate_tag("caf\u{e9}").is_err());
    }
}
