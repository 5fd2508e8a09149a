//! What happens to a job's logs after it is done: syslog forwarding (`[Syslog]`) and export
//! to a directory (`[Output] export_dir`).
//!
//! Neither can fail or delay a job: the job is `done` once its logs are durable, and the
//! record then carries `forwarding` and `export` states of their own (`pending`, `retrying`,
//! `done`, `failed`), set in the same write that makes the job done, so a crash never loses
//! one. One task works through done jobs in order, one job at a time (bounded concurrency,
//! one receiver connection): export first when copying, then forwarding, then export when
//! moving (the forwarder reads the logs). Jobs reach it through a bounded channel; when the
//! channel is full, or at start, the task scans the store for unsettled jobs instead, so
//! memory stays bounded whatever the backlog.

pub mod export;
pub mod forward;
pub mod syslog;
pub mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ExportMode};
use crate::jobs::{Export, Forwarding, JobId, JobRecord, OutputState};
use crate::ledger::{blocking, JobLedger, Transition};
use crate::metrics::Metrics;
use forward::{Checkpoint, Forwarder};
use syslog::MessageFormat;
use transport::{Endpoint, TransportError};

/// Done jobs waiting for the output task, beyond which it rescans the store instead.
const CHANNEL_JOBS: usize = 1024;

/// The output steps configured for this daemon run.
pub struct OutputSettings {
    forwarder: Option<Forwarder>,
    export: Option<(std::path::PathBuf, ExportMode)>,
    /// `[Output] export_files`: `extract_files/` goes with the logs.
    export_files: bool,
}

impl OutputSettings {
    pub fn from_config(config: &Config) -> Result<OutputSettings, TransportError> {
        let forwarder = match &config.syslog {
            Some(syslog) => Some(Forwarder {
                endpoint: Endpoint::new(syslog)?,
                format: MessageFormat {
                    format: syslog.format,
                    pri: syslog.facility * 8 + syslog.severity,
                },
                default_hostname: syslog.hostname.clone().unwrap_or_else(host_name),
                config: syslog.clone(),
            }),
            None => None,
        };
        let export = config
            .output
            .export_dir
            .clone()
            .map(|dir| (dir, config.output.export_mode));
        Ok(OutputSettings {
            forwarder,
            export,
            export_files: config.output.export_files,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.forwarder.is_none() && self.export.is_none()
    }

    /// The states a job becoming done starts its output steps in.
    pub fn pending(&self) -> (Option<Forwarding>, Option<Export>) {
        (
            self.forwarder.as_ref().map(|_| Forwarding::pending()),
            self.export.as_ref().map(|_| Export::pending()),
        )
    }
}

/// This machine's name, for the HOSTNAME of untagged jobs.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|n| n.into_string().ok())
        .filter(|n| crate::jobs::validate_tag(n).is_ok())
        .unwrap_or_else(|| "pcapd".to_string())
}

/// The handle the daemon keeps: tells the output task about done jobs.
pub struct Outputs {
    settings: Arc<OutputSettings>,
    sender: Option<mpsc::Sender<JobId>>,
    rescan: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl Outputs {
    /// Starts the output task (when anything is configured) on `ledger` until `shutdown`.
    pub fn start(
        settings: OutputSettings,
        ledger: Arc<JobLedger>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Outputs {
        let settings = Arc::new(settings);
        let rescan = Arc::new(AtomicBool::new(true));
        let wake = Arc::new(Notify::new());
        let sender = if settings.is_empty() {
            None
        } else {
            let (sender, receiver) = mpsc::channel(CHANNEL_JOBS);
            let task = OutputTask {
                settings: settings.clone(),
                ledger,
                metrics,
                receiver,
                rescan: rescan.clone(),
                wake: wake.clone(),
                shutdown,
            };
            tracker.spawn(task.run());
            Some(sender)
        };
        Outputs {
            settings,
            sender,
            rescan,
            wake,
        }
    }

    pub fn settings(&self) -> &OutputSettings {
        &self.settings
    }

    /// A job's done record (with its pending steps) is durable.
    pub fn job_done(&self, id: &JobId) {
        let Some(sender) = &self.sender else { return };
        if sender.try_send(id.clone()).is_err() {
            self.rescan.store(true, Ordering::Release);
            self.wake.notify_one();
        }
    }
}

struct OutputTask {
    settings: Arc<OutputSettings>,
    ledger: Arc<JobLedger>,
    metrics: Arc<Metrics>,
    receiver: mpsc::Receiver<JobId>,
    rescan: Arc<AtomicBool>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
}

fn needs_output(record: &JobRecord) -> bool {
    record.outputs_pending()
}

impl OutputTask {
    async fn run(mut self) {
        loop {
            if self.rescan.swap(false, Ordering::AcqRel) {
                // Whatever the channel holds is in the scan too; drain it first.
                while self.receiver.try_recv().is_ok() {}
                for id in self.unsettled().await {
                    if self.shutdown.is_cancelled() {
                        return;
                    }
                    self.process(&id).await;
                }
                continue;
            }
            let id = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = self.wake.notified() => continue,
                id = self.receiver.recv() => match id { Some(id) => id, None => return },
            };
            self.process(&id).await;
        }
    }

    /// Done jobs with an output step still open, oldest first.
    async fn unsettled(&self) -> Vec<JobId> {
        match self.ledger.outputs_pending().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "cannot list jobs for syslog forwarding and export");
                Vec::new()
            }
        }
    }

    async fn load(&self, id: &JobId) -> Option<JobRecord> {
        match self.ledger.load(id).await {
            Ok(record) if needs_output(&record) => Some(record),
            Ok(_) => None,
            // Removed by retention meanwhile: nothing left to do.
            Err(e) => {
                tracing::debug!(job = %id, error = %e, "job gone before its outputs ran");
                None
            }
        }
    }

    async fn process(&self, id: &JobId) {
        let Some(record) = self.load(id).await else {
            return;
        };
        if let Some((_, ExportMode::Copy)) = &self.settings.export {
            self.export(&record).await;
        }
        if let (Some(forwarder), Some(state)) = (&self.settings.forwarder, &record.forwarding) {
            if !state.state.is_settled() {
                let checkpoint = Checkpoint {
                    ledger: self.ledger.clone(),
                    metrics: self.metrics.clone(),
                    job_id: id.clone(),
                    finished_at: record.finished_at.unwrap_or(record.created_at),
                };
                let logs_dir = self.ledger.logs_dir(id);
                let end = forwarder
                    .forward(
                        &record,
                        &logs_dir,
                        state.clone(),
                        &self.shutdown,
                        &checkpoint,
                    )
                    .await;
                if end.state == OutputState::Done {
                    tracing::info!(job = %id, lines = end.sent, "logs forwarded to syslog");
                } else if end.state == OutputState::Failed {
                    tracing::error!(job = %id, error = end.error.as_deref().unwrap_or(""), "syslog forwarding failed");
                }
                let settled = end.state.is_settled();
                checkpoint.write(&end).await;
                checkpoint.ended(&end);
                if !settled {
                    // Shutdown: the next start resumes from the cursor.
                    return;
                }
            }
        }
        if let Some((_, ExportMode::Move)) = &self.settings.export {
            self.export(&record).await;
        }
    }

    async fn export(&self, record: &JobRecord) {
        let (Some((dir, mode)), Some(export)) = (&self.settings.export, &record.export) else {
            return;
        };
        if export.state.is_settled() {
            return;
        }
        let id = record.job_id.clone();
        let group = record.tag.clone().unwrap_or_else(|| id.to_string());
        let mut logs: Vec<String> = record.logs.iter().map(|l| l.name.clone()).collect();
        let (dir, mode, logs_dir) = (dir.clone(), *mode, self.ledger.logs_dir(&id));
        let extracted = crate::jobs::store::EXTRACT_FILES_DIR;
        if self.settings.export_files && logs_dir.join(extracted).is_dir() {
            logs.push(extracted.to_string());
        }
        let id_text = id.to_string();
        let result =
            blocking(move || export::export_logs(&dir, &group, &id_text, &logs_dir, &logs, mode))
                .await;
        let state = match result {
            Ok(path) => {
                tracing::info!(job = %id, path = %path.display(), "logs exported");
                Export {
                    state: OutputState::Done,
                    path: Some(path.display().to_string()),
                    error: None,
                }
            }
            Err(e) => {
                tracing::error!(job = %id, error = %e, "cannot export logs");
                self.metrics.export_failed();
                Export {
                    state: OutputState::Failed,
                    path: None,
                    error: Some(e.to_string()),
                }
            }
        };
        if let Err(e) = self.ledger.apply(&id, Transition::Export(state)).await {
            tracing::error!(job = %record.job_id, error = %e, "cannot record the export");
        }
    }
}
