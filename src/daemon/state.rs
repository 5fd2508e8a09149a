//! [`Daemon`]: the state every connection and task shares.
//!
//! Invariant: the job store on disk is the source of truth. The pool's queue (the one queue)
//! only holds jobs whose records say `queued`; whatever it loses in a crash, recovery
//! rebuilds from the records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::monitor::QueryCache;
use crate::config::Config;
use crate::jobs::{JobId, JobRecord, JobStore};
use crate::pool::{Admission, JobSpec, PoolHandle, Rejected};
use crate::protocol::burp::BurpVersion;
use crate::server::auth::Auth;

/// Live progress of running jobs, kept in memory (writing every progress line to disk
/// would cost an fsync each) and overlaid on status answers.
pub type ProgressTable = Mutex<HashMap<JobId, (u64, u64)>>;

pub struct Daemon {
    /// Itself, for tasks that must own the daemon (uploads); set by `Arc::new_cyclic`.
    pub me: std::sync::Weak<Daemon>,
    pub config: RwLock<Arc<Config>>,
    pub auth: Auth,
    pub store: Arc<JobStore>,
    pub pool: PoolHandle,
    /// Job ids whose record changed; `wait` listens here.
    pub changes: broadcast::Sender<JobId>,
    pub progress: ProgressTable,
    pub started: Instant,
    /// Cancelled when the daemon starts to drain (SIGTERM/SIGINT); the one shutdown signal.
    pub shutdown: CancellationToken,
    pub accepted: AtomicU64,
    /// Submissions refused with `queue_full` before they reached the pool.
    pub rejected: AtomicU64,
    /// `burpbin -V`, checked at start (backend = burp only).
    pub burp_client_version: Option<BurpVersion>,
    /// Recent burp answers (bui-monitor's 5-second status cache).
    pub query_cache: QueryCache,
    /// Syslog forwarding and export of done jobs.
    pub outputs: crate::output::Outputs,
    /// With `[Cluster]`: the shared queue; jobs then enter the pool from the stream.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Daemon {
    /// An owning handle to this daemon. Every `Daemon` lives in an `Arc` built by
    /// `Arc::new_cyclic`, so the upgrade only fails during teardown.
    pub fn self_arc(&self) -> Arc<Daemon> {
        self.me.upgrade().expect("daemon used after teardown")
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pool job for a stored record.
    pub fn job_spec(&self, record: &JobRecord) -> JobSpec {
        JobSpec {
            job_id: record.job_id.clone(),
            pcaps: self.store.pcap_paths(record),
            out: self.store.logs_dir(&record.job_id),
            options: serde_json::Value::Object(record.options.clone()),
            input_bytes: record.files.iter().map(|f| f.size).sum(),
        }
    }

    /// Hands a stored, queued job to the pool's queue.
    pub fn enqueue(&self, spec: JobSpec, admission: Admission) -> Result<(), Rejected> {
        self.pool.submit(spec, admission)
    }

    pub fn notify_change(&self, job_id: &JobId) {
        let _ = self.changes.send(job_id.clone());
    }

    /// Loads a record on a blocking thread, with live progress overlaid.
    pub async fn load(&self, id: &JobId) -> Result<JobRecord, crate::jobs::StoreError> {
        let store = self.store.clone();
        let id2 = id.clone();
        let mut record = blocking(move || store.load(&id2)).await?;
        if let Some(&(bytes, total)) = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            record.progress = Some(crate::jobs::Progress { bytes, total });
        }
        Ok(record)
    }

    /// The pool's status with the router's own refusals counted in.
    pub async fn pool_status(&self) -> crate::pool::PoolStatus {
        let mut status = self.pool.status().await;
        status.rejected += self.rejected.load(Ordering::Relaxed);
        status
    }

    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn is_draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
