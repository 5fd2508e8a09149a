use std::sync::Arc;

use super::*;

/// The value of the sample `name` (with its labels as written) in `text`.
pub(crate) fn sample(text: &str, name: &str) -> Option<f64> {
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
    let text = metrics.render(Format::OpenMetrics, |_| {});
    assert!(text.ends_with("# EOF\n"));
    let text = metrics.render(Format::PrometheusText, |_| {});
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
    let text = metrics.render(Format::PrometheusText, |_| {});
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
    let text = metrics.render(Format::PrometheusText, |_| {});
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
    let text = metrics.render(Format::PrometheusText, |_| {});
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
    let text = metrics.render(Format::PrometheusText, |_| {});
    assert_eq!(sample(&text, "pcapd_forward_lines_total"), Some(5_000.0));
    assert_eq!(sample(&text, "pcapd_forward_backlog_lines"), Some(5_000.0));
    let lag = sample(&text, "pcapd_forward_lag_seconds").unwrap();
    assert!((59.0..120.0).contains(&lag), "lag {lag}");
    metrics.forward_ended(&id, 0);
    let text = metrics.render(Format::PrometheusText, |_| {});
    assert_eq!(sample(&text, "pcapd_forward_lines_total"), Some(10_000.0));
    assert_eq!(sample(&text, "pcapd_forward_backlog_lines"), Some(0.0));
    assert_eq!(sample(&text, "pcapd_forward_lag_seconds"), Some(0.0));
}
