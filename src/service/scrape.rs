//! [`Snapshot`]: the state a Prometheus scrape reports, read by the job service just before
//! `Metrics::render` (the event counters are in `crate::metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::cluster::ClusterStatus;
use crate::disk::DiskStatus;
use crate::metrics::{counter, gauge};
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
    /// Registers the figures of this scrape.
    pub fn register(&self, registry: &mut Registry) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::sample;
    use crate::metrics::{Format, Metrics};
    use crate::pool::{QueryCounters, SlotStatus};

    fn snapshot() -> Snapshot {
        let slot = |index: usize, state: SlotState| SlotStatus {
            slot: index,
            pid: Some(100 + index as u32),
            state,
            job: None,
            jobs_done: 7,
            restarts: 2,
            crashes: 1,
            started: Some(1),
        };
        Snapshot {
            version: "9.9.9",
            backend: "builtin",
            pool: PoolStatus {
                slots: vec![slot(0, SlotState::Idle), slot(1, SlotState::Busy)],
                queue_len: 3,
                max_queue_seen: 5,
                accepted: 10,
                rejected: 0,
                timed_out: 4,
                crashed: 2,
                queries: QueryCounters::default(),
                degraded: false,
                dispatch_paused: vec![PauseReason::DiskLow],
            },
            queue_capacity: 1000,
            disk: None,
            cluster: ClusterView::Off,
            auth_failures: 6,
            draining: false,
        }
    }

    #[test]
    fn the_names_dashboards_rely_on_are_there() {
        let metrics = Metrics::new();
        let text = metrics.render(Format::PrometheusText, |registry| {
            snapshot().register(registry)
        });
        for name in [
            "pcapd_jobs_accepted_total",
            "pcapd_jobs_finished_total",
            "pcapd_queue_jobs",
            "pcapd_slots",
            "pcapd_job_duration_seconds",
            "pcapd_build_info",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing from:\n{text}"
            );
        }
        assert_eq!(sample(&text, "pcapd_queue_jobs"), Some(3.0));
        assert_eq!(sample(&text, "pcapd_queue_capacity"), Some(1000.0));
        assert_eq!(sample(&text, "pcapd_slots{state=\"idle\"}"), Some(1.0));
        assert_eq!(sample(&text, "pcapd_slots{state=\"busy\"}"), Some(1.0));
        assert_eq!(sample(&text, "pcapd_slots{state=\"backoff\"}"), Some(0.0));
        assert_eq!(
            sample(&text, "pcapd_slot_crashes_total{slot=\"1\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "pcapd_slot_restarts_total{slot=\"0\"}"),
            Some(2.0)
        );
        assert_eq!(sample(&text, "pcapd_auth_failures_total"), Some(6.0));
        assert_eq!(
            sample(&text, "pcapd_dispatch_paused{reason=\"disk_low\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "pcapd_build_info{version=\"9.9.9\",backend=\"builtin\"}"
            ),
            Some(1.0)
        );
        // No cluster: no cluster figures at all (not zeros that look like an empty queue).
        assert!(!text.contains("pcapd_cluster_"));
    }
}
