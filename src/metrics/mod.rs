//! Prometheus metrics: what the daemon counts as it happens, and what it reads at each scrape.
//!
//! Two kinds of figures, one exposition:
//! - **events** are counted where they happen, through [`Metrics`]: jobs accepted and refused
//!   (the intake), jobs finished, their run time and queue wait, dead letters (the ledger, the
//!   one writer of job states), upload bytes (the uploads), connections (the listeners),
//!   forwarded lines and failed rounds (syslog forwarding), export failures;
//! - **state** is read at scrape time (the pool's slots and queue, the disk, the cluster's
//!   stream, the password check's failures) by the job service (`service/scrape.rs`), so a
//!   scrape never sees a figure the daemon no longer holds.
//!
//! [`Metrics::render`] writes both, with the `pcapd_` prefix, in Prometheus's text format
//! (0.0.4) or in OpenMetrics when the scraper asks for it. This module depends on nothing
//! above the job model, so every layer may count through it. `docs/operations.md` lists every
//! metric. The names follow Prometheus's conventions: `_total` counters, base units
//! (`_seconds`, `_bytes`), a `state`/`reason` label instead of one metric per value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::jobs::{JobId, JobRecord, JobState};
use crate::protocol::ErrorCode;
use crate::time::Timestamp;

/// The exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    PrometheusText,
    /// OpenMetrics 1.0 text, for a scraper whose `Accept` names it.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for (Prometheus's text format unless it names
    /// OpenMetrics).
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The refusals a submission commonly meets, shown at zero before the first one.
const REFUSALS: [ErrorCode; 6] = [
    ErrorCode::QueueFull,
    ErrorCode::DiskFull,
    ErrorCode::UploadTooLarge,
    ErrorCode::ShuttingDown,
    ErrorCode::BadRequest,
    ErrorCode::Io,
];

/// Which front door a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    /// The TLS protocol (bui-monitor's and pcapd's own).
    Protocol,
    /// The HTTP gateway.
    Http,
    /// The metrics port (`[Metrics]`).
    Metrics,
}

impl Door {
    fn as_str(self) -> &'static str {
        match self {
            Door::Protocol => "protocol",
            Door::Http => "http",
            Door::Metrics => "metrics",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DoorLabel {
    door: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The forwarding of the job now being sent to syslog.
#[derive(Debug, Clone, Copy)]
struct Forwarding {
    /// When the job finished: how long its logs have waited to be delivered.
    finished_at: Timestamp,
    /// Lines not yet confirmed delivered.
    remaining: u64,
}

/// The daemon's event counters. Cheap to update from any task (atomics); one per daemon.
#[derive(Debug)]
pub struct Metrics {
    jobs_accepted: Counter,
    jobs_refused: Family<ReasonLabel, Counter>,
    jobs_finished: Family<StateLabel, Counter>,
    jobs_dead_lettered: Counter,
    job_duration: Histogram,
    job_queue_wait: Histogram,
    upload_bytes: Counter,
    connections_open: Family<DoorLabel, Gauge>,
    connections: Family<DoorLabel, Counter>,
    forward_lines: Counter,
    forward_failures: Counter,
    export_failures: Counter,
    /// Jobs whose logs are being forwarded now (one at a time today).
    forwarding: Mutex<HashMap<JobId, Forwarding>>,
    /// When the daemon started, unix seconds.
    started: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let metrics = Metrics {
            jobs_accepted: Counter::default(),
            jobs_refused: Family::default(),
            jobs_finished: Family::default(),
            jobs_dead_lettered: Counter::default(),
            // 50 ms to about 20 minutes: a small capture to a large one.
            job_duration: Histogram::new(exponential_buckets(0.05, 2.5, 12)),
            // 10 ms to about 30 minutes in the queue.
            job_queue_wait: Histogram::new(exponential_buckets(0.01, 3.0, 12)),
            upload_bytes: Counter::default(),
            connections_open: Family::default(),
            connections: Family::default(),
            forward_lines: Counter::default(),
            forward_failures: Counter::default(),
            export_failures: Counter::default(),
            forwarding: Mutex::new(HashMap::new()),
            started: unix_now(),
        };
        // Every label value an alert may name exists from the start, at zero: a rule on
        // `rate(pcapd_jobs_finished_total{state="failed"}[5m])` must not wait for the first
        // failure to have a series.
        for state in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            let _ = metrics.jobs_finished.get_or_create(&StateLabel {
                state: state.as_str(),
            });
        }
        for reason in REFUSALS {
            let _ = metrics.jobs_refused.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        for door in [Door::Protocol, Door::Http, Door::Metrics] {
            let label = DoorLabel {
                door: door.as_str(),
            };
            let _ = metrics.connections.get_or_create(&label);
            let _ = metrics.connections_open.get_or_create(&label);
        }
        metrics
    }

    /// A submission became a job.
    pub fn job_accepted(&self) {
        self.jobs_accepted.inc();
    }

    /// Submissions that became jobs since start (`statistics` reports it too).
    pub fn jobs_accepted(&self) -> u64 {
        self.jobs_accepted.get()
    }

    /// A submission was refused (`queue_full`, `disk_full`, `upload_too_large`, …).
    pub fn job_refused(&self, reason: ErrorCode) {
        self.jobs_refused
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A job record was written; `before` is the state it had. Counts runs that started
    /// (their queue wait) and jobs that ended (their state and run time).
    pub fn job_changed(&self, before: JobState, record: &JobRecord) {
        if before == record.state {
            return;
        }
        if record.state == JobState::Running {
            if let Some(started) = record.started_at {
                self.job_queue_wait
                    .observe(seconds_between(record.queued_at, started));
            }
        }
        if record.state.is_terminal() && !before.is_terminal() {
            self.jobs_finished
                .get_or_create(&StateLabel {
                    state: record.state.as_str(),
                })
                .inc();
            if let (Some(started), Some(finished)) = (record.started_at, record.finished_at) {
                self.job_duration
                    .observe(seconds_between(started, finished));
            }
        }
    }

    /// A cluster job was given up after too many deliveries.
    pub fn job_dead_lettered(&self) {
        self.jobs_dead_lettered.inc();
    }

    /// Capture bytes stored from an upload.
    pub fn upload_bytes(&self, bytes: u64) {
        self.upload_bytes.inc_by(bytes);
    }

    /// A connection through `door` opened; it counts as open until the guard drops.
    pub fn connection(self: &Arc<Self>, door: Door) -> ConnectionGuard {
        let label = DoorLabel {
            door: door.as_str(),
        };
        self.connections.get_or_create(&label).inc();
        self.connections_open.get_or_create(&label).inc();
        ConnectionGuard {
            metrics: self.clone(),
            label,
        }
    }

    /// Forwarding of job `id` (finished at `finished_at`) stands at `remaining` lines.
    pub fn forward_progress(&self, id: &JobId, finished_at: Timestamp, remaining: u64) {
        let mut forwarding = self.lock_forwarding();
        if let Some(previous) = forwarding.get(id) {
            self.forward_lines
                .inc_by(previous.remaining.saturating_sub(remaining));
        }
        forwarding.insert(
            id.clone(),
            Forwarding {
                finished_at,
                remaining,
            },
        );
    }

    /// Forwarding of job `id` stopped (delivered, failed for good, or the daemon stops).
    pub fn forward_ended(&self, id: &JobId, remaining: u64) {
        if let Some(previous) = self.lock_forwarding().remove(id) {
            self.forward_lines
                .inc_by(previous.remaining.saturating_sub(remaining));
        }
    }

    /// A forwarding round failed (receiver unreachable, connection lost); it is retried.
    pub fn forward_failed(&self) {
        self.forward_failures.inc();
    }

    /// Exporting a job's logs failed.
    pub fn export_failed(&self) {
        self.export_failures.inc();
    }

    fn lock_forwarding(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Forwarding>> {
        self.forwarding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exposition: the event counters and what `state` registers (the figures read at
    /// this scrape), `pcapd_` prefixed.
    pub fn render(&self, format: Format, state: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::with_prefix("pcapd");
        self.register_events(&mut registry);
        state(&mut registry);
        let mut text = String::new();
        let written = match format {
            Format::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry),
        };
        // Writing into a String cannot fail; the encoders return fmt::Result for other writers.
        written.expect("metrics encode into a String");
        text
    }

    fn register_events(&self, registry: &mut Registry) {
        registry.register(
            "jobs_accepted",
            "Submissions that became jobs",
            self.jobs_accepted.clone(),
        );
        registry.register(
            "jobs_refused",
            "Submissions refused, by reason (the error code the client got)",
            self.jobs_refused.clone(),
        );
        registry.register(
            "jobs_finished",
            "Jobs that ended, by final state",
            self.jobs_finished.clone(),
        );
        registry.register(
            "jobs_dead_lettered",
            "Cluster jobs this host gave up after max_deliveries",
            self.jobs_dead_lettered.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "Run time of jobs that ended after starting",
            Unit::Seconds,
            self.job_duration.clone(),
        );
        registry.register_with_unit(
            "job_queue_wait",
            "Time from queued to running, per run started",
            Unit::Seconds,
            self.job_queue_wait.clone(),
        );
        registry.register_with_unit(
            "upload",
            "Capture bytes stored from uploads",
            Unit::Bytes,
            self.upload_bytes.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open now, by front door",
            self.connections_open.clone(),
        );
        registry.register(
            "connections",
            "Client connections accepted, by front door",
            self.connections.clone(),
        );
        registry.register(
            "forward_lines",
            "Log lines confirmed delivered to syslog",
            self.forward_lines.clone(),
        );
        registry.register(
            "forward_failures",
            "Syslog forwarding rounds that failed and are retried",
            self.forward_failures.clone(),
        );
        let (lag, backlog) = self.forward_lag();
        registry.register_with_unit(
            "forward_lag",
            "How long the oldest job being forwarded has waited since it finished (0: none)",
            Unit::Seconds,
            gauge_f64(lag),
        );
        registry.register(
            "forward_backlog_lines",
            "Lines of the jobs being forwarded not yet confirmed delivered",
            gauge(backlog),
        );
        registry.register(
            "export_failures",
            "Log exports to export_dir that failed",
            self.export_failures.clone(),
        );
        registry.register_with_unit(
            "start_time",
            "When the daemon started, unix time",
            Unit::Seconds,
            gauge_f64(self.started),
        );
    }

    /// Seconds the oldest job being forwarded has waited since it finished, and the lines
    /// still to deliver.
    fn forward_lag(&self) -> (f64, u64) {
        let forwarding = self.lock_forwarding();
        let now = unix_now();
        let lag = forwarding
            .values()
            .map(|f| (now - f.finished_at.unix_millis() as f64 / 1000.0).max(0.0))
            .fold(0.0, f64::max);
        (lag, forwarding.values().map(|f| f.remaining).sum())
    }
}

/// Counts the connections of one front door.
#[derive(Clone)]
pub struct DoorCounter {
    metrics: Arc<Metrics>,
    door: Door,
}

impl DoorCounter {
    pub fn new(metrics: Arc<Metrics>, door: Door) -> DoorCounter {
        DoorCounter { metrics, door }
    }

    /// A connection opened; it counts as open until the guard drops.
    pub fn opened(&self) -> ConnectionGuard {
        self.metrics.connection(self.door)
    }
}

/// Marks a connection open while it lives.
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
    label: DoorLabel,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics
            .connections_open
            .get_or_create(&self.label)
            .dec();
    }
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.unix_millis() - from.unix_millis()).max(0) as f64 / 1000.0
}

fn unix_now() -> f64 {
    Timestamp::now().unix_millis() as f64 / 1000.0
}

/// A gauge holding `value` (a scrape's reading).
pub fn gauge(value: u64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

/// A counter standing at `value` (a total kept elsewhere, read at the scrape).
pub fn counter(value: u64) -> Counter {
    let counter = Counter::default();
    counter.inc_by(value);
    counter
}

fn gauge_f64(value: f64) -> Gauge<f64, std::sync::atomic::AtomicU64> {
    let gauge = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    gauge.set(value);
    gauge
}

#[cfg(test)]
pub(crate) mod tests;
