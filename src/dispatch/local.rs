//! One host, one pool: a durable job goes straight into the pool's queue.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ClusterStatusError, CrashPolicy, Dispatch};
use crate::cluster::ClusterStatus;
use crate::jobs::{JobId, JobRecord, PendingJob};
use crate::ledger::{JobLedger, Transition};
use crate::pool::{Admission, PoolHandle, Rejected};
use crate::server::BoxFuture;

pub struct LocalDispatch {
    ledger: Arc<JobLedger>,
    pool: PoolHandle,
}

impl LocalDispatch {
    pub fn new(ledger: Arc<JobLedger>, pool: PoolHandle) -> LocalDispatch {
        LocalDispatch { ledger, pool }
    }
}

impl Dispatch for LocalDispatch {
    fn prepare(&self, _pending: &mut PendingJob) {}

    fn accept<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), Rejected>> {
        Box::pin(async move {
            self.pool
                .submit(self.ledger.job_spec(record), Admission::New)
        })
    }

    fn start(
        self: Arc<Self>,
        recovered: Vec<JobId>,
        _shutdown: CancellationToken,
        _tracker: &TaskTracker,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            for id in recovered {
                match self.ledger.load(&id).await {
                    Ok(record) => {
                        let spec = self.ledger.job_spec(&record);
                        if let Err(e) = self.pool.submit(spec, Admission::Recovered) {
                            tracing::error!(job = %id, error = ?e, "cannot requeue recovered job");
                        }
                    }
                    Err(e) => tracing::error!(job = %id, error = %e, "cannot load recovered job"),
                }
            }
        })
    }

    fn crash_policy(&self) -> CrashPolicy {
        CrashPolicy::Settle
    }

    fn run_ended<'a>(&'a self, _id: &'a JobId, _settled: bool) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Marks them queued again on disk, so the next start runs them.
    fn unfinished(&self, ids: Vec<JobId>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for id in ids {
                match self.ledger.apply(&id, Transition::ReturnToQueue).await {
                    Ok(_) => tracing::info!(job = %id, "requeued for the next start"),
                    Err(e) => {
                        tracing::error!(job = %id, error = %e, "cannot requeue job on shutdown")
                    }
                }
            }
        })
    }

    fn cluster_status(&self) -> BoxFuture<'_, Result<ClusterStatus, ClusterStatusError>> {
        Box::pin(async { Err(ClusterStatusError::NotClustered) })
    }
}
