//! Forwarding one done job's logs to syslog, resumable.
//!
//! The lines to send are every row (not `#` headers, not empty lines) of the job's logs that
//! `exclude` does not name, logs in name order, rows in file order; `forwarding.sent` in the
//! record counts how many of them are known delivered. Lines go out in rounds of at most
//! [`ROUND_LINES`] on one connection; a round counts as delivered when the connection's close
//! is confirmed (`transport.rs`), and only then is the cursor written. Any failure sends the
//! round again from the cursor on a new connection, after a capped backoff. So delivery is
//! at-least-once: a receiver that fails mid-round gets that round's lines again (up to
//! [`ROUND_LINES`]); over UDP nothing is confirmed and a datagram the network drops is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::syslog::{app_name, log_name, now_secs, row_time, MessageFormat};
use super::transport::{Connection, Endpoint, TransportError};
use crate::backoff::Backoff;
use crate::config::{SyslogConfig, SyslogTimestamp};
use crate::jobs::{is_row, Forwarding, JobId, JobRecord, OutputState};
use crate::ledger::{JobLedger, Transition};
use crate::metrics::Metrics;
use crate::time::Timestamp;

/// Lines per confirmed round (and so the most a failure sends twice).
pub const ROUND_LINES: u64 = 5_000;
/// Bytes buffered before a write.
const WRITE_BATCH: usize = 64 * 1024;
/// Backoff between attempts: doubling from the first to the cap.
pub const RETRY_FIRST: Duration = Duration::from_millis(200);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// Everything forwarding needs from the config, built once per daemon start.
pub struct Forwarder {
    pub config: SyslogConfig,
    pub endpoint: Endpoint,
    pub format: MessageFormat,
    /// HOSTNAME of untagged jobs.
    pub default_hostname: String,
}

/// The files a job forwards, in order.
pub fn forwarded_logs(config: &SyslogConfig, record: &JobRecord) -> Vec<String> {
    let mut names: Vec<String> = record
        .logs
        .iter()
        .map(|l| l.name.clone())
        .filter(|name| name.ends_with(".log") || name.ends_with(".json"))
        .filter(|name| !config.exclude.iter().any(|x| x == log_name(name)))
        .collect();
    names.sort();
    names
}

/// Writes forwarding progress into the job's record, and reports it to the metrics.
pub struct Checkpoint {
    pub ledger: Arc<JobLedger>,
    pub metrics: Arc<Metrics>,
    pub job_id: JobId,
    /// When the job finished: forwarding lag counts from here.
    pub finished_at: Timestamp,
}

impl Checkpoint {
    /// Records `state`; a record that cannot be written is logged (the next checkpoint, or a
    /// resend after a restart, covers it: delivery is at-least-once).
    pub async fn write(&self, state: &Forwarding) {
        self.report(state);
        let result = self
            .ledger
            .apply(&self.job_id, Transition::Forwarding(state.clone()))
            .await;
        if let Err(e) = result {
            tracing::error!(job = %self.job_id, error = %e, "cannot record syslog forwarding progress");
        }
    }

    /// Tells the metrics where forwarding stands (no write).
    pub fn report(&self, state: &Forwarding) {
        self.metrics
            .forward_progress(&self.job_id, self.finished_at, remaining(state));
    }

    /// Forwarding stopped with `state` (delivered, failed for good, or shutdown).
    pub fn ended(&self, state: &Forwarding) {
        self.metrics.forward_ended(&self.job_id, remaining(state));
    }

    /// A round failed and will be retried.
    fn failed_round(&self) {
        self.metrics.forward_failed();
    }
}

/// Lines not yet confirmed delivered.
fn remaining(state: &Forwarding) -> u64 {
    state.total.unwrap_or(0).saturating_sub(state.sent)
}

/// Why a round did not complete.
enum RoundError {
    /// The receiver: try again later.
    Transport(TransportError),
    /// The job's own logs cannot be read: retrying will not help.
    Logs(String),
}

impl Forwarder {
    /// Sends lines `state.sent..` and returns the progress after each confirmed round through
    /// `checkpoint`; `Ok` once every line is delivered, `Err` with the state to record.
    pub async fn forward(
        &self,
        record: &JobRecord,
        logs_dir: &std::path::Path,
        mut state: Forwarding,
        shutdown: &CancellationToken,
        checkpoint: &Checkpoint,
    ) -> Forwarding {
        let logs = forwarded_logs(&self.config, record);
        if state.total.is_none() {
            // Counted when the job's logs were scanned at its end: no second read.
            let rows = record
                .logs
                .iter()
                .filter(|l| logs.contains(&l.name))
                .map(|l| l.rows);
            state.total = Some(rows.sum());
        }
        checkpoint.report(&state);
        let hostname = record
            .tag
            .clone()
            .unwrap_or_else(|| self.default_hostname.clone());
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
        loop {
            if state.sent >= state.total.unwrap_or(0) {
                state.state = OutputState::Done;
                state.error = None;
                return state;
            }
            match self.round(logs_dir, &logs, &hostname, &mut state).await {
                Ok(()) => {
                    backoff.reset();
                    if state.sent < state.total.unwrap_or(0) {
                        checkpoint.write(&state).await;
                    }
                }
                Err(RoundError::Logs(e)) => return failed(state, e),
                Err(RoundError::Transport(e)) => {
                    checkpoint.failed_round();
                    let error = e.to_string();
                    if state.state != OutputState::Retrying
                        || state.error.as_deref() != Some(&error)
                    {
                        tracing::warn!(job = %record.job_id, error, sent = state.sent, "syslog forwarding failed; retrying");
                        state.state = OutputState::Retrying;
                        state.error = Some(error);
                        checkpoint.write(&state).await;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return state,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
            if shutdown.is_cancelled() {
                return state;
            }
        }
    }

    /// One connection: up to [`ROUND_LINES`] lines from the cursor, then a confirmed close.
    async fn round(
        &self,
        logs_dir: &std::path::Path,
        logs: &[String],
        hostname: &str,
        state: &mut Forwarding,
    ) -> Result<(), RoundError> {
        let mut connection: Option<Connection> = None;
        let mut skip = state.sent;
        let mut sent_here = 0u64;
        let mut truncated = 0u64;
        let mut batch = Vec::with_capacity(WRITE_BATCH + 1024);
        'files: for name in logs {
            let app = app_name(&self.config.prefix, log_name(name));
            let mut rows = Rows::open(logs_dir.join(name))
                .await
                .map_err(RoundError::Logs)?;
            while let Some(line) = rows.next().await.map_err(RoundError::Logs)? {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                if connection.is_none() {
                    connection = Some(
                        self.endpoint
                            .connect()
                            .await
                            .map_err(RoundError::Transport)?,
                    );
                }
                let time = match self.config.timestamp {
                    SyslogTimestamp::Log => row_time(&line).unwrap_or_else(now_secs),
                    SyslogTimestamp::Send => now_secs(),
                };
                if self.format.write(
                    &mut batch,
                    self.endpoint.framing,
                    time,
                    hostname,
                    &app,
                    &line,
                ) {
                    truncated += 1;
                }
                let conn = connection.as_mut().expect("connected above");
                // UDP: one datagram per message.
                if self.endpoint.framing.is_none() || batch.len() >= WRITE_BATCH {
                    conn.send(&batch).await.map_err(RoundError::Transport)?;
                    batch.clear();
                }
                sent_here += 1;
                if sent_here >= ROUND_LINES {
                    break 'files;
                }
            }
        }
        if let Some(mut conn) = connection {
            if !batch.is_empty() {
                conn.send(&batch).await.map_err(RoundError::Transport)?;
            }
            conn.close().await.map_err(RoundError::Transport)?;
        }
        state.sent += sent_here;
        state.truncated += truncated;
        state.state = OutputState::Pending;
        state.error = None;
        Ok(())
    }
}

fn failed(mut state: Forwarding, error: String) -> Forwarding {
    state.state = OutputState::Failed;
    state.error = Some(error);
    state
}

/// The rows of one log file, without their newline.
struct Rows {
    path: PathBuf,
    reader: BufReader<tokio::fs::File>,
    line: Vec<u8>,
}

impl Rows {
    async fn open(path: PathBuf) -> Result<Rows, String> {
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Rows {
            path,
            reader: BufReader::with_capacity(64 * 1024, file),
            line: Vec::new(),
        })
    }

    async fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            if n == 0 {
                return Ok(None);
            }
            while matches!(self.line.last(), Some(b'\n' | b'\r')) {
                self.line.pop();
            }
            if is_row(&self.line) {
                return Ok(Some(std::mem::take(&mut self.line)));
            }
        }
    }
}
