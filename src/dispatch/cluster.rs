//! Several hosts, one stream: a durable job is published; hosts pull what their slots take.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ClusterStatusError, CrashPolicy, Dispatch};
use crate::cluster::{Cluster, ClusterStatus};
use crate::jobs::{JobId, JobRecord, PendingJob};
use crate::pool::Rejected;
use crate::server::BoxFuture;

pub struct ClusterDispatch {
    cluster: Arc<Cluster>,
}

impl ClusterDispatch {
    pub fn new(cluster: Arc<Cluster>) -> ClusterDispatch {
        ClusterDispatch { cluster }
    }
}

impl Dispatch for ClusterDispatch {
    fn prepare(&self, pending: &mut PendingJob) {
        pending.set_cluster(self.cluster.new_state());
    }

    /// Durable already: published now, or by this host's publisher once Redis is back.
    fn accept<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), Rejected>> {
        Box::pin(async move {
            self.cluster.publish(&record.job_id).await;
            Ok(())
        })
    }

    fn start(
        self: Arc<Self>,
        _recovered: Vec<JobId>,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> BoxFuture<'static, ()> {
        tracing::info!(
            node = self.cluster.node,
            "cluster mode: jobs come from the shared stream"
        );
        tracker.spawn(crate::cluster::run(self.cluster.clone(), shutdown));
        Box::pin(async {})
    }

    fn crash_policy(&self) -> CrashPolicy {
        CrashPolicy::Redeliver
    }

    /// The entry is done with once the record is terminal; otherwise (fenced off, given
    /// back, or unwritten at shutdown) it stays pending for whoever runs the job next.
    fn run_ended<'a>(&'a self, id: &'a JobId, settled: bool) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.cluster.slot_freed();
            if settled {
                self.cluster.finished(id).await;
            } else {
                self.cluster.release(id);
            }
        })
    }

    /// Their entries stay pending: this host's next start (or a live host, after
    /// `claim_after`) runs them again.
    fn unfinished(&self, ids: Vec<JobId>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for id in ids {
                self.cluster.release(&id);
            }
        })
    }

    fn cluster_status(&self) -> BoxFuture<'_, Result<ClusterStatus, ClusterStatusError>> {
        Box::pin(async move {
            self.cluster
                .status()
                .await
                .map_err(ClusterStatusError::Unreachable)
        })
    }
}
