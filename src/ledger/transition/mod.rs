//! [`Transition`]: every change the daemon makes to a job record, and [`apply`], the one pure
//! function that makes it.
//!
//! Decided here, once, for every writer: a job already in a terminal state is not changed
//! by anything that would move it ([`Effect::Unchanged`], not an error: a cancel racing a
//! finish, a late result after a cancel); a change that leaves the record as it was is not
//! rewritten; and how a worker's outcome becomes the record's state and error.

use std::path::Path;
use std::time::Duration;

use crate::jobs::{
    ClusterState, ErrorKind, Export, ExtractedCounts, Forwarding, JobError, JobRecord, JobState,
    LogInfo, Timestamp, TransitionError,
};
use crate::pool::{ChildExit, JobOutcome};
use crate::protocol::worker::FailureKind;

/// A change to one job record.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A slot sent the job to worker `pid`.
    Started { pid: u32 },
    /// The job's run ended on this host's pool.
    Finished(Finish),
    /// A client cancelled the job (a running one after its worker was stopped).
    Cancel,
    /// Shutdown: the pool hands back a job it could not finish; the next start runs it.
    ReturnToQueue,
    /// Cluster: `node` claims the job to run it (`fresh` for a record without cluster state).
    Claim { node: String, fresh: ClusterState },
    /// Cluster: delivered too often; the job fails with `reason`.
    DeadLetter { reason: String },
    /// Cluster: the run's worker crashed; the delivery is given back with this reason.
    NoteFailure { message: String },
    /// Cluster: whether the job's stream entry exists.
    SetPublished(bool),
    /// Syslog forwarding progress.
    Forwarding(Forwarding),
    /// The export's result.
    Export(Export),
}

/// How a run ended, with what the record keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub outcome: JobOutcome,
    /// The job's logs with their row counts (scanned before the write; `done` only).
    pub logs: Vec<LogInfo>,
    /// The output steps a done job starts with, in the same write as `done`.
    pub forwarding: Option<Forwarding>,
    pub export: Option<Export>,
    /// `jobs_dir`'s file system was below `min_free` when the run ended: a failure is
    /// recorded as `disk_full`.
    pub disk_full: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The record changed and is to be written.
    Changed,
    /// Nothing to write: the job is settled already, or the change is no change.
    Unchanged,
}

impl Transition {
    /// The result of a run, which only the host that owns the run may write (cluster
    /// fencing). The others are this host's own decisions about the record.
    pub fn is_run_result(&self) -> bool {
        matches!(
            self,
            Transition::Started { .. } | Transition::Finished(_) | Transition::NoteFailure { .. }
        )
    }

    /// Whether the transition moves the job between states (and so leaves a terminal job
    /// alone).
    fn moves_state(&self) -> bool {
        matches!(
            self,
            Transition::Started { .. }
                | Transition::Finished(_)
                | Transition::Cancel
                | Transition::ReturnToQueue
                | Transition::Claim { .. }
                | Transition::DeadLetter { .. }
        )
    }
}

/// Applies `transition` to `record` at `now`. `job_dir` is where the store keeps the job
/// (worker messages name captures by their stored paths; the record says the client's names).
pub fn apply(
    record: &mut JobRecord,
    transition: Transition,
    now: Timestamp,
    job_dir: &Path,
) -> Result<Effect, TransitionError> {
    if transition.moves_state() && record.state.is_terminal() {
        return Ok(Effect::Unchanged);
    }
    let before = record.clone();
    match transition {
        Transition::Started { pid } => record.start(now, pid)?,
        Transition::Finished(finish) => finish_run(record, finish, now, job_dir)?,
        Transition::Cancel => record.cancel(now)?,
        Transition::ReturnToQueue => {
            // A job that never started is queued on disk already.
            if record.state != JobState::Queued {
                record.return_to_queue(now)?;
            }
        }
        Transition::Claim { node, fresh } => {
            if record.cluster.is_none() {
                record.cluster = Some(fresh);
            }
            record.claim(now, &node)?;
        }
        Transition::DeadLetter { reason } => record.dead_letter(now, reason)?,
        Transition::NoteFailure { message } => {
            if let Some(cluster) = &mut record.cluster {
                cluster.last_failure = Some(message);
            }
        }
        Transition::SetPublished(published) => {
            if let Some(cluster) = &mut record.cluster {
                cluster.published = published;
            }
        }
        Transition::Forwarding(state) => record.forwarding = Some(state),
        Transition::Export(state) => record.export = Some(state),
    }
    Ok(if *record == before {
        Effect::Unchanged
    } else {
        Effect::Changed
    })
}

fn finish_run(
    record: &mut JobRecord,
    finish: Finish,
    now: Timestamp,
    job_dir: &Path,
) -> Result<(), TransitionError> {
    let Finish {
        outcome,
        logs,
        forwarding,
        export,
        disk_full,
    } = finish;
    match outcome {
        JobOutcome::Done {
            packets,
            warnings,
            files_extracted,
            detect_hits,
            ..
        } => {
            record.finish_done(now, logs, packets, warnings)?;
            record.forwarding = forwarding;
            record.export = export;
            record.extracted =
                (files_extracted > 0 || detect_hits > 0).then_some(ExtractedCounts {
                    files: files_extracted,
                    detect_hits,
                });
            Ok(())
        }
        JobOutcome::Cancelled => record.cancel(now),
        JobOutcome::TimedOut { after } => record.finish_timed_out(now, timed_out_message(after)),
        outcome => {
            let mut error = run_error(&outcome, record, job_dir)
                .expect("every outcome but done, cancelled and timed out is an error");
            if disk_full {
                error.kind = ErrorKind::DiskFull;
                error.message = crate::protocol::client_message(&format!(
                    "disk full: jobs_dir's file system is below min_free, so the job's logs \
                     could not be written ({})",
                    error.message
                ));
            }
            record.finish_failed(now, error)
        }
    }
}

/// The error a failed run leaves in the record: `None` for the outcomes that are not
/// failures (`done`, `cancelled`) or have a state of their own (`timed_out`).
pub fn run_error(outcome: &JobOutcome, record: &JobRecord, job_dir: &Path) -> Option<JobError> {
    match outcome {
        JobOutcome::Done { .. } | JobOutcome::Cancelled | JobOutcome::TimedOut { .. } => None,
        JobOutcome::Failed { kind, error } => Some(JobError::new(
            failure_kind(*kind),
            with_client_names(error, job_dir, record),
        )),
        JobOutcome::Crashed { exit, message } => Some(crash_error(exit, message)),
        JobOutcome::ProtocolError { message } => {
            Some(JobError::new(ErrorKind::Internal, message.clone()))
        }
    }
}

fn crash_error(exit: &ChildExit, message: &str) -> JobError {
    let mut error = JobError::new(ErrorKind::Crashed, message);
    error.exit_code = exit.code();
    error.signal = exit.signal();
    error
}

fn timed_out_message(after: Duration) -> String {
    format!(
        "job exceeded its deadline of {:.0} s; the worker was killed",
        after.as_secs_f64()
    )
}

/// The worker's failure kind as a record error kind.
fn failure_kind(kind: FailureKind) -> ErrorKind {
    match kind {
        FailureKind::BadInput => ErrorKind::BadInput,
        FailureKind::Analyzer => ErrorKind::Analyzer,
        FailureKind::Internal => ErrorKind::Internal,
    }
}

/// The worker names captures by where the store keeps them (`…/jobs/ID/pcaps/0.pcap`); the
/// client knows them by the names it gave. Messages say those, and no other server path
/// (the record's error is what clients read; the daemon's log keeps the original).
fn with_client_names(error: &str, job_dir: &Path, record: &JobRecord) -> String {
    let mut named = error.to_owned();
    for file in &record.files {
        let stored = job_dir.join(&file.stored);
        named = named.replace(&*stored.to_string_lossy(), &file.name);
    }
    let named = crate::protocol::client_message(&named);
    if named != error {
        tracing::info!(job = %record.job_id, error, "job failed (full message)");
    }
    named
}

#[cfg(test)]
mod tests;
