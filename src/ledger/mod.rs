//! [`JobLedger`]: the one owner of job record changes and of what must follow them.
//!
//! Every record write goes through [`JobLedger::apply`]: the change is a [`Transition`],
//! applied by one pure function ([`transition::apply`]); then, in one place, the write (not
//! when nothing changed), the fencing of run results in cluster mode ([`Fence`]), the wake-up
//! of `wait`ers, and the end of a finished job's live progress. The ledger is also the async
//! door to the store: every store call runs on a blocking thread from here ([`blocking`]).
//!
//! Invariant: the records on disk are the truth. The pool's queue and the cluster's stream
//! only hold jobs whose records say `queued`; what they lose in a crash, recovery rebuilds
//! from the records.

pub mod transition;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::jobs::{
    FileDecl, JobId, JobRecord, JobStore, ListFilter, LogInfo, PendingJob, Progress, Recovery,
    StoreError, Timestamp,
};
use crate::metrics::Metrics;
use crate::pool::JobSpec;
pub use transition::{Effect, Finish, Transition};

/// Cluster fencing: whether this host may write the result of a job's current run.
pub trait Fence: Send + Sync {
    /// `true` when `record` still names this host as the owner of the run it holds.
    fn owns(&self, id: &JobId, record: &JobRecord) -> bool;
}

/// What became of a transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Written; the record as it is now.
    Written(JobRecord),
    /// Nothing to write (settled already, or no change); the record as it is.
    Unchanged(JobRecord),
    /// Cluster: another host owns the run now; this host's result is discarded.
    Fenced,
}

impl Recorded {
    /// The record after the transition, unless it was fenced off.
    pub fn record(&self) -> Option<&JobRecord> {
        match self {
            Recorded::Written(record) | Recorded::Unchanged(record) => Some(record),
            Recorded::Fenced => None,
        }
    }
}

/// A new job ready to be committed, or the existing one it duplicates.
pub enum Committed {
    New(JobRecord),
    Duplicate(JobRecord),
}

/// The job records, their changes and who waits for them.
pub struct JobLedger {
    store: Arc<JobStore>,
    /// Job ids whose record changed; `wait` listens here.
    changes: broadcast::Sender<JobId>,
    /// Live progress of running jobs, kept in memory (writing every progress line to disk
    /// would cost an fsync each) and overlaid on what [`JobLedger::load`] returns.
    progress: Mutex<HashMap<JobId, Progress>>,
    fence: Option<Arc<dyn Fence>>,
    /// Counts jobs started, finished and dead-lettered as their records change.
    metrics: Arc<Metrics>,
}

/// Changes `wait`ers may fall behind by before they look at the record again.
const CHANGE_BACKLOG: usize = 1024;

impl JobLedger {
    /// A ledger over `store`; with `fence` (cluster mode) run results are written only by
    /// the host that owns the run.
    pub fn new(
        store: Arc<JobStore>,
        fence: Option<Arc<dyn Fence>>,
        metrics: Arc<Metrics>,
    ) -> JobLedger {
        let (changes, _) = broadcast::channel(CHANGE_BACKLOG);
        JobLedger {
            store,
            changes,
            progress: Mutex::new(HashMap::new()),
            fence,
            metrics,
        }
    }

    /// Applies `transition` to job `id` and writes the record if it changed.
    pub async fn apply(&self, id: &JobId, transition: Transition) -> Result<Recorded, StoreError> {
        let store = self.store.clone();
        let fence = self.fence.clone().filter(|_| transition.is_run_result());
        let id2 = id.clone();
        let dead_letter = matches!(transition, Transition::DeadLetter { .. });
        let (recorded, before) = blocking(move || {
            let job_dir = store.job_dir(&id2);
            let mut outcome = Recorded::Fenced;
            let mut before = None;
            store.update_if(&id2, |record| {
                if fence.as_ref().is_some_and(|f| !f.owns(&id2, record)) {
                    return Ok::<bool, StoreError>(false);
                }
                before = Some(record.state);
                let effect = transition::apply(record, transition, Timestamp::now(), &job_dir)?;
                outcome = match effect {
                    Effect::Changed => Recorded::Written(record.clone()),
                    Effect::Unchanged => Recorded::Unchanged(record.clone()),
                };
                Ok(effect == Effect::Changed)
            })?;
            Ok::<_, StoreError>((outcome, before))
        })
        .await?;
        match &recorded {
            Recorded::Written(record) => {
                if let Some(before) = before {
                    self.metrics.job_changed(before, record);
                }
                if dead_letter {
                    self.metrics.job_dead_lettered();
                }
                if record.state.is_terminal() {
                    self.lock_progress().remove(id);
                }
                let _ = self.changes.send(id.clone());
            }
            Recorded::Fenced => {
                tracing::warn!(job = %id, "this host no longer owns the job: its result is discarded")
            }
            Recorded::Unchanged(_) => {}
        }
        Ok(recorded)
    }

    /// Notes a running job's progress (memory only).
    pub fn set_progress(&self, id: JobId, progress: Progress) {
        self.lock_progress().insert(id, progress);
    }

    /// Forgets a job's live progress (its run ended).
    pub fn clear_progress(&self, id: &JobId) {
        self.lock_progress().remove(id);
    }

    fn lock_progress(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Progress>> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes from now on: the ids of jobs whose record was written.
    pub fn subscribe(&self) -> broadcast::Receiver<JobId> {
        self.changes.subscribe()
    }

    /// The record, with live progress overlaid.
    pub async fn load(&self, id: &JobId) -> Result<JobRecord, StoreError> {
        let store = self.store.clone();
        let id2 = id.clone();
        let mut record = blocking(move || store.load(&id2)).await?;
        if let Some(progress) = self.lock_progress().get(id) {
            record.progress = Some(*progress);
        }
        Ok(record)
    }

    pub async fn list(&self, filter: ListFilter) -> Result<Vec<JobRecord>, StoreError> {
        let store = self.store.clone();
        blocking(move || store.list(&filter)).await
    }

    /// A job's logs with their sizes and line counts (the job must exist).
    pub async fn logs(&self, id: &JobId) -> Result<Vec<LogInfo>, StoreError> {
        let store = self.store.clone();
        let id = id.clone();
        blocking(move || {
            store.load(&id)?;
            store.scan_logs(&id)
        })
        .await
    }

    /// The files extracted from a job's traffic (the job must exist).
    pub async fn extracted_files(
        &self,
        id: &JobId,
    ) -> Result<Vec<crate::jobs::store::ExtractedInfo>, StoreError> {
        let store = self.store.clone();
        let id = id.clone();
        blocking(move || {
            store.load(&id)?;
            store.extracted_files(&id)
        })
        .await
    }

    /// Like [`JobLedger::logs`], for a job that just finished: what is there, or nothing.
    pub async fn scan_logs(&self, id: &JobId) -> Vec<LogInfo> {
        let store = self.store.clone();
        let id = id.clone();
        blocking(move || store.scan_logs(&id))
            .await
            .unwrap_or_default()
    }

    pub async fn read_log(
        &self,
        id: JobId,
        name: String,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let store = self.store.clone();
        blocking(move || store.read_log(&id, &name, offset, length)).await
    }

    /// Opens log `name` of a job for streaming: the file and its size now.
    pub async fn open_log(
        &self,
        id: &JobId,
        name: &str,
    ) -> Result<(std::fs::File, u64), StoreError> {
        let (store, id, name) = (self.store.clone(), id.clone(), name.to_owned());
        blocking(move || {
            let path = store.log_path(&id, &name)?;
            let file = std::fs::File::open(&path).map_err(StoreError::io(&path))?;
            let size = file.metadata().map_err(StoreError::io(&path))?.len();
            Ok((file, size))
        })
        .await
    }

    /// Starts a job from files already under `spool`.
    pub async fn stage_paths(
        &self,
        spool: PathBuf,
        paths: Vec<String>,
        tag: Option<String>,
        options: Map<String, Value>,
    ) -> Result<PendingJob, StoreError> {
        let store = self.store.clone();
        blocking(move || store.stage_paths(&spool, &paths, tag, options)).await
    }

    /// Starts a job whose declared files are streamed next.
    pub async fn begin_upload(
        &self,
        decls: Vec<FileDecl>,
        tag: Option<String>,
        options: Map<String, Value>,
        max_upload: u64,
    ) -> Result<PendingJob, StoreError> {
        let store = self.store.clone();
        blocking(move || store.begin_upload(decls, tag, options, max_upload)).await
    }

    /// Starts a job whose files arrive one after another, sizes unknown.
    pub async fn begin_stream(
        &self,
        tag: Option<String>,
        options: Map<String, Value>,
    ) -> Result<PendingJob, StoreError> {
        let store = self.store.clone();
        blocking(move || store.begin_stream(tag, options)).await
    }

    /// Makes a received job durable; with `dedupe`, a job with the same captures and options
    /// is returned instead (and the new copy dropped before it is ever stored).
    pub async fn commit(
        &self,
        pending: PendingJob,
        dedupe: bool,
        options: Map<String, Value>,
    ) -> Result<Committed, StoreError> {
        let store = self.store.clone();
        blocking(move || {
            if dedupe {
                if let Some(existing) = store.find_duplicate(&pending.sha256s()?, &options)? {
                    return Ok(Committed::Duplicate(existing));
                }
            }
            pending.commit(Timestamp::now()).map(Committed::New)
        })
        .await
    }

    /// Removes a job nobody was told about (the queue refused it right after it was stored).
    pub async fn discard_unacknowledged(&self, id: &JobId) -> Result<bool, StoreError> {
        let (store, id) = (self.store.clone(), id.clone());
        blocking(move || store.discard_unacknowledged(&id)).await
    }

    /// Settles what a crash left (start-up, local mode).
    pub async fn recover(&self) -> Result<Recovery, StoreError> {
        let store = self.store.clone();
        blocking(move || store.recover(Timestamp::now())).await
    }

    /// Retention: removes jobs past `keep` or over `max_disk`.
    pub async fn sweep(&self, keep: Duration, max_disk: u64) -> Result<Vec<JobId>, StoreError> {
        let store = self.store.clone();
        blocking(move || store.sweep(keep, max_disk, Timestamp::now())).await
    }

    /// Done jobs with an output step still open, oldest first.
    pub async fn outputs_pending(&self) -> Result<Vec<JobId>, StoreError> {
        let store = self.store.clone();
        blocking(move || store.outputs_pending()).await
    }

    /// Closes the store's index cleanly (shutdown).
    pub async fn close(&self) {
        let store = self.store.clone();
        blocking(move || store.close_index()).await
    }

    /// Where a job's logs are written.
    pub fn logs_dir(&self, id: &JobId) -> PathBuf {
        self.store.logs_dir(id)
    }

    /// The pool job for a stored record.
    pub fn job_spec(&self, record: &JobRecord) -> JobSpec {
        JobSpec {
            job_id: record.job_id.clone(),
            pcaps: self.store.pcap_paths(record),
            out: self.store.logs_dir(&record.job_id),
            options: Value::Object(record.options.clone()),
            input_bytes: record.input_bytes(),
        }
    }
}

/// Runs blocking work (the store, file copies) off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
