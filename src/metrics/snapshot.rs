//! [`Snapshot`]: the state a scrape reports, read by the job service just before rendering.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::cluster::ClusterStatus;
use crate::disk::DiskStatus;
use crate::pool::{PauseReason, PoolStatus, SlotState};

/// What the cluster's stream looked like at the scrape.
#[derive(Debug)]
pub enum ClusterView {
    /// This daemon runs without `[Cluster]`.
    Off,
    /// Redis did not answer in time.
    Unreachable,
    Up(Box<ClusterStatus>),
}

/// The daemon's state at one scrape.
#[derive(Debug)]
pub struct Snapshot {
    pub version: &'static str,
    /// The backend kind (`builtin`, `zeek`, `burp`, `command`).
    pub backend: &'static str,
    pub pool: PoolStatus,
    /// `max_queue`.
    pub queue_capacity: usize,
    /// `jobs_dir`'s file system, when it could be read.
    pub disk: Option<DiskStatus>,
    pub cluster: ClusterView,
    /// Wrong passwords since start, both doors.
    pub auth_failures: u64,
    pub draining: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    backend: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SlotLabel {
    slot: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

impl Snapshot {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "build",
            "The running pcapd: version and backend, value 1",
            Info::new(BuildLabels {
                version: self.version,
                backend: self.backend,
            }),
        );
        registry.register(
            "draining",
            "1 while the daemon shuts down (finishing what runs, taking nothing new)",
            gauge(u64::from(self.draining)),
        );
        self.register_pool(registry);
        registry.register(
            "auth_failures",
            "Wrong or missing passwords, both front doors",
            counter(self.auth_failures),
        );
        if let Some(disk) = &self.disk {
            registry.register_with_unit(
                "disk_free",
                "Bytes available to pcapd on jobs_dir's file system",
                Unit::Bytes,
                gauge(disk.free),
            );
            registry.register_with_unit(
                "disk_size",
                "Size of jobs_dir's file system",
                Unit::Bytes,
                gauge(disk.total),
            );
            registry.register_with_unit(
                "disk_min_free",
                "min_free on jobs_dir's file system: below it uploads are refused",
                Unit::Bytes,
                gauge(disk.min_free),
            );
            registry.register(
                "disk_low",
                "1 while jobs_dir's file system is below min_free",
                gauge(u64::from(disk.low)),
            );
        }
        self.register_cluster(registry);
    }

    fn register_pool(&self, registry: &mut Registry) {
        let slots = Family::<StateLabel, Gauge>::default();
        for state in SlotState::ALL {
            let count = self.pool.slots.iter().filter(|s| s.state == state).count();
            slots
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(count as i64);
        }
        registry.register("slots", "Pool slots, by state", slots);
        let restarts = Family::<SlotLabel, Counter>::default();
        let crashes = Family::<SlotLabel, Counter>::default();
        let jobs = Family::<SlotLabel, Counter>::default();
        for slot in &self.pool.slots {
            let label = SlotLabel {
                slot: slot.slot.to_string(),
            };
            restarts.get_or_create(&label).inc_by(slot.restarts);
            crashes.get_or_create(&label).inc_by(slot.crashes);
            jobs.get_or_create(&label).inc_by(slot.jobs_done);
        }
        registry.register(
            "slot_restarts",
            "Children started in a slot after its first (crash, timeout, cancel, recycling)",
            restarts,
        );
        registry.register(
            "slot_crashes",
            "Runs in a slot whose child crashed",
            crashes,
        );
        registry.register(
            "slot_jobs",
            "Jobs (burp backend: queries) a slot settled",
            jobs,
        );
        registry.register(
            "queue_jobs",
            "Jobs waiting in this host's queue for a slot",
            gauge(self.pool.queue_len as u64),
        );
        registry.register(
            "queue_capacity",
            "max_queue: submissions beyond it are refused with queue_full",
            gauge(self.queue_capacity as u64),
        );
        registry.register(
            "jobs_timed_out",
            "Runs stopped for exceeding the job timeout",
            counter(self.pool.timed_out),
        );
        let paused = Family::<ReasonLabel, Gauge>::default();
        for reason in PauseReason::ALL {
            let on = self.pool.dispatch_paused.contains(&reason);
            paused
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str(),
                })
                .set(i64::from(on));
        }
        registry.register(
            "dispatch_paused",
            "1 while queued work is held back for this reason",
            paused,
        );
        registry.register(
            "pool_degraded",
            "1 while a slot backs off after repeated failures",
            gauge(u64::from(self.pool.degraded)),
        );
    }

    fn register_cluster(&self, registry: &mut Registry) {
        let status = match &self.cluster {
            ClusterView::Off => return,
            ClusterView::Unreachable => None,
            ClusterView::Up(status) => Some(status),
        };
        registry.register(
            "cluster_up",
            "1 when the cluster's Redis answered this scrape",
            gauge(u64::from(status.is_some())),
        );
        let Some(status) = status else { return };
        registry.register(
            "cluster_stream_entries",
            "Entries in the shared job stream (waiting plus pending)",
            gauge(status.queue.length),
        );
        registry.register(
            "cluster_waiting_jobs",
            "Entries no host has read yet",
            gauge(status.queue.waiting),
        );
        let pending = Family::<NodeLabel, Gauge>::default();
        for (node, count) in &status.queue.pending {
            pending
                .get_or_create(&NodeLabel { node: node.clone() })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        registry.register(
            "cluster_pending_jobs",
            "Entries delivered to a host and not yet acknowledged, by host",
            pending,
        );
        registry.register(
            "cluster_dead_letters",
            "Dead-lettered jobs the stream's dead-letter list holds",
            gauge(status.queue.dead_lettered.len() as u64),
        );
        registry.register(
            "cluster_unpublished_jobs",
            "Results this host could not yet publish to the stream",
            gauge(status.unpublished_here as u64),
        );
    }
}

/// A gauge holding `value`.
pub(super) fn gauge(value: u64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

fn counter(value: u64) -> Counter<u64, AtomicU64> {
    let counter = Counter::default();
    counter.inc_by(value);
    counter
}
