//! [`Intake`]: how a submission becomes an acknowledged job.
//!
//! Admitted once (not draining, a job backend, room in the pool's queue), its captures made
//! durable in the store, then handed to dispatch; only then is it answered. A job dispatch
//! refuses is removed again, so nothing unacknowledged lingers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{JobOptions, ServiceError};
use crate::config::{BackendKind, LiveConfig};
use crate::disk::{DiskStatus, DiskWatch};
use crate::dispatch::Dispatch;
use crate::jobs::{JobId, JobRecord, JobState, PendingJob};
use crate::ledger::{Committed, JobLedger};
use crate::metrics::Metrics;
use crate::pool::{PoolHandle, Rejected};
use crate::protocol::ErrorCode;

pub struct Intake {
    config: Arc<LiveConfig>,
    ledger: Arc<JobLedger>,
    dispatch: Arc<dyn Dispatch>,
    pool: PoolHandle,
    disk: Arc<DiskWatch>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    /// Submissions refused with `queue_full` before they reached the pool.
    rejected: AtomicU64,
}

impl Intake {
    pub fn new(
        config: Arc<LiveConfig>,
        ledger: Arc<JobLedger>,
        dispatch: Arc<dyn Dispatch>,
        pool: PoolHandle,
        disk: Arc<DiskWatch>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Intake {
        Intake {
            config,
            ledger,
            dispatch,
            pool,
            disk,
            metrics,
            shutdown,
            rejected: AtomicU64::new(0),
        }
    }

    /// Jobs acknowledged since start.
    pub fn accepted(&self) -> u64 {
        self.metrics.jobs_accepted()
    }

    /// Submissions refused for a full queue before they were stored.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Counts a submission step that failed (once per submission: the caller that gives up
    /// on it reports it).
    pub fn refused(&self, error: &ServiceError) {
        self.metrics.job_refused(error.code);
    }

    /// Counts capture bytes stored from an upload.
    pub fn stored(&self, bytes: usize) {
        self.metrics.upload_bytes(bytes as u64);
    }

    /// Everything that refuses a submission before a byte of it is stored.
    pub fn admit(&self) -> Result<(), ServiceError> {
        if self.shutdown.is_cancelled() {
            return Err(ServiceError::shutting_down());
        }
        if self.config.get().global.backend == BackendKind::Burp {
            return Err(ServiceError::new(
                ErrorCode::Unsupported,
                "this daemon runs backend = burp: it answers burp status queries, not capture jobs",
            ));
        }
        if let Some(status) = self.disk.check().filter(|s| s.low) {
            return Err(disk_full(status));
        }
        self.pool.check_room().map_err(|rejected| {
            if let Rejected::QueueFull { .. } = rejected {
                self.rejected.fetch_add(1, Ordering::Relaxed);
            }
            ServiceError::from(rejected)
        })
    }

    /// Makes a received job durable and hands it to dispatch; with `[Jobs] dedupe`,
    /// identical captures with identical options answer the existing job instead.
    pub async fn settle(
        &self,
        mut pending: PendingJob,
        options: JobOptions,
    ) -> Result<Submitted, ServiceError> {
        let dedupe = self.config.get().jobs.dedupe;
        self.dispatch.prepare(&mut pending);
        match self.ledger.commit(pending, dedupe, options).await? {
            Committed::New(record) => self.accept(record).await,
            Committed::Duplicate(existing) => {
                tracing::info!(job = %existing.job_id, "duplicate submission answered with the existing job");
                let mut answer = Submitted::of(&existing);
                answer.deduplicated = Some(true);
                Ok(answer)
            }
        }
    }

    async fn accept(&self, record: JobRecord) -> Result<Submitted, ServiceError> {
        match self.dispatch.accept(&record).await {
            Ok(()) => {
                self.metrics.job_accepted();
                tracing::info!(job = %record.job_id, tag = record.tag.as_deref().unwrap_or("-"), files = record.files.len(), "job accepted");
                Ok(Submitted::of(&record))
            }
            Err(rejected) => {
                if let Err(e) = self.ledger.discard_unacknowledged(&record.job_id).await {
                    tracing::error!(job = %record.job_id, error = %e, "cannot remove refused job");
                }
                // The pool counted its own refusal.
                Err(rejected.into())
            }
        }
    }
}

/// The refusal of an upload while the disk is below `min_free`.
fn disk_full(status: DiskStatus) -> ServiceError {
    const MIB: f64 = (1 << 20) as f64;
    ServiceError::new(
        ErrorCode::DiskFull,
        format!(
            "the daemon's disk is full: {:.1} MiB free, min_free is {:.1} MiB; submit again once space is freed",
            status.free as f64 / MIB,
            status.min_free as f64 / MIB
        ),
    )
}

/// The answer to `submit`: Brocapi's fields plus pcapd's `state` and `sha256`.
#[derive(Debug, Serialize)]
pub struct Submitted {
    pub status: &'static str,
    pub files: Vec<String>,
    pub tag: Option<String>,
    pub job_id: JobId,
    pub success: bool,
    pub state: JobState,
    pub sha256: Vec<String>,
    /// With `[Jobs] dedupe`: the job is an earlier one with the same captures and options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicated: Option<bool>,
}

impl Submitted {
    pub fn of(record: &JobRecord) -> Submitted {
        Submitted {
            status: "job queued",
            files: record.files.iter().map(|file| file.name.clone()).collect(),
            tag: record.tag.clone(),
            job_id: record.job_id.clone(),
            success: true,
            state: record.state,
            sha256: record.sha256s(),
            deduplicated: None,
        }
    }
}
