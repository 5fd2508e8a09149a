//! The job service: executes a [`Command`] against the store and the pool.
//!
//! Both front doors call here: the TLS protocol's router (`router.rs`) and the HTTP gateway
//! (`crate::http`). A submission is admitted once (not draining, a job backend, room in the
//! pool's queue), its captures become durable in the store, then it enters the pool's one
//! queue; only then is it answered. Store calls run on blocking threads.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::state::{blocking, Daemon};
use crate::config::BackendKind;
use crate::jobs::{JobId, JobRecord, ListFilter, PendingJob, StoreError, Timestamp};
use crate::pool::{Admission, CancelOutcome, Rejected};
use crate::protocol::ErrorCode;
use crate::service::{
    CaptureSource, Command, FetchArgs, JobOptions, ServiceError, SubmitArgs, Tag,
};

/// How long `cancel` of a running job waits for its child to be stopped and recorded.
const CANCEL_SETTLE: Duration = Duration::from_secs(30);
/// `wait` looks at the record at least this often (progress is not broadcast).
const WAIT_POLL: Duration = Duration::from_secs(1);

/// What a command answers.
pub enum Answer {
    Json(Value),
    /// A log's bytes (`fetch`).
    Bytes(Vec<u8>),
    /// A submission whose declared files are to be streamed next.
    Upload(Box<DeclaredUpload>),
}

impl Daemon {
    /// Runs one command.
    pub async fn execute(self: &Arc<Self>, command: Command) -> Result<Answer, ServiceError> {
        let json = match command {
            Command::Submit(args) => return self.submit(args).await,
            Command::Status(id) => record_json(&self.load(&id).await?),
            Command::Wait { job_id, timeout } => record_json(&self.wait(&job_id, timeout).await?),
            Command::List(filter) => json!({ "jobs": self.list(filter).await? }),
            Command::Logs(id) => self.logs(id).await?,
            Command::Files(id) => self.files(id).await?,
            Command::Fetch(args) => return self.fetch(args).await.map(Answer::Bytes),
            Command::Cancel(id) => record_json(&self.cancel(&id).await?),
            Command::Pool => serde_json::to_value(self.pool_status().await).unwrap_or(Value::Null),
            Command::Cluster => self.cluster_status().await?,
            Command::Ping => json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime": self.uptime_secs(),
                "backend": self.config().global.backend.name(),
            }),
        };
        Ok(Answer::Json(json))
    }

    async fn cluster_status(&self) -> Result<Value, ServiceError> {
        let Some(cluster) = &self.cluster else {
            return Err(ServiceError::new(
                ErrorCode::Unsupported,
                "this daemon runs without [Cluster]: `pool` shows its slots",
            ));
        };
        cluster
            .status()
            .await
            .map_err(|e| ServiceError::new(ErrorCode::Unavailable, e.to_string()))
    }

    /// Everything that refuses a submission before a byte of it is stored.
    fn admit(&self) -> Result<(), ServiceError> {
        if self.is_draining() {
            return Err(ServiceError::shutting_down());
        }
        if self.config().global.backend == BackendKind::Burp {
            return Err(ServiceError::new(
                ErrorCode::Unsupported,
                "this daemon runs backend = burp: it answers burp status queries, not capture jobs",
            ));
        }
        self.pool.check_room().map_err(|rejected| {
            if let Rejected::QueueFull { .. } = rejected {
                self.rejected.fetch_add(1, Ordering::Relaxed);
            }
            ServiceError::from(rejected)
        })
    }

    async fn submit(self: &Arc<Self>, args: SubmitArgs) -> Result<Answer, ServiceError> {
        self.admit()?;
        let SubmitArgs {
            source,
            tag,
            options,
        } = args;
        let tag = tag.map(Tag::into_inner);
        let config = self.config();
        match source {
            CaptureSource::Paths(paths) => {
                let Some(spool) = config.global.spool_dir.clone() else {
                    return Err(ServiceError::new(
                        ErrorCode::Unsupported,
                        "\"paths\" submissions need spool_dir in [Global]",
                    ));
                };
                let store = self.store.clone();
                let staged_options = options.clone();
                let pending =
                    blocking(move || store.stage_paths(&spool, &paths, tag, staged_options))
                        .await?;
                self.settle(pending, options).await.map(Answer::Json)
            }
            CaptureSource::Upload(decls) => {
                let max_upload = config.global.max_upload;
                if let Some(decl) = decls.iter().find(|d| max_upload > 0 && d.size > max_upload) {
                    return Err(ServiceError::new(
                        ErrorCode::UploadTooLarge,
                        format!(
                            "file {:?} is {} bytes, over max_upload ({max_upload} bytes)",
                            decl.name, decl.size
                        ),
                    ));
                }
                let sizes: Vec<u64> = decls.iter().map(|d| d.size).collect();
                let store = self.store.clone();
                let upload_options = options.clone();
                let pending =
                    blocking(move || store.begin_upload(decls, tag, upload_options, max_upload))
                        .await?;
                Ok(Answer::Upload(Box::new(DeclaredUpload {
                    sizes,
                    upload: Upload::new(self.clone(), pending, options),
                })))
            }
        }
    }

    /// Starts a submission whose files arrive one after another with sizes unknown up front
    /// (the HTTP gateway's multipart parts).
    pub async fn open_stream(
        self: &Arc<Self>,
        tag: Option<Tag>,
        options: JobOptions,
    ) -> Result<StreamUpload, ServiceError> {
        self.admit()?;
        let store = self.store.clone();
        let tag = tag.map(Tag::into_inner);
        let stream_options = options.clone();
        let pending = blocking(move || store.begin_stream(tag, stream_options)).await?;
        Ok(StreamUpload {
            max_upload: self.config().global.max_upload,
            current: None,
            upload: Upload::new(self.clone(), pending, options),
        })
    }

    /// Makes a received job durable and queues it; with `[Jobs] dedupe`, identical captures
    /// with identical options return the existing job instead (the new copy is dropped
    /// before it is ever stored).
    async fn settle(
        self: &Arc<Self>,
        pending: PendingJob,
        options: JobOptions,
    ) -> Result<Value, ServiceError> {
        let dedupe = self.config().jobs.dedupe;
        let store = self.store.clone();
        let mut pending = pending;
        if let Some(cluster) = &self.cluster {
            pending.set_cluster(cluster.new_state());
        }
        let outcome = blocking(
            move || -> Result<Result<JobRecord, JobRecord>, StoreError> {
                if dedupe {
                    if let Some(existing) = store.find_duplicate(&pending.sha256s()?, &options)? {
                        return Ok(Err(existing));
                    }
                }
                pending.commit(Timestamp::now()).map(Ok)
            },
        )
        .await?;
        match outcome {
            Ok(record) => self.accept(record).await,
            Err(existing) => {
                tracing::info!(job = %existing.job_id, "duplicate submission answered with the existing job");
                let mut answer = existing.submit_answer();
                answer["deduplicated"] = json!(true);
                Ok(answer)
            }
        }
    }

    /// A durable job enters the pool; if the pool refuses, the job is removed again so
    /// nothing unacknowledged lingers.
    async fn accept(self: &Arc<Self>, record: JobRecord) -> Result<Value, ServiceError> {
        if let Some(cluster) = &self.cluster {
            // Durable already; published now, or by this host's publisher once Redis is back.
            cluster.publish(self, &record.job_id).await;
            self.accepted.fetch_add(1, Ordering::Relaxed);
            tracing::info!(job = %record.job_id, tag = record.tag.as_deref().unwrap_or("-"), "job accepted (cluster)");
            return Ok(record.submit_answer());
        }
        match self.enqueue(self.job_spec(&record), Admission::New) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job = %record.job_id, tag = record.tag.as_deref().unwrap_or("-"), files = record.files.len(), "job accepted");
                Ok(record.submit_answer())
            }
            Err(rejected) => {
                let store = self.store.clone();
                let id = record.job_id.clone();
                if let Err(e) = blocking(move || store.discard_unacknowledged(&id)).await {
                    tracing::error!(job = %record.job_id, error = %e, "cannot remove refused job");
                }
                // The pool counted its own refusal.
                Err(rejected.into())
            }
        }
    }

    /// The record once it is terminal, or as it stands after `limit` (or at shutdown).
    pub async fn wait(&self, id: &JobId, limit: Duration) -> Result<JobRecord, ServiceError> {
        let deadline = Instant::now() + limit;
        // Subscribe before loading so a change between the two is not missed.
        let mut changes = self.changes.subscribe();
        loop {
            let record = self.load(id).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            // Draining: nothing more will happen to it in this run; answer as it stands.
            if record.state.is_terminal() || remaining.is_zero() || self.is_draining() {
                return Ok(record);
            }
            let change = async {
                loop {
                    match changes.recv().await {
                        Ok(changed) if changed == *id => break,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => {}
                _ = tokio::time::timeout(remaining.min(WAIT_POLL), change) => {}
            }
        }
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<JobRecord>, ServiceError> {
        let store = self.store.clone();
        Ok(blocking(move || store.list(&filter)).await?)
    }

    async fn logs(&self, id: JobId) -> Result<Value, ServiceError> {
        let store = self.store.clone();
        let id2 = id.clone();
        let logs = blocking(move || {
            store.load(&id2)?;
            store.scan_logs(&id2)
        })
        .await?;
        Ok(json!({ "job_id": id.as_str(), "logs": logs }))
    }

    /// The job's extracted files (docs/files.md): names `fetch` takes, and sizes.
    async fn files(&self, id: JobId) -> Result<Value, ServiceError> {
        let store = self.store.clone();
        let id2 = id.clone();
        let files = blocking(move || {
            store.load(&id2)?;
            store.extracted_files(&id2)
        })
        .await?;
        Ok(json!({ "job_id": id.as_str(), "files": files }))
    }

    async fn fetch(&self, args: FetchArgs) -> Result<Vec<u8>, ServiceError> {
        let store = self.store.clone();
        let FetchArgs {
            job_id,
            log,
            offset,
            length,
        } = args;
        Ok(blocking(move || store.read_log(&job_id, &log, offset, length)).await?)
    }

    async fn cancel(&self, id: &JobId) -> Result<JobRecord, ServiceError> {
        let record = self.load(id).await?;
        if record.state.is_terminal() {
            return Ok(record);
        }
        match self.pool.cancel(id).await {
            // Queued, or between the store and the pool: cancel on disk.
            CancelOutcome::Dequeued | CancelOutcome::Unknown => self.settle_cancelled(id).await,
            CancelOutcome::Killed => {
                // The pool reports Finished{Cancelled}; the event task records it. Wait for it.
                let record = self.wait(id, CANCEL_SETTLE).await?;
                Ok(record)
            }
        }
    }

    /// Opens log `name` of a job for streaming: the file and its size now.
    pub async fn open_log(
        &self,
        id: &JobId,
        name: &str,
    ) -> Result<(std::fs::File, u64), ServiceError> {
        let (store, id, name) = (self.store.clone(), id.clone(), name.to_owned());
        let opened = blocking(move || -> Result<_, StoreError> {
            let path = store.log_path(&id, &name)?;
            let file = std::fs::File::open(&path).map_err(StoreError::io(&path))?;
            let size = file.metadata().map_err(StoreError::io(&path))?.len();
            Ok((file, size))
        })
        .await?;
        Ok(opened)
    }

    async fn settle_cancelled(&self, id: &JobId) -> Result<JobRecord, ServiceError> {
        let store = self.store.clone();
        let id2 = id.clone();
        let record = blocking(move || {
            store.update(&id2, |r| {
                if r.state.is_terminal() {
                    return Ok(());
                }
                r.cancel(Timestamp::now())
            })
        })
        .await?;
        self.notify_change(id);
        Ok(record)
    }
}

/// A job record as answered by `status`, `wait` and `cancel`.
pub fn record_json(record: &JobRecord) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

/// An upload in progress: owns the pending job until it is committed or dropped (which
/// removes what was received).
struct Upload {
    daemon: Arc<Daemon>,
    options: JobOptions,
    pending: Option<PendingJob>,
}

impl Upload {
    fn new(daemon: Arc<Daemon>, pending: PendingJob, options: JobOptions) -> Upload {
        Upload {
            daemon,
            options,
            pending: Some(pending),
        }
    }

    /// Runs `step` on the pending job on a blocking thread.
    async fn with_pending<T: Send + 'static>(
        &mut self,
        step: impl FnOnce(&mut PendingJob) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let mut pending = self.pending.take().ok_or_else(finished)?;
        let (pending, result) = blocking(move || {
            let result = step(&mut pending);
            (pending, result)
        })
        .await;
        self.pending = Some(pending);
        Ok(result?)
    }

    async fn finish(mut self) -> Result<Value, ServiceError> {
        let pending = self.pending.take().ok_or_else(finished)?;
        let options = std::mem::take(&mut self.options);
        self.daemon.settle(pending, options).await
    }
}

fn finished() -> ServiceError {
    ServiceError::new(ErrorCode::Internal, "upload already finished")
}

/// The TLS protocol's upload: sizes declared in the request, bytes in the frames after it.
pub struct DeclaredUpload {
    sizes: Vec<u64>,
    upload: Upload,
}

impl DeclaredUpload {
    pub fn sizes(&self) -> &[u64] {
        &self.sizes
    }

    /// Stores the next chunk of file `index`; hands the buffer back for reuse.
    pub async fn write(&mut self, index: usize, data: Vec<u8>) -> Result<Vec<u8>, ServiceError> {
        self.upload
            .with_pending(move |pending| pending.write_chunk(index, &data).map(|()| data))
            .await
    }

    pub async fn finish(self) -> Result<Value, ServiceError> {
        self.upload.finish().await
    }
}

/// The HTTP gateway's upload: files opened one after another, each as long as it turns out.
pub struct StreamUpload {
    max_upload: u64,
    current: Option<usize>,
    upload: Upload,
}

impl StreamUpload {
    /// Opens the next file (closing the previous one).
    pub async fn next_file(&mut self, name: String) -> Result<(), ServiceError> {
        let (previous, max) = (self.current.take(), self.max_upload);
        let index = self
            .upload
            .with_pending(move |pending| {
                if let Some(previous) = previous {
                    pending.end_file(previous);
                }
                pending.add_file(&name, max)
            })
            .await?;
        self.current = Some(index);
        Ok(())
    }

    /// Appends to the current file; hands the buffer back for reuse.
    pub async fn write(&mut self, data: bytes::Bytes) -> Result<(), ServiceError> {
        let index = self
            .current
            .ok_or_else(|| ServiceError::new(ErrorCode::Internal, "no file is open"))?;
        self.upload
            .with_pending(move |pending| pending.write_chunk(index, &data))
            .await
    }

    /// Sets the submission's tag (checked already: [`Tag::parse`]).
    pub async fn set_tag(&mut self, tag: Tag) -> Result<(), ServiceError> {
        self.upload
            .with_pending(move |pending| pending.set_tag(Some(tag.into_inner())))
            .await
    }

    /// Makes the job durable and queues it.
    pub async fn finish(self) -> Result<Value, ServiceError> {
        self.upload.finish().await
    }
}
