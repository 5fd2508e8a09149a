use std::sync::Arc;

use super::*;
use crate::pool::{PoolStatus, QueryCounters, SlotState, SlotStatus};

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
            dispatch_paused: vec![crate::pool::PauseReason::DiskLow],
        },
        queue_capacity: 1000,
        disk: None,
        cluster: ClusterView::Off,
        auth_failures: 6,
        draining: false,
    }
}

/// The value of the sample `name` (with its labels as written) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn record(state: JobState, queued: i64, started: Option<i64>, finished: Option<i64>) -> JobRecord {
    let mut record: JobRecord = serde_json::from_value(serde_json::json!({
        "job_id": "00000000-0000-4000-8000-000000000001", "state": "queued", "files": [],
        "created_at": "2026-01-01T00:00:00Z", "queued_at": "2026-01-01T00:00:00Z",
    }))
    .expect("a minimal record");
    record.state = state;
    record.queued_at = Timestamp::from_unix_millis(queued);
    record.started_at = started.map(Timestamp::from_unix_millis);
    record.finished_at = finished.map(Timestamp::from_unix_millis);
    record
}

#[test]
fn the_names_dashboards_rely_on_are_there() {
    let metrics = Metrics::new();
    let text = metrics.render(&snapshot(), Format::PrometheusText);
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

#[test]
fn openmetrics_when_the_scraper_asks_for_it() {
    let metrics = Metrics::new();
    assert_eq!(
        Format::from_accept(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_accept(Some("text/plain")),
        Format::PrometheusText
    );
    assert_eq!(Format::from_accept(None), Format::PrometheusText);
    let text = metrics.render(&snapshot(), Format::OpenMetrics);
    assert!(text.ends_with("# EOF\n"));
    let text = metrics.render(&snapshot(), Format::PrometheusText);
    assert!(!text.contains("# EOF"));
}

#[test]
fn finished_jobs_count_once_with_their_run_time_and_queue_wait() {
    let metrics = Metrics::new();
    let running = record(JobState::Running, 1_000, Some(3_000), None);
    metrics.job_changed(JobState::Queued, &running);
    let done = record(JobState::Done, 1_000, Some(3_000), Some(7_500));
    metrics.job_changed(JobState::Running, &done);
    // A later write of the same done record (forwarding progress) counts nothing.
    metrics.job_changed(JobState::Done, &done);
    let cancelled = record(JobState::Cancelled, 1_000, None, Some(2_000));
    metrics.job_changed(JobState::Queued, &cancelled);
    let text = metrics.render(&snapshot(), Format::PrometheusText);
    assert_eq!(
        sample(&text, "pcapd_jobs_finished_total{state=\"done\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "pcapd_jobs_finished_total{state=\"cancelled\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "pcapd_job_duration_seconds_count"), Some(1.0));
    assert_eq!(sample(&text, "pcapd_job_duration_seconds_sum"), Some(4.5));
    assert_eq!(
        sample(&text, "pcapd_job_queue_wait_seconds_count"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "pcapd_job_queue_wait_seconds_sum"), Some(2.0));
}

#[test]
fn refusals_by_reason_and_connections_open_while_held() {
    let metrics = Arc::new(Metrics::new());
    metrics.job_accepted();
    metrics.job_refused(ErrorCode::QueueFull);
    metrics.job_refused(ErrorCode::QueueFull);
    metrics.job_refused(ErrorCode::DiskFull);
    let door = DoorCounter::new(metrics.clone(), Door::Http);
    let first = door.opened();
    let second = door.opened();
    drop(first);
    let text = metrics.render(&snapshot(), Format::PrometheusText);
    assert_eq!(sample(&text, "pcapd_jobs_accepted_total"), Some(1.0));
    assert_eq!(
        sample(&text, "pcapd_jobs_refused_total{reason=\"queue_full\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "pcapd_jobs_refused_total{reason=\"disk_full\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "pcapd_connections_open{door=\"http\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "pcapd_connections_total{door=\"http\"}"),
        Some(2.0)
    );
    drop(second);
    let text = metrics.render(&snapshot(), Format::PrometheusText);
    assert_eq!(
        sample(&text, "pcapd_connections_open{door=\"http\"}"),
        Some(0.0)
    );
}

#[test]
fn forwarding_reports_lines_delivered_backlog_and_lag() {
    let metrics = Metrics::new();
    let id = JobId::generate().unwrap();
    let finished = Timestamp::from_unix_millis(Timestamp::now().unix_millis() - 60_000);
    metrics.forward_progress(&id, finished, 10_000);
    metrics.forward_progress(&id, finished, 5_000);
    let text = metrics.render(&snapshot(), Format::PrometheusText);
    assert_eq!(sample(&text, "pcapd_forward_lines_total"), Some(5_000.0));
    assert_eq!(sample(&text, "pcapd_forward_backlog_lines"), Some(5_000.0));
    let lag = sample(&text, "pcapd_forward_lag_seconds").unwrap();
    assert!((59.0..120.0).contains(&lag), "lag {lag}");
    metrics.forward_ended(&id, 0);
    let text = metrics.render(&snapshot(), Format::PrometheusText);
    assert_eq!(sample(&text, "pcapd_forward_lines_total"), Some(10_000.0));
    assert_eq!(sample(&text, "pcapd_forward_backlog_lines"), Some(0.0));
    assert_eq!(sample(&text, "pcapd_forward_lag_seconds"), Some(0.0));
}
