//! The pool: N slots, each owning one long-lived worker child, fed from one bounded FIFO queue.
//!
//! Layout: [`PoolHandle`] is what the daemon holds; the queue, the per-slot status and the
//! counters live in one mutex-guarded [`state::PoolState`]; each slot is an actor task
//! (`slot.rs`) that owns its child (`child.rs`), pulls the oldest queued job whenever its child
//! is idle, and settles every job it took with exactly one [`PoolEvent::Finished`]. Jobs are
//! only ever taken by an idle, ready slot, so dispatch needs no separate dispatcher task.
//! Restart intensity is a pure policy (`restart.rs`); the wire format is `protocol.rs`.
//!
//! Event invariant: every accepted job gets exactly one `Finished` event, except the jobs
//! that [`PoolHandle::shutdown`] returns (the caller requeues those on disk).

mod child;
pub mod protocol;
mod restart;
mod slot;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::WorkerConfig;
use state::{QueuedJob, Shared, SlotCommand};

/// What the pool runs: `program args…` per slot, speaking the worker protocol.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub size: usize,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub worker: WorkerConfig,
    /// Queued jobs beyond which `submit` answers `QueueFull`.
    pub max_queue: usize,
}

/// One job for a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub job_id: String,
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
        job_id: String,
        slot: usize,
        pid: u32,
    },
    Progress {
        job_id: String,
        bytes: u64,
        total: u64,
    },
    Finished {
        job_id: String,
        outcome: JobOutcome,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Done {
        logs: Vec<String>,
        packets: u64,
        warnings: Vec<String>,
    },
    /// The worker answered `failed`; `kind` is bad_input, analyzer or internal.
    Failed {
        kind: String,
        error: String,
    },
    /// The child died while running the job (after any retries).
    Crashed {
        exit_code: Option<i32>,
        signal: Option<i32>,
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
    #[error("queue full ({max} jobs waiting)")]
    QueueFull { max: usize },
    #[error("the pool is shutting down")]
    ShuttingDown,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    pub slot: usize,
    pub pid: Option<u32>,
    pub state: SlotState,
    pub job: Option<String>,
    /// Jobs this slot settled, whatever the outcome.
    pub jobs_done: u64,
    /// Children started in this slot after its first (crash, breach, timeout, cancel, recycling).
    pub restarts: u64,
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
    /// True while any slot is backing off after repeated failures.
    pub degraded: bool,
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
        shared.spawn_slot(index, Some(tx));
        first_starts.push(rx);
    }
    for started in first_starts {
        // An error only means the slot task ended before reporting, which is also "failed".
        let _ = started.await;
    }
    Ok((PoolHandle { shared }, receiver))
}

impl PoolHandle {
    /// Queues a job (FIFO); refuses at once when the queue is full or the pool stops.
    pub fn submit(&self, job: JobSpec) -> Result<(), Rejected> {
        self.shared.submit(QueuedJob {
            spec: job,
            crashes: 0,
        })
    }

    /// Removes a queued job, or stops the child running it (and replaces the child).
    pub async fn cancel(&self, job_id: &str) -> CancelOutcome {
        let slot = match self.shared.cancel_queued_or_find(job_id) {
            Ok(outcome) => return outcome,
            Err(None) => return CancelOutcome::Unknown,
            Err(Some(slot)) => slot,
        };
        let (reply, answer) = oneshot::channel();
        let command = SlotCommand::Cancel {
            job_id: job_id.to_string(),
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
        self.shared.reconfigure(size, worker);
    }

    /// Stops taking jobs, lets running jobs finish within `grace`, stops the rest. Returns the
    /// ids of jobs not finished (queued and killed); every child is gone on return.
    pub async fn shutdown(&self, grace: Duration) -> Vec<String> {
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
