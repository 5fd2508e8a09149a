//! Applies what the pool reports (job started, progress, finished) to the job records.
//!
//! One task consumes the pool's event channel in order, so a job's transitions are written in
//! the order they happened. A transition the disk refuses (ENOSPC, EIO) is retried with a
//! capped backoff until it is written, and while it is not the pool hands out no more work,
//! so a full disk delays jobs but never leaves one `running` after it ended; only shutdown
//! stops the retries (recovery on the next start settles what is left). Any other failure
//! (the record is gone or corrupt) is logged and the event dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::state::{blocking, Daemon};
use crate::jobs::{self, ErrorKind, JobError, JobId, JobRecord, StoreError, Timestamp};
use crate::pool::{JobOutcome, PoolEvent};
use crate::protocol::worker::FailureKind;

/// Applies events until `stop`; then applies whatever is already queued and returns. (The
/// channel never closes by itself: the daemon holds the pool handle, which holds the sender.)
pub async fn apply_pool_events(
    daemon: Arc<Daemon>,
    mut events: UnboundedReceiver<PoolEvent>,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            biased;
            event = events.recv() => match event { Some(e) => e, None => return },
            _ = stop.cancelled() => match events.try_recv() { Ok(e) => e, Err(_) => return },
        };
        apply(&daemon, event, &stop).await;
    }
}

/// First wait before writing a refused transition again; it doubles up to the cap.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

async fn apply(daemon: &Arc<Daemon>, event: PoolEvent, stop: &CancellationToken) {
    {
        match event {
            PoolEvent::Progress {
                job_id,
                bytes,
                total,
            } => {
                daemon
                    .progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(job_id, (bytes, total));
            }
            PoolEvent::Started { job_id, slot, pid } => {
                tracing::info!(job = %job_id, slot, pid, "job started");
                update(daemon, &job_id, stop, move |r| {
                    r.start(Timestamp::now(), pid)
                })
                .await;
            }
            PoolEvent::Finished { job_id, outcome } => {
                daemon
                    .progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&job_id);
                log_outcome(&job_id, &outcome);
                // Count the log lines before taking the store's write lock: reading a big
                // job's logs must not hold up every other job's transitions.
                let logs = match &outcome {
                    JobOutcome::Done { .. } => {
                        let (store, id) = (daemon.store.clone(), job_id.clone());
                        blocking(move || store.scan_logs(&id))
                            .await
                            .unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                let job_dir = daemon.store.job_dir(&job_id);
                let done = matches!(outcome, JobOutcome::Done { .. });
                if let Some(cluster) = &daemon.cluster {
                    cluster.slot_freed();
                }
                if let (Some(cluster), JobOutcome::Crashed { message, .. }) =
                    (&daemon.cluster, &outcome)
                {
                    // A crash loses the delivery: the entry goes to whichever host claims it
                    // next, until max_deliveries dead-letters it.
                    let failure = message.clone();
                    update(daemon, &job_id, stop, move |r| {
                        if let Some(c) = &mut r.cluster {
                            c.last_failure = Some(failure);
                        }
                        Ok(())
                    })
                    .await;
                    cluster.release(&job_id);
                    return;
                }
                let (forwarding, export) = daemon.outputs.settings().pending();
                let recorded = update(daemon, &job_id, stop, move |r| {
                    let now = Timestamp::now();
                    let logs = logs.clone();
                    let outcome = match outcome.clone() {
                        JobOutcome::Failed { kind, error } => JobOutcome::Failed {
                            kind,
                            error: with_client_names(error, &job_dir, r),
                        },
                        outcome => outcome,
                    };
                    match outcome {
                        JobOutcome::Done {
                            packets, warnings, ..
                        } => {
                            r.finish_done(now, logs, packets, warnings)?;
                            // In the same write as `done`: a crash cannot lose the steps.
                            r.forwarding = forwarding.clone();
                            r.export = export.clone();
                            Ok(())
                        }
                        JobOutcome::Failed { kind, error } => {
                            r.finish_failed(now, JobError::new(failure_kind(kind), error))
                        }
                        JobOutcome::Crashed { exit, message } => {
                            let mut e = JobError::new(ErrorKind::Crashed, message);
                            e.exit_code = exit.code();
                            e.signal = exit.signal();
                            r.finish_failed(now, e)
                        }
                        JobOutcome::ProtocolError { message } => {
                            r.finish_failed(now, JobError::new(ErrorKind::Internal, message))
                        }
                        JobOutcome::TimedOut { after } => r.finish_timed_out(
                            now,
                            format!(
                                "job exceeded its deadline of {:.0} s; the worker was killed",
                                after.as_secs_f64()
                            ),
                        ),
                        // `cancel` already settled a dequeued job on disk.
                        JobOutcome::Cancelled if r.state.is_terminal() => Ok(()),
                        JobOutcome::Cancelled => r.cancel(now),
                    }
                })
                .await;
                if recorded == Recorded::Written && done {
                    daemon.outputs.job_done(&job_id);
                }
                if let Some(cluster) = &daemon.cluster {
                    // Terminal on disk (by this result, or already, e.g. cancelled elsewhere):
                    // the entry is done with. A fenced result leaves it to its new owner, and
                    // an unwritten one (shutdown) to the next start.
                    let terminal = match recorded {
                        Recorded::Written => true,
                        Recorded::Fenced => false,
                        Recorded::NotWritten => daemon
                            .load(&job_id)
                            .await
                            .is_ok_and(|r| r.state.is_terminal()),
                    };
                    if terminal {
                        cluster.finished(&job_id).await;
                    } else {
                        cluster.release(&job_id);
                    }
                }
            }
        }
    }
}

/// What became of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Written,
    /// Cluster: another host owns the job now; this host's result is discarded.
    Fenced,
    /// The record refused it (the job is already terminal, or gone), or shutdown came first.
    NotWritten,
}

async fn update<F>(
    daemon: &Arc<Daemon>,
    id: &JobId,
    stop: &CancellationToken,
    change: F,
) -> Recorded
where
    F: FnOnce(&mut JobRecord) -> Result<(), jobs::TransitionError> + Clone + Send + 'static,
{
    let job_id = id;
    let mut delay = RECORD_RETRY_FIRST;
    let mut paused = false;
    loop {
        let (store, id2, attempt) = (daemon.store.clone(), id.clone(), change.clone());
        let cluster = daemon.cluster.clone();
        let result: Result<Option<JobRecord>, StoreError> = blocking(move || {
            store.update_if(&id2, |r| {
                if let Some(cluster) = &cluster {
                    if !cluster.owns(&id2, r) {
                        return Ok(false);
                    }
                }
                attempt(r).map(|()| true)
            })
        })
        .await;
        match result {
            Ok(written) => {
                if paused {
                    tracing::info!(job = %job_id, "job transition recorded; dispatching again");
                    daemon.pool.resume_dispatch();
                }
                if written.is_none() {
                    tracing::warn!(job = %job_id, "this host no longer owns the job: its result is discarded");
                    return Recorded::Fenced;
                }
                daemon.notify_change(job_id);
                return Recorded::Written;
            }
            Err(e @ StoreError::Io { .. }) => {
                if !paused {
                    tracing::error!(job = %job_id, error = %e,
                        "cannot record job transition; no new work until it is written, retrying");
                    daemon.pool.pause_dispatch();
                    paused = true;
                }
                tokio::select! {
                    _ = stop.cancelled() => {
                        tracing::error!(job = %job_id, error = %e,
                            "shutting down with a job transition unwritten; the next start settles it");
                        daemon.pool.resume_dispatch();
                        return Recorded::NotWritten;
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RECORD_RETRY_MAX);
            }
            Err(e) => {
                tracing::error!(job = %job_id, error = %e, "cannot record job transition");
                if paused {
                    daemon.pool.resume_dispatch();
                }
                return Recorded::NotWritten;
            }
        }
    }
}

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

/// The worker names captures by where the store keeps them (`…/jobs/ID/pcaps/0.pcap`); the
/// client knows them by the names it gave. Messages say those, and no other server path
/// (the record's error is what clients read; the daemon's log keeps the original).
fn with_client_names(mut error: String, job_dir: &std::path::Path, record: &JobRecord) -> String {
    let original = error.clone();
    for file in &record.files {
        let stored = job_dir.join(&file.stored);
        error = error.replace(&*stored.to_string_lossy(), &file.name);
    }
    let error = crate::protocol::client_message(&error);
    if error != original {
        tracing::info!(job = %record.job_id, error = %original, "job failed (full message)");
    }
    error
}

/// The worker's failure kind as a record error kind.
fn failure_kind(kind: FailureKind) -> ErrorKind {
    match kind {
        FailureKind::BadInput => ErrorKind::BadInput,
        FailureKind::Analyzer => ErrorKind::Analyzer,
        FailureKind::Internal => ErrorKind::Internal,
    }
}
