//! What travels between the pool's parts: the work its queue holds and the commands a slot
//! actor takes.

use tokio::sync::oneshot;

use super::{CancelOutcome, JobSpec, QueryOutcome};
use crate::jobs::JobId;
use crate::protocol::burp::StatusQuery;

/// A job waiting in the queue, with the crashes it has already survived.
#[derive(Debug, Clone)]
pub(super) struct QueuedJob {
    pub spec: JobSpec,
    pub crashes: u32,
}

/// A burp status query waiting for a child, with where its answer goes.
#[derive(Debug)]
pub(super) struct QueuedQuery {
    pub query: StatusQuery,
    pub reply: oneshot::Sender<QueryOutcome>,
}

/// What waits in the queue: jobs for worker children, queries for burp children. Which one a
/// pool takes is fixed by its dialect, checked when work is submitted.
#[derive(Debug)]
pub(super) enum Work {
    Job(QueuedJob),
    Query(QueuedQuery),
}

impl Work {
    pub(super) fn job_id(&self) -> Option<&JobId> {
        match self {
            Work::Job(job) => Some(&job.spec.job_id),
            Work::Query(_) => None,
        }
    }
}

/// Messages to a slot actor.
#[derive(Debug)]
pub(super) enum SlotCommand {
    /// Something changed (a job was queued, shrink, shutdown): look again.
    Wake,
    Cancel {
        job_id: JobId,
        reply: oneshot::Sender<CancelOutcome>,
    },
    /// Shutdown grace is over: stop the child now, even mid-job.
    Abort,
}
