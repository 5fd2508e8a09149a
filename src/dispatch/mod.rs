//! [`Dispatch`]: how a durable job reaches a worker slot, chosen once at start-up.
//!
//! [`LocalDispatch`] hands jobs straight to this host's pool; [`ClusterDispatch`] publishes
//! them to the cluster's shared stream, from which every host pulls as many as it has idle
//! slots. The job service and the pool-event task talk to the trait only, so neither knows
//! which mode runs.

mod cluster;
mod local;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::ClusterStatus;
use crate::jobs::{JobId, JobRecord, PendingJob};
use crate::pool::Rejected;
use crate::server::BoxFuture;
pub use cluster::ClusterDispatch;
pub use local::LocalDispatch;

/// Why `cluster` has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterStatusError {
    #[error("this daemon runs without [Cluster]: `pool` shows its slots")]
    NotClustered,
    #[error("{0}")]
    Unreachable(crate::cluster::queue::QueueError),
}

/// What becomes of a run whose worker crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPolicy {
    /// The job fails here (the pool already retried it as configured).
    Settle,
    /// The delivery is given back: another host (or this one) runs the job again, until
    /// the stream's delivery limit dead-letters it.
    Redeliver,
}

pub trait Dispatch: Send + Sync {
    /// Fills in what this mode records with a new job, before it is committed.
    fn prepare(&self, pending: &mut PendingJob);

    /// Hands over a durable, queued job. A refusal leaves the job to the caller, who removes
    /// it (nobody was told about it yet).
    fn accept<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), Rejected>>;

    /// Starts what this mode runs in the background, and puts back in line the jobs that
    /// recovery found queued (local mode; a cluster host's come back from the stream).
    fn start(
        self: Arc<Self>,
        recovered: Vec<JobId>,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> BoxFuture<'static, ()>;

    fn crash_policy(&self) -> CrashPolicy;

    /// A run on this host's pool ended; `settled` says whether the job's record is terminal.
    fn run_ended<'a>(&'a self, id: &'a JobId, settled: bool) -> BoxFuture<'a, ()>;

    /// Shutdown: the jobs the pool could not finish, for the next start.
    fn unfinished(&self, ids: Vec<JobId>) -> BoxFuture<'_, ()>;

    /// The answer to `cluster`.
    fn cluster_status(&self) -> BoxFuture<'_, Result<ClusterStatus, ClusterStatusError>>;
}
