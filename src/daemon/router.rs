//! Answers requests: pcapd's job functions, the pool view and bui-monitor's functions.
//!
//! Every function validates its kwargs into typed values first and answers a precise
//! `ER` code otherwise (`docs/protocol.md` lists them). Store calls run on blocking threads.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::state::{blocking, Daemon};
use crate::config::BackendKind;
use crate::jobs::{
    self, FileDecl, JobId, JobRecord, JobState, ListFilter, PendingJob, StoreError, Timestamp,
};
use crate::pool::{CancelOutcome, Rejected};
use crate::protocol::{ErrorCode, Reply};
use crate::server::{BoxFuture, Outcome, Service, UploadSession};

/// Longest `wait` a client may ask for.
const MAX_WAIT: Duration = Duration::from_secs(3600);

type Answer = Result<Value, Reply>;

fn bad(message: impl Into<String>) -> Reply {
    Reply::error(ErrorCode::BadRequest.as_str(), message)
}

fn store_error(e: StoreError) -> Reply {
    Reply::error(e.code(), e.to_string())
}

fn job_id(kwargs: &Map<String, Value>) -> Result<JobId, Reply> {
    let raw = kwargs
        .get("job_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing string \"job_id\""))?;
    JobId::parse(raw).map_err(|_| bad(format!("\"job_id\" {raw:?} is not a job id")))
}

fn record_json(record: &JobRecord) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

fn opt_u64(kwargs: &Map<String, Value>, key: &str) -> Result<Option<u64>, Reply> {
    match kwargs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| bad(format!("\"{key}\" must be a non-negative number"))),
    }
}

fn opt_str<'a>(kwargs: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Reply> {
    match kwargs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("\"{key}\" must be a string"))),
    }
}

/// Checks job options: an object whose known keys have the right types.
fn job_options(kwargs: &Map<String, Value>) -> Result<Map<String, Value>, Reply> {
    let options = match kwargs.get("options") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err(bad("\"options\" must be an object")),
    };
    if let Some(v) = options.get("ignore_checksums") {
        if !v.is_boolean() {
            return Err(bad("option \"ignore_checksums\" must be true or false"));
        }
    }
    Ok(options)
}

impl Daemon {
    async fn dispatch(
        self: &Arc<Self>,
        func: &str,
        kwargs: Map<String, Value>,
    ) -> Result<Outcome, Reply> {
        let value = match func {
            "submit" => return self.submit(kwargs).await,
            "status" => self.status(&kwargs).await?,
            "wait" => self.wait(&kwargs).await?,
            "list" => self.list(&kwargs).await?,
            "logs" => self.logs(&kwargs).await?,
            "fetch" => {
                return self
                    .fetch(&kwargs)
                    .await
                    .map(|b| Outcome::Reply(Reply::OkRaw(b)))
            }
            "cancel" => self.cancel(&kwargs).await?,
            "pool" => serde_json::to_value(self.pool_status().await).unwrap_or(Value::Null),
            "ping" => json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime": self.uptime_secs(),
                "backend": self.config().global.backend.name(),
            }),
            other => {
                if let Some(reply) = self.monitor_function(other).await {
                    return Ok(Outcome::Reply(reply));
                }
                return Err(Reply::error(
                    ErrorCode::UnknownFunction.as_str(),
                    format!("unknown function {other:?}"),
                ));
            }
        };
        Ok(Outcome::Reply(Reply::Ok(value)))
    }

    async fn submit(self: &Arc<Self>, kwargs: Map<String, Value>) -> Result<Outcome, Reply> {
        if self.is_draining() {
            return Err(Reply::error(
                ErrorCode::ShuttingDown.as_str(),
                "the daemon is shutting down; submit later",
            ));
        }
        let backend = self.config().global.backend;
        if backend == BackendKind::Burp {
            return Err(Reply::error(
                ErrorCode::Unsupported.as_str(),
                "this daemon runs backend = burp: it answers burp status queries, not capture jobs",
            ));
        }
        let tag = opt_str(&kwargs, "tag")?.map(str::to_owned);
        if let Some(tag) = &tag {
            jobs::validate_tag(tag).map_err(|e| bad(format!("tag {tag:?} rejected: {e}")))?;
        }
        let options = job_options(&kwargs)?;
        self.check_queue_room().await?;
        let config = self.config();
        if let Some(paths) = kwargs.get("paths") {
            let Some(spool) = config.global.spool_dir.clone() else {
                return Err(Reply::error(
                    ErrorCode::Unsupported.as_str(),
                    "\"paths\" submissions need spool_dir in [Global]",
                ));
            };
            let paths: Vec<String> = paths
                .as_array()
                .ok_or_else(|| bad("\"paths\" must be an array of strings"))?
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("\"paths\" must be an array of strings"))
                })
                .collect::<Result<_, _>>()?;
            let store = self.store.clone();
            let staged_options = options.clone();
            let pending = blocking(move || store.stage_paths(&spool, &paths, tag, staged_options))
                .await
                .map_err(store_error)?;
            return Ok(Outcome::Reply(self.settle(pending, options).await));
        }
        let files = kwargs
            .get("files")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("submit needs \"files\" or \"paths\""))?;
        let mut decls = Vec::with_capacity(files.len());
        for f in files {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("each file needs a string \"name\""))?;
            let size = f
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("each file needs an integer \"size\""))?;
            if size > config.global.max_upload {
                return Err(Reply::error(
                    ErrorCode::UploadTooLarge.as_str(),
                    format!(
                        "file {name:?} is {size} bytes, over max_upload ({} bytes)",
                        config.global.max_upload
                    ),
                ));
            }
            decls.push(FileDecl {
                name: name.to_owned(),
                size,
            });
        }
        let store = self.store.clone();
        let max_upload = config.global.max_upload;
        let sizes: Vec<u64> = decls.iter().map(|d| d.size).collect();
        let upload_options = options.clone();
        let pending = blocking(move || store.begin_upload(decls, tag, upload_options, max_upload))
            .await
            .map_err(store_error)?;
        Ok(Outcome::Upload(Box::new(Upload {
            daemon: self.clone(),
            sizes,
            options,
            pending: Some(pending),
        })))
    }

    /// Makes a received job durable and queues it; with `[Jobs] dedupe`, identical captures
    /// with identical options return the existing job instead (the new copy is dropped
    /// before it is ever stored).
    async fn settle(self: &Arc<Self>, pending: PendingJob, options: Map<String, Value>) -> Reply {
        let dedupe = self.config().jobs.dedupe;
        let store = self.store.clone();
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
        .await;
        match outcome {
            Ok(Ok(record)) => self.accept(record).await,
            Ok(Err(existing)) => {
                tracing::info!(job = %existing.job_id, "duplicate submission answered with the existing job");
                let mut answer = existing.submit_answer();
                answer["deduplicated"] = json!(true);
                Reply::Ok(answer)
            }
            Err(e) => store_error(e),
        }
    }

    async fn check_queue_room(&self) -> Result<(), Reply> {
        let status = self.pool.status().await;
        let max = self.config().global.max_queue;
        let backlog = self.backlog.lock().unwrap_or_else(|e| e.into_inner()).len();
        if status.queue_len + backlog >= max {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(queue_full(max));
        }
        Ok(())
    }

    /// A durable job enters the pool; if the pool refuses, the job is removed again so
    /// nothing unacknowledged lingers.
    async fn accept(self: &Arc<Self>, record: JobRecord) -> Reply {
        match self.enqueue(self.job_spec(&record), false) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job = %record.job_id, tag = record.tag.as_deref().unwrap_or("-"), files = record.files.len(), "job accepted");
                Reply::Ok(record.submit_answer())
            }
            Err(rejected) => {
                let store = self.store.clone();
                let id = record.job_id.clone();
                if let Err(e) = blocking(move || store.discard_unacknowledged(&id)).await {
                    tracing::error!(job = %record.job_id, error = %e, "cannot remove refused job");
                }
                match rejected {
                    Rejected::QueueFull { max } => {
                        self.rejected.fetch_add(1, Ordering::Relaxed);
                        queue_full(max)
                    }
                    Rejected::ShuttingDown => Reply::error(
                        ErrorCode::ShuttingDown.as_str(),
                        "the daemon is shutting down; submit later",
                    ),
                    e @ Rejected::WrongDialect { .. } => {
                        Reply::error(ErrorCode::Unsupported.as_str(), e.to_string())
                    }
                }
            }
        }
    }

    async fn status(&self, kwargs: &Map<String, Value>) -> Answer {
        let id = job_id(kwargs)?;
        Ok(record_json(&self.load(&id).await.map_err(store_error)?))
    }

    async fn wait(&self, kwargs: &Map<String, Value>) -> Answer {
        let id = job_id(kwargs)?;
        let limit = match kwargs.get("timeout") {
            None | Some(Value::Null) => Duration::from_secs(30),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(MAX_WAIT.as_secs_f64())))
                .ok_or_else(|| bad("\"timeout\" must be a non-negative number of seconds"))?,
        }
        .min(MAX_WAIT);
        let deadline = Instant::now() + limit;
        // Subscribe before loading so a change between the two is not missed.
        let mut changes = self.changes.subscribe();
        loop {
            let record = self.load(&id).await.map_err(store_error)?;
            if record.state.is_terminal() {
                return Ok(record_json(&record));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(record_json(&record));
            }
            if self.is_draining() {
                // Nothing more will happen to it in this run: answer as it stands.
                return Ok(record_json(&record));
            }
            // Progress is not broadcast; wake at least once a second to pick it up.
            let tick = remaining.min(Duration::from_secs(1));
            let change = async {
                loop {
                    match changes.recv().await {
                        Ok(changed) if changed == id.as_str() => break,
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
                _ = tokio::time::timeout(tick, change) => {}
            }
        }
    }

    async fn list(&self, kwargs: &Map<String, Value>) -> Answer {
        let state = match opt_str(kwargs, "state")? {
            None => None,
            Some(s) => Some(
                serde_json::from_value::<JobState>(json!(s))
                    .map_err(|_| bad(format!("unknown state {s:?}")))?,
            ),
        };
        let filter = ListFilter {
            state,
            tag: opt_str(kwargs, "tag")?.map(str::to_owned),
            limit: Some(opt_u64(kwargs, "limit")?.unwrap_or(100) as usize),
            since: opt_str(kwargs, "since")?.map(str::to_owned),
        };
        let store = self.store.clone();
        let records = blocking(move || store.list(&filter))
            .await
            .map_err(store_error)?;
        Ok(json!({ "jobs": records }))
    }

    async fn logs(&self, kwargs: &Map<String, Value>) -> Answer {
        let id = job_id(kwargs)?;
        let store = self.store.clone();
        let id2 = id.clone();
        let logs = blocking(move || {
            store.load(&id2)?;
            store.scan_logs(&id2)
        })
        .await
        .map_err(store_error)?;
        Ok(json!({ "job_id": id.as_str(), "logs": logs }))
    }

    async fn fetch(&self, kwargs: &Map<String, Value>) -> Result<Vec<u8>, Reply> {
        let id = job_id(kwargs)?;
        let log = opt_str(kwargs, "log")?
            .ok_or_else(|| bad("missing string \"log\""))?
            .to_owned();
        let offset = opt_u64(kwargs, "offset")?.unwrap_or(0);
        let length = opt_u64(kwargs, "length")?
            .unwrap_or(jobs::MAX_LOG_READ)
            .min(jobs::MAX_LOG_READ);
        let store = self.store.clone();
        blocking(move || store.read_log(&id, &log, offset, length))
            .await
            .map_err(store_error)
    }

    async fn cancel(&self, kwargs: &Map<String, Value>) -> Answer {
        let id = job_id(kwargs)?;
        let record = self.load(&id).await.map_err(store_error)?;
        if record.state.is_terminal() {
            return Ok(record_json(&record));
        }
        match self.pool.cancel(id.as_str()).await {
            CancelOutcome::Dequeued => {
                self.backlog
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|s| s.job_id != id.as_str());
                self.settle_cancelled(&id).await
            }
            CancelOutcome::Unknown => {
                // In the backlog, or between the store and the pool: cancel on disk.
                self.backlog
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|s| s.job_id != id.as_str());
                self.settle_cancelled(&id).await
            }
            CancelOutcome::Killed => {
                // The pool reports Finished{Cancelled}; the event task records it. Wait for it.
                let mut changes = self.changes.subscribe();
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let record = self.load(&id).await.map_err(store_error)?;
                    if record.state.is_terminal() || Instant::now() >= deadline {
                        return Ok(record_json(&record));
                    }
                    let _ = tokio::time::timeout(Duration::from_millis(200), changes.recv()).await;
                }
            }
        }
    }

    async fn settle_cancelled(&self, id: &JobId) -> Answer {
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
        .await
        .map_err(store_error)?;
        self.notify_change(id.as_str());
        Ok(record_json(&record))
    }
}

fn queue_full(max: usize) -> Reply {
    Reply::error(
        ErrorCode::QueueFull.as_str(),
        format!("the job queue is full ({max} jobs); try again later"),
    )
}

/// An upload in progress: owns the pending job until it is committed or dropped.
struct Upload {
    daemon: Arc<Daemon>,
    sizes: Vec<u64>,
    options: Map<String, Value>,
    pending: Option<PendingJob>,
}

impl UploadSession for Upload {
    fn sizes(&self) -> &[u64] {
        &self.sizes
    }

    fn write(&mut self, index: usize, data: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, Reply>> {
        Box::pin(async move {
            let mut pending = self.pending.take().ok_or_else(|| {
                Reply::error(ErrorCode::Internal.as_str(), "upload already finished")
            })?;
            let (pending, data, result) = blocking(move || {
                let r = pending.write_chunk(index, &data);
                (pending, data, r)
            })
            .await;
            self.pending = Some(pending);
            result.map_err(store_error)?;
            Ok(data)
        })
    }

    fn finish(mut self: Box<Self>) -> BoxFuture<'static, Reply> {
        Box::pin(async move {
            let Some(pending) = self.pending.take() else {
                return Reply::error(ErrorCode::Internal.as_str(), "upload already finished");
            };
            let options = std::mem::take(&mut self.options);
            self.daemon.settle(pending, options).await
        })
    }
}

impl Service for Daemon {
    fn verify<'a>(&'a self, peer: SocketAddr, password: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match self.auth.verify(peer.ip(), password).await {
                Ok(()) => true,
                Err(failures) => {
                    tracing::warn!(peer = %peer.ip(), failures, "authentication failed");
                    false
                }
            }
        })
    }

    fn call(
        &self,
        _peer: SocketAddr,
        func: String,
        _args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let this = self.self_arc();
            match this.dispatch(&func, kwargs).await {
                Ok(outcome) => outcome,
                Err(reply) => Outcome::Reply(reply),
            }
        })
    }

    fn query(&self, query: String, _timeout: Option<f64>, cache: bool) -> BoxFuture<'_, Reply> {
        // bui-monitor ignores the request's timeout too: `[Burp] timeout` bounds every query.
        Box::pin(async move { self.burp_query(&query, cache).await })
    }
}
