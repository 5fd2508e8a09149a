//! The pool: N slots, each owning one long-lived child, fed from one bounded FIFO queue.
//!
//! Layout: [`PoolHandle`] is what the daemon holds; the queue, the per-slot status and the
//! counters live in one mutex-guarded [`state::PoolState`]; what the queue holds and what a
//! slot is told are `messages.rs`; each slot is an actor task (`slot/`) that owns its child
//! (`child.rs`), pulls the oldest queued work whenever its child is idle, and settles
//! everything it took. Work is only ever taken by an idle, ready
//! slot, so dispatch needs no separate dispatcher task. Restart intensity is a pure policy
//! (`restart.rs`).
//!
//! The children speak one of two dialects ([`ChildDialect`], both in `crate::protocol`):
//! `pcapd worker` children run jobs (`protocol::worker`), burp monitor children answer status
//! queries (`protocol::burp`). Supervision (process groups, deadlines, restart intensity,
//! recycling, isolation) is the same for both; only what is queued and how a child's lines
//! are read differ.
//!
//! Event invariant: every accepted job gets exactly one `Finished` event, except the jobs
//! that [`PoolHandle::shutdown`] returns (the caller requeues those on disk). Every accepted
//! query gets exactly one [`QueryOutcome`], unless its asker stopped waiting first.

mod child;
mod messages;
mod restart;
mod slot;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::WorkerConfig;
use crate::jobs::JobId;
use crate::protocol::burp::{BurpVersion, QueryAnswer, StatusQuery};
use crate::protocol::worker::FailureKind;
pub use child::{worker_identity, ChildExit, SpawnError};
use messages::{QueuedJob, QueuedQuery, SlotCommand, Work};
use state::Shared;

/// What the pool runs: `program args…` per slot, speaking `dialect`.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub size: usize,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub worker: WorkerConfig,
    /// Queued work beyond which submissions are refused with `QueueFull`.
    pub max_queue: usize,
    pub dialect: ChildDialect,
}

/// The protocol the children speak, and so what the pool's queue holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildDialect {
    /// `pcapd worker`: JSON job lines (`crate::protocol::worker`); the queue holds jobs.
    Worker,
    /// `burp -a m`: status queries (`crate::protocol::burp`); the queue holds queries.
    Burp(BurpDialect),
}

/// Settings of the burp dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct BurpDialect {
    /// `[Burp] timeout`: how long a child has to answer one query, and how long a query may
    /// wait in the queue for a free child.
    pub query_timeout: Duration,
}

/// Longest line read from a burp child. burp prints each answer as one JSON line, and a
/// server with many clients and backups answers `c:` with megabytes; `[Worker] max_line`
/// (sized for `pcapd worker` lines) applies only when it is larger.
pub const BURP_MAX_LINE: usize = 64 << 20;

/// How a burp query ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryOutcome {
    /// burp answered: a document, or a warning (no result).
    Answered(QueryAnswer),
    /// The child hung, died or broke the dialect while answering; it was replaced.
    NoAnswer { reason: String },
}

/// Why a query got no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("no burp monitor child became free within {waited:?} (pool busy or degraded)")]
    NoChildFree { waited: Duration },
    #[error("the pool stopped before the query was answered")]
    Stopped,
}

/// One job for a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub job_id: JobId,
    pub pcaps: Vec<PathBuf>,
    pub out: PathBuf,
    pub options: serde_json::Value,
    /// Total size of the captures; extends the deadline by `timeout_per_gb` per GiB.
    pub input_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PoolEvent {
    /// A slot sent the job to its child (again, after a retried crash).
    Started {
        job_id: JobId,
        slot: usize,
        pid: u32,
    },
    Progress {
        job_id: JobId,
        bytes: u64,
        total: u64,
    },
    Finished {
        job_id: JobId,
        outcome: JobOutcome,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Done {
        logs: Vec<String>,
        packets: u64,
        warnings: Vec<String>,
        /// Files the analysis extracted, and detector hits on them.
        files_extracted: u64,
        detect_hits: u64,
    },
    /// The worker answered `failed`.
    Failed {
        kind: FailureKind,
        error: String,
    },
    /// The child died while running the job (after any retries).
    Crashed {
        exit: ChildExit,
        message: String,
    },
    /// The deadline passed; the child's group was stopped.
    TimedOut {
        after: Duration,
    },
    Cancelled,
    /// The child broke the protocol; it was killed and replaced.
    ProtocolError {
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("queue full ({max} waiting)")]
    QueueFull { max: usize },
    #[error("the pool is shutting down")]
    ShuttingDown,
    /// Jobs sent to a pool of burp children, or queries to a pool of workers.
    #[error("this pool's children do not take {what}")]
    WrongDialect { what: &'static str },
}

/// Whether `max_queue` applies to a job entering the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A submission: refused with `QueueFull` when `max_queue` jobs wait.
    New,
    /// A job the store already holds as queued (recovered at start, or requeued): always
    /// queued, so the pool's one queue holds every waiting job whatever its length.
    Recovered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was still queued and is gone.
    Dequeued,
    /// The job was running; its child's group was stopped.
    Killed,
    /// No such job queued or running.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("pool size must be at least 1")]
    EmptyPool,
    #[error("worker max_line must be at least 1 byte")]
    ZeroMaxLine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    Starting,
    Idle,
    Busy,
    Backoff,
    Stopping,
}

impl SlotState {
    pub const ALL: [SlotState; 5] = [
        SlotState::Starting,
        SlotState::Idle,
        SlotState::Busy,
        SlotState::Backoff,
        SlotState::Stopping,
    ];

    /// The name `pool` answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Starting => "starting",
            SlotState::Idle => "idle",
            SlotState::Busy => "busy",
            SlotState::Backoff => "backoff",
            SlotState::Stopping => "stopping",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    pub slot: usize,
    pub pid: Option<u32>,
    pub state: SlotState,
    pub job: Option<JobId>,
    /// Jobs (burp backend: queries) this slot settled, whatever the outcome.
    pub jobs_done: u64,
    /// Children started in this slot after its first (crash, breach, timeout, cancel, recycling).
    pub restarts: u64,
    /// Runs in this slot whose child crashed (retried or not).
    pub crashes: u64,
    /// When the current child started, unix seconds.
    pub started: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    pub slots: Vec<SlotStatus>,
    pub queue_len: usize,
    pub max_queue_seen: usize,
    pub accepted: u64,
    pub rejected: u64,
    pub timed_out: u64,
    pub crashed: u64,
    /// Burp status queries (all zero with worker children).
    pub queries: QueryCounters,
    /// True while any slot is backing off after repeated failures.
    pub degraded: bool,
    /// Why no queued work is handed out now (empty: it is).
    pub dispatch_paused: Vec<PauseReason>,
}

/// Why the pool holds back queued work. Each reason is set and cleared on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// A job transition could not be written (the disk refused it); retrying.
    RecordUnwritten,
    /// `jobs_dir`'s file system is below `min_free`.
    DiskLow,
}

impl PauseReason {
    pub const ALL: [PauseReason; 2] = [PauseReason::RecordUnwritten, PauseReason::DiskLow];

    /// The name `pool` answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::RecordUnwritten => "record_unwritten",
            PauseReason::DiskLow => "disk_low",
        }
    }

    pub(super) fn bit(self) -> u8 {
        match self {
            PauseReason::RecordUnwritten => 1,
            PauseReason::DiskLow => 2,
        }
    }
}

/// What became of the burp queries the pool received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueryCounters {
    pub received: u64,
    /// Answered with a document.
    pub answered: u64,
    /// Answered with a warning (no result).
    pub warnings: u64,
    /// The child failed while answering.
    pub failed: u64,
    /// The asker stopped waiting before a child took the query.
    pub abandoned: u64,
}

impl PoolStatus {
    /// Whether any slot has a ready child (idle or busy).
    pub fn alive(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s.state, SlotState::Idle | SlotState::Busy))
    }
}

/// The daemon's handle on the pool; cheap to clone.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Arc<Shared>,
}

/// Starts every slot and waits until each child said ready or failed to start.
pub async fn start(
    settings: PoolSettings,
) -> Result<(PoolHandle, mpsc::UnboundedReceiver<PoolEvent>), PoolError> {
    if settings.size == 0 {
        return Err(PoolError::EmptyPool);
    }
    if settings.worker.max_line == 0 {
        return Err(PoolError::ZeroMaxLine);
    }
    let (events, receiver) = mpsc::unbounded_channel();
    let size = settings.size;
    let shared = Arc::new(Shared::new(settings, events));
    let mut first_starts = Vec::with_capacity(size);
    for index in 0..size {
        let (tx, rx) = oneshot::channel();
        slot::spawn(&shared, index, Some(tx));
        first_starts.push(rx);
    }
    for started in first_starts {
        // An error only means the slot task ended before reporting, which is also "failed".
        let _ = started.await;
    }
    Ok((PoolHandle { shared }, receiver))
}

impl PoolHandle {
    /// Queues a job (FIFO); refuses at once when the pool stops, or when the queue is full
    /// and the job is new ([`Admission`]).
    pub fn submit(&self, job: JobSpec, admission: Admission) -> Result<(), Rejected> {
        self.shared.submit(
            Work::Job(QueuedJob {
                spec: job,
                crashes: 0,
            }),
            admission,
        )
    }

    /// Whether a new job would be queued now: the same decision `submit` makes, taken
    /// before an upload's bytes are received so a full queue refuses it at once.
    pub fn check_room(&self) -> Result<(), Rejected> {
        self.shared.check_room()
    }

    /// Asks a burp child (pool of `ChildDialect::Burp`): queued FIFO like jobs, refused at
    /// once when the queue is full, answered within the dialect's deadlines.
    pub async fn query(&self, query: StatusQuery) -> Result<QueryOutcome, QueryError> {
        let ChildDialect::Burp(dialect) = &self.shared.dialect else {
            return Err(Rejected::WrongDialect {
                what: "burp queries",
            }
            .into());
        };
        // Waiting for a free child, then the child's own deadline, then stopping it.
        let waited = dialect.query_timeout * 2 + self.shared.worker().grace;
        let (reply, answer) = oneshot::channel();
        self.shared
            .submit(Work::Query(QueuedQuery { query, reply }), Admission::New)?;
        match tokio::time::timeout(waited, answer).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(QueryError::Stopped),
            Err(_) => Err(QueryError::NoChildFree { waited }),
        }
    }

    /// Stops handing out queued work (the job store cannot record results); what runs goes on.
    pub fn pause_dispatch(&self, reason: PauseReason) {
        self.shared.set_paused(reason.bit(), true);
    }

    /// Hands out queued work again.
    pub fn resume_dispatch(&self, reason: PauseReason) {
        self.shared.set_paused(reason.bit(), false);
    }

    /// The server version the burp children reported (`None` before one was ready, and
    /// with worker children).
    pub fn burp_server_version(&self) -> Option<BurpVersion> {
        self.shared.burp_server_version()
    }

    /// Removes a queued job, or stops the child running it (and replaces the child).
    pub async fn cancel(&self, job_id: &JobId) -> CancelOutcome {
        let slot = match self.shared.cancel_queued_or_find(job_id) {
            Ok(outcome) => return outcome,
            Err(None) => return CancelOutcome::Unknown,
            Err(Some(slot)) => slot,
        };
        let (reply, answer) = oneshot::channel();
        let command = SlotCommand::Cancel {
            job_id: job_id.clone(),
            reply,
        };
        if slot.send(command).is_err() {
            return CancelOutcome::Unknown;
        }
        answer.await.unwrap_or(CancelOutcome::Unknown)
    }

    pub async fn status(&self) -> PoolStatus {
        self.shared.status()
    }

    /// SIGHUP: new size and worker settings. Growing starts slots; shrinking retires idle
    /// slots first and busy ones after their job. New timeouts apply from the next job.
    pub async fn reconfigure(&self, size: usize, worker: WorkerConfig) {
        for index in self.shared.reconfigure(size, worker) {
            slot::spawn(&self.shared, index, None);
        }
    }

    /// Stops taking jobs, lets running jobs finish within `grace`, stops the rest. Returns the
    /// ids of jobs not finished (queued and killed); every child is gone on return.
    pub async fn shutdown(&self, grace: Duration) -> Vec<JobId> {
        self.shared.begin_shutdown();
        if tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_err()
        {
            self.shared.abort_all();
            self.shared.tasks.wait().await;
        }
        self.shared.take_unfinished()
    }
}

#[cfg(test)]
mod tests;
