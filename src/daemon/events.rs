//! Applies what the pool reports (job started, progress, finished) through the ledger.
//!
//! One task consumes the pool's event channel in order, so a job's transitions are written in
//! the order they happened. A transition the disk refuses (ENOSPC, EIO) is retried with a
//! capped backoff until it is written, and while it is not the pool hands out no more work,
//! so a full disk delays jobs but never leaves one `running` after it ended; only shutdown
//! stops the retries (recovery on the next start settles what is left). Any other failure
//! (the record is gone or corrupt) is logged and the event dropped.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::disk::{self, DiskWatch};
use crate::dispatch::{CrashPolicy, Dispatch};
use crate::jobs::{JobId, Progress, StoreError};
use crate::ledger::{blocking, Finish, JobLedger, Recorded, Transition};
use crate::output::Outputs;
use crate::pool::{JobOutcome, PauseReason, PoolEvent, PoolHandle};

/// What the event task works with.
pub struct PoolEvents {
    pub ledger: Arc<JobLedger>,
    pub dispatch: Arc<dyn Dispatch>,
    pub outputs: Arc<Outputs>,
    pub pool: PoolHandle,
    pub disk: Arc<DiskWatch>,
}

impl PoolEvents {
    /// Applies events until `stop`; then applies whatever is already queued and returns.
    /// (The channel never closes by itself: the pool handle holds the sender.)
    pub async fn run(self, mut events: UnboundedReceiver<PoolEvent>, stop: CancellationToken) {
        loop {
            let event = tokio::select! {
                biased;
                event = events.recv() => match event { Some(e) => e, None => return },
                _ = stop.cancelled() => match events.try_recv() { Ok(e) => e, Err(_) => return },
            };
            self.apply(event, &stop).await;
        }
    }

    async fn apply(&self, event: PoolEvent, stop: &CancellationToken) {
        match event {
            PoolEvent::Progress {
                job_id,
                bytes,
                total,
            } => self.ledger.set_progress(job_id, Progress { bytes, total }),
            PoolEvent::Started { job_id, slot, pid } => {
                tracing::info!(job = %job_id, slot, pid, "job started");
                self.record(&job_id, Transition::Started { pid }, stop)
                    .await;
            }
            PoolEvent::Finished { job_id, outcome } => self.finished(job_id, outcome, stop).await,
        }
    }

    async fn finished(&self, job_id: JobId, outcome: JobOutcome, stop: &CancellationToken) {
        self.ledger.clear_progress(&job_id);
        log_outcome(&job_id, &outcome);
        if let (CrashPolicy::Redeliver, JobOutcome::Crashed { message, .. }) =
            (self.dispatch.crash_policy(), &outcome)
        {
            let note = Transition::NoteFailure {
                message: message.clone(),
            };
            self.record(&job_id, note, stop).await;
            self.dispatch.run_ended(&job_id, false).await;
            return;
        }
        // Count the log lines before the write: reading a big job's logs must not hold up
        // every other job's transitions.
        let done = matches!(outcome, JobOutcome::Done { .. });
        let logs = if done {
            self.ledger.scan_logs(&job_id).await
        } else {
            Vec::new()
        };
        let (forwarding, export) = self.outputs.settings().pending();
        let disk_full = !done && {
            let disk = self.disk.clone();
            blocking(move || disk.check()).await.is_some_and(|s| s.low)
        };
        let finish = Transition::Finished(Finish {
            outcome,
            logs,
            forwarding,
            export,
            disk_full,
        });
        let recorded = self.record(&job_id, finish, stop).await;
        if done && matches!(recorded, Some(Recorded::Written(_))) {
            self.outputs.job_done(&job_id);
        }
        // Terminal on disk (by this result, or already, e.g. cancelled elsewhere): the run is
        // done with. A fenced result leaves it to its new owner, and an unwritten one
        // (shutdown) to the next start.
        let settled = match &recorded {
            Some(recorded) => recorded.record().is_some_and(|r| r.state.is_terminal()),
            None => self
                .ledger
                .load(&job_id)
                .await
                .is_ok_and(|r| r.state.is_terminal()),
        };
        self.dispatch.run_ended(&job_id, settled).await;
    }

    /// Writes a transition, retrying while the disk refuses it; `None` when it was not
    /// written (shutdown came first, or the record is gone or refuses it).
    async fn record(
        &self,
        id: &JobId,
        transition: Transition,
        stop: &CancellationToken,
    ) -> Option<Recorded> {
        let mut backoff = Backoff::new(RECORD_RETRY_FIRST, RECORD_RETRY_MAX);
        let mut paused = false;
        let result = loop {
            match self.ledger.apply(id, transition.clone()).await {
                Err(StoreError::Io { source, .. })
                    if disk::is_no_space(&source) && self.disk.release_reserve() =>
                {
                    // The reserve's blocks are free now: write again at once.
                    continue;
                }
                Err(e @ StoreError::Io { .. }) => {
                    if !paused {
                        tracing::error!(job = %id, error = %e,
                            "cannot record job transition; no new work until it is written, retrying");
                        self.pool.pause_dispatch(PauseReason::RecordUnwritten);
                        paused = true;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => {
                            tracing::error!(job = %id, error = %e,
                                "shutting down with a job transition unwritten; the next start settles it");
                            break None;
                        }
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "cannot record job transition");
                    break None;
                }
                Ok(recorded) => {
                    if paused {
                        tracing::info!(job = %id, "job transition recorded; dispatching again");
                    }
                    break Some(recorded);
                }
            }
        };
        if paused {
            self.pool.resume_dispatch(PauseReason::RecordUnwritten);
        }
        result
    }
}

/// First wait before writing a refused transition again; it doubles up to the cap.
const RECORD_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const RECORD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

fn log_outcome(job_id: &JobId, outcome: &JobOutcome) {
    match outcome {
        JobOutcome::Done { packets, .. } => tracing::info!(job = %job_id, packets, "job done"),
        JobOutcome::Failed { kind, error } => {
            tracing::warn!(job = %job_id, kind = kind.as_str(), error, "job failed")
        }
        JobOutcome::Crashed { exit, message } => {
            tracing::warn!(job = %job_id, exit = %exit.describe(), message, "worker crashed during job")
        }
        JobOutcome::TimedOut { after } => tracing::warn!(job = %job_id, ?after, "job timed out"),
        JobOutcome::Cancelled => tracing::info!(job = %job_id, "job cancelled"),
        JobOutcome::ProtocolError { message } => {
            tracing::warn!(job = %job_id, message, "worker broke the protocol")
        }
    }
}
