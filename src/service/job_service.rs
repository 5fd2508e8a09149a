//! [`JobService`]: executes a [`Command`] against the ledger, dispatch and the pool.
//!
//! Both front doors call [`JobService::execute`]: the TLS protocol's door (`tls_door.rs`)
//! and the HTTP gateway (`crate::http`). The service holds narrow handles only (the live
//! configuration, the ledger, the intake, dispatch, the pool, bui-monitor's state); what
//! starts and stops them is the daemon's composition root.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::answer::{Answer, DaemonFigures, JobFiles, JobList, JobLogs, Ping, PoolAnswer};
use super::intake::Intake;
use super::monitor::BurpMonitor;
use super::scrape::{ClusterView, Snapshot};
use super::upload::{DeclaredUpload, StreamUpload};
use super::{CaptureSource, Command, FetchArgs, JobOptions, ServiceError, SubmitArgs, Tag};
use crate::config::{BackendKind, LiveConfig};
use crate::disk::{DiskStatus, DiskWatch};
use crate::dispatch::{ClusterStatusError, Dispatch};
use crate::jobs::{JobId, JobRecord};
use crate::ledger::{blocking, JobLedger, Transition};
use crate::metrics::{Format, Metrics};
use crate::pool::{CancelOutcome, PoolHandle, PoolStatus};
use crate::protocol::ErrorCode;
use crate::server::auth::Auth;

/// How long `cancel` of a running job waits for its child to be stopped and recorded.
const CANCEL_SETTLE: Duration = Duration::from_secs(30);
/// How long a scrape waits for the cluster's Redis.
const CLUSTER_SCRAPE: Duration = Duration::from_secs(2);
/// `wait` looks at the record at least this often (progress is not broadcast).
const WAIT_POLL: Duration = Duration::from_secs(1);

/// The daemon's state as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Shutting down: finishing what runs, taking nothing new.
    Draining,
    /// Below `min_free`: refusing uploads until space returns.
    DiskFull,
}

/// What the service is built from.
pub struct Parts {
    pub config: Arc<LiveConfig>,
    pub auth: Arc<Auth>,
    pub ledger: Arc<JobLedger>,
    pub dispatch: Arc<dyn Dispatch>,
    pub pool: PoolHandle,
    pub disk: Arc<DiskWatch>,
    pub monitor: BurpMonitor,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the daemon starts to drain.
    pub shutdown: CancellationToken,
}

pub struct JobService {
    config: Arc<LiveConfig>,
    auth: Arc<Auth>,
    ledger: Arc<JobLedger>,
    intake: Arc<Intake>,
    dispatch: Arc<dyn Dispatch>,
    pool: PoolHandle,
    disk: Arc<DiskWatch>,
    monitor: BurpMonitor,
    metrics: Arc<Metrics>,
    started: Instant,
    shutdown: CancellationToken,
}

impl JobService {
    pub fn new(parts: Parts) -> JobService {
        let intake = Arc::new(Intake::new(
            parts.config.clone(),
            parts.ledger.clone(),
            parts.dispatch.clone(),
            parts.pool.clone(),
            parts.disk.clone(),
            parts.metrics.clone(),
            parts.shutdown.clone(),
        ));
        JobService {
            config: parts.config,
            auth: parts.auth,
            ledger: parts.ledger,
            intake,
            dispatch: parts.dispatch,
            pool: parts.pool,
            disk: parts.disk,
            monitor: parts.monitor,
            metrics: parts.metrics,
            started: Instant::now(),
            shutdown: parts.shutdown,
        }
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// `max_upload`: the largest capture a submission may carry (0: no limit).
    pub fn max_upload(&self) -> u64 {
        self.config.get().global.max_upload
    }

    pub fn is_draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// What `/healthz` says.
    pub fn health(&self) -> Health {
        if self.is_draining() {
            Health::Draining
        } else if self.disk.is_low() {
            Health::DiskFull
        } else {
            Health::Ok
        }
    }

    /// Runs one command.
    pub async fn execute(&self, command: Command) -> Result<Answer, ServiceError> {
        Ok(match command {
            Command::Submit(args) => {
                return self
                    .submit(args)
                    .await
                    .inspect_err(|e| self.intake.refused(e))
            }
            Command::Status(id) => Answer::Job(Box::new(self.ledger.load(&id).await?)),
            Command::Wait { job_id, timeout } => {
                Answer::Job(Box::new(self.wait(&job_id, timeout).await?))
            }
            Command::List(filter) => Answer::Jobs(JobList {
                jobs: self.ledger.list(filter).await?,
            }),
            Command::Logs(id) => Answer::Logs(JobLogs {
                logs: self.ledger.logs(&id).await?,
                job_id: id,
            }),
            Command::Files(id) => Answer::Files(JobFiles {
                files: self.ledger.extracted_files(&id).await?,
                job_id: id,
            }),
            Command::Fetch(args) => Answer::Bytes(self.fetch(args).await?),
            Command::Cancel(id) => Answer::Job(Box::new(self.cancel(&id).await?)),
            Command::Pool => Answer::Pool(Box::new(PoolAnswer {
                pool: self.pool_status().await,
                disk: self.disk_status().await,
            })),
            Command::Cluster => Answer::Cluster(Box::new(self.cluster_status().await?)),
            Command::Ping => Answer::Ping(Ping {
                version: env!("CARGO_PKG_VERSION"),
                uptime: self.uptime_secs(),
                backend: self.config.get().global.backend.name(),
            }),
            Command::Monitor(function) => self.monitor.version_function(function, &self.pool),
            Command::Statistics => {
                let figures = DaemonFigures {
                    version: env!("CARGO_PKG_VERSION"),
                    uptime: self.uptime_secs(),
                    accepted: self.intake.accepted(),
                    auth_failures: self.auth.failures_total(),
                    pool: self.pool_status().await,
                };
                Answer::Statistics(Box::new(self.monitor.statistics(&self.pool, figures)))
            }
            Command::BurpQuery { query, cache } => {
                let backend = self.config.get().global.backend;
                if backend != BackendKind::Burp {
                    return Err(ServiceError::new(
                        ErrorCode::Unsupported,
                        format!(
                            "burp status queries need backend = burp; this daemon runs backend = {}",
                            backend.name()
                        ),
                    ));
                }
                return self.monitor.query(&self.pool, &query, cache).await;
            }
        })
    }

    /// The Prometheus exposition (`GET /metrics`): the event counters and the state now.
    pub async fn metrics(&self, format: Format) -> String {
        // A scrape must answer even when Redis does not: the cluster's figures then say so.
        let cluster =
            match tokio::time::timeout(CLUSTER_SCRAPE, self.dispatch.cluster_status()).await {
                Ok(Ok(status)) => ClusterView::Up(Box::new(status)),
                Ok(Err(ClusterStatusError::NotClustered)) => ClusterView::Off,
                Ok(Err(ClusterStatusError::Unreachable(_))) | Err(_) => ClusterView::Unreachable,
            };
        let config = self.config.get();
        let snapshot = Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            backend: config.global.backend.name(),
            pool: self.pool_status().await,
            queue_capacity: config.global.max_queue,
            disk: self.disk_status().await,
            cluster,
            auth_failures: self.auth.failures_total(),
            draining: self.is_draining(),
        };
        self.metrics
            .render(format, |registry| snapshot.register(registry))
    }

    fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The pool's status with the intake's own refusals counted in.
    async fn pool_status(&self) -> PoolStatus {
        let mut status = self.pool.status().await;
        status.rejected += self.intake.rejected();
        status
    }

    async fn disk_status(&self) -> Option<DiskStatus> {
        let disk = self.disk.clone();
        blocking(move || disk.check()).await
    }

    async fn cluster_status(&self) -> Result<crate::cluster::ClusterStatus, ServiceError> {
        self.dispatch.cluster_status().await.map_err(|e| match e {
            ClusterStatusError::NotClustered => {
                ServiceError::new(ErrorCode::Unsupported, e.to_string())
            }
            ClusterStatusError::Unreachable(_) => {
                ServiceError::new(ErrorCode::Unavailable, e.to_string())
            }
        })
    }

    async fn submit(&self, args: SubmitArgs) -> Result<Answer, ServiceError> {
        self.intake.admit()?;
        let SubmitArgs {
            source,
            tag,
            options,
        } = args;
        let tag = tag.map(Tag::into_inner);
        let config = self.config.get();
        match source {
            CaptureSource::Paths(paths) => {
                let Some(spool) = config.global.spool_dir.clone() else {
                    return Err(ServiceError::new(
                        ErrorCode::Unsupported,
                        "\"paths\" submissions need spool_dir in [Global]",
                    ));
                };
                let pending = self
                    .ledger
                    .stage_paths(spool, paths, tag, options.clone())
                    .await?;
                let submitted = self.intake.settle(pending, options).await?;
                Ok(Answer::Submitted(submitted))
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
                let pending = self
                    .ledger
                    .begin_upload(decls, tag, options.clone(), max_upload)
                    .await?;
                Ok(Answer::Upload(Box::new(DeclaredUpload::new(
                    self.intake.clone(),
                    sizes,
                    pending,
                    options,
                ))))
            }
        }
    }

    /// Starts a submission whose files arrive one after another with sizes unknown up front
    /// (the HTTP gateway's multipart parts).
    pub async fn open_stream(
        &self,
        tag: Option<Tag>,
        options: JobOptions,
    ) -> Result<StreamUpload, ServiceError> {
        let opened = async {
            self.intake.admit()?;
            let tag = tag.map(Tag::into_inner);
            Ok(self.ledger.begin_stream(tag, options.clone()).await?)
        };
        let pending = opened.await.inspect_err(|e| self.intake.refused(e))?;
        Ok(StreamUpload::new(
            self.intake.clone(),
            self.config.get().global.max_upload,
            pending,
            options,
        ))
    }

    /// The record once it is terminal, or as it stands after `limit` (or at shutdown).
    async fn wait(&self, id: &JobId, limit: Duration) -> Result<JobRecord, ServiceError> {
        let deadline = Instant::now() + limit;
        // Subscribe before loading so a change between the two is not missed.
        let mut changes = self.ledger.subscribe();
        loop {
            let record = self.ledger.load(id).await?;
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

    async fn fetch(&self, args: FetchArgs) -> Result<Vec<u8>, ServiceError> {
        let FetchArgs {
            job_id,
            log,
            offset,
            length,
        } = args;
        Ok(self.ledger.read_log(job_id, log, offset, length).await?)
    }

    async fn cancel(&self, id: &JobId) -> Result<JobRecord, ServiceError> {
        let record = self.ledger.load(id).await?;
        if record.state.is_terminal() {
            return Ok(record);
        }
        match self.pool.cancel(id).await {
            // Queued, or between the store and the pool: cancel on disk.
            CancelOutcome::Dequeued | CancelOutcome::Unknown => {
                let recorded = self.ledger.apply(id, Transition::Cancel).await?;
                match recorded.record() {
                    Some(record) => Ok(record.clone()),
                    None => Ok(self.ledger.load(id).await?),
                }
            }
            // The pool reports Finished{Cancelled}; the event task records it. Wait for it.
            CancelOutcome::Killed => self.wait(id, CANCEL_SETTLE).await,
        }
    }

    /// Opens log `name` of a job for streaming: the file and its size now.
    pub async fn open_log(
        &self,
        id: &JobId,
        name: &str,
    ) -> Result<(std::fs::File, u64), ServiceError> {
        Ok(self.ledger.open_log(id, name).await?)
    }
}
