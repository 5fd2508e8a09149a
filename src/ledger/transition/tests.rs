//! Every run outcome against every state, and the rules every writer relies on.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::jobs::{JobFile, JobId};

const STATES: [JobState; 7] = [
    JobState::Queued,
    JobState::Running,
    JobState::Done,
    JobState::Failed,
    JobState::TimedOut,
    JobState::Cancelled,
    JobState::Interrupted,
];

fn outcomes() -> Vec<JobOutcome> {
    vec![
        JobOutcome::Done {
            logs: vec!["conn.log".into()],
            packets: 7,
            warnings: vec!["w".into()],
            files_extracted: 3,
            detect_hits: 1,
        },
        JobOutcome::Failed {
            kind: FailureKind::BadInput,
            error: "/srv/jobs/J/pcaps/0.pcap: truncated".into(),
        },
        JobOutcome::Failed {
            kind: FailureKind::Analyzer,
            error: "zeek exited 1".into(),
        },
        JobOutcome::Failed {
            kind: FailureKind::Internal,
            error: "cannot write".into(),
        },
        JobOutcome::Crashed {
            exit: ChildExit::Killed { signal: 9 },
            message: "killed".into(),
        },
        JobOutcome::Crashed {
            exit: ChildExit::Exited { code: 3 },
            message: "exited".into(),
        },
        JobOutcome::TimedOut {
            after: Duration::from_secs(60),
        },
        JobOutcome::Cancelled,
        JobOutcome::ProtocolError {
            message: "bad line".into(),
        },
    ]
}

fn record_in(state: JobState) -> JobRecord {
    let mut record = JobRecord::new_queued(
        JobId::generate().unwrap(),
        None,
        Default::default(),
        vec![JobFile {
            name: "capture.pcap".into(),
            stored: "pcaps/0.pcap".into(),
            size: 10,
            sha256: "00".into(),
        }],
        Timestamp::now(),
    );
    record.state = state;
    record
}

fn finish(outcome: JobOutcome) -> Transition {
    Transition::Finished(Finish {
        outcome,
        logs: vec![LogInfo {
            name: "conn.log".into(),
            bytes: 10,
            lines: 9,
            rows: 1,
        }],
        forwarding: Some(Forwarding::pending()),
        export: None,
        disk_full: false,
    })
}

#[test]
fn a_failure_on_a_full_disk_is_disk_full_and_keeps_its_cause() {
    for outcome in outcomes() {
        let mut record = record_in(JobState::Running);
        let Transition::Finished(mut finish) = finish(outcome.clone()) else {
            unreachable!()
        };
        finish.disk_full = true;
        apply_now(&mut record, Transition::Finished(finish)).unwrap();
        let failure = matches!(
            outcome,
            JobOutcome::Failed { .. }
                | JobOutcome::Crashed { .. }
                | JobOutcome::ProtocolError { .. }
        );
        let kind = record.error.as_ref().map(|e| e.kind);
        if failure {
            assert_eq!(kind, Some(ErrorKind::DiskFull), "{outcome:?}");
            assert!(record.error.unwrap().message.starts_with("disk full"));
        } else {
            assert_ne!(kind, Some(ErrorKind::DiskFull), "{outcome:?}");
        }
    }
}

const JOB_DIR: &str = "/srv/jobs/J";

fn apply_now(record: &mut JobRecord, transition: Transition) -> Result<Effect, TransitionError> {
    apply(record, transition, Timestamp::now(), Path::new(JOB_DIR))
}

#[test]
fn every_outcome_in_every_state() {
    for state in STATES {
        for outcome in outcomes() {
            let mut record = record_in(state);
            let before = record.clone();
            let result = apply_now(&mut record, finish(outcome.clone()));
            let case = format!("{outcome:?} in {state:?}");
            if state.is_terminal() {
                assert_eq!(result, Ok(Effect::Unchanged), "{case}");
                assert_eq!(record, before, "{case}");
                continue;
            }
            let legal = state == JobState::Running
                || (state == JobState::Queued && outcome == JobOutcome::Cancelled);
            if !legal {
                assert!(result.is_err(), "{case}: {result:?}");
                continue;
            }
            assert_eq!(result, Ok(Effect::Changed), "{case}");
            assert!(record.state.is_terminal(), "{case}");
            assert!(record.finished_at.is_some(), "{case}");
            let expected_kind = match &outcome {
                JobOutcome::Done { .. } => None,
                JobOutcome::Failed { kind, .. } => Some(match kind {
                    FailureKind::BadInput => ErrorKind::BadInput,
                    FailureKind::Analyzer => ErrorKind::Analyzer,
                    FailureKind::Internal => ErrorKind::Internal,
                }),
                JobOutcome::Crashed { .. } => Some(ErrorKind::Crashed),
                JobOutcome::TimedOut { .. } => Some(ErrorKind::TimedOut),
                JobOutcome::Cancelled => Some(ErrorKind::Cancelled),
                JobOutcome::ProtocolError { .. } => Some(ErrorKind::Internal),
            };
            assert_eq!(
                record.error.as_ref().map(|e| e.kind),
                expected_kind,
                "{case}"
            );
            let expected_state = match &outcome {
                JobOutcome::Done { .. } => JobState::Done,
                JobOutcome::TimedOut { .. } => JobState::TimedOut,
                JobOutcome::Cancelled => JobState::Cancelled,
                _ => JobState::Failed,
            };
            assert_eq!(record.state, expected_state, "{case}");
        }
    }
}

#[test]
fn done_keeps_logs_and_starts_outputs_in_the_same_write() {
    let mut record = record_in(JobState::Running);
    let outcome = outcomes().remove(0);
    apply_now(&mut record, finish(outcome)).unwrap();
    assert_eq!(record.packets, Some(7));
    assert_eq!(record.warnings, vec!["w".to_string()]);
    assert_eq!(record.logs.len(), 1);
    assert_eq!(record.forwarding, Some(Forwarding::pending()));
    assert_eq!(
        record.extracted,
        Some(ExtractedCounts {
            files: 3,
            detect_hits: 1
        })
    );
}

#[test]
fn crash_keeps_exit_code_and_signal() {
    for (exit, code, signal) in [
        (ChildExit::Killed { signal: 9 }, None, Some(9)),
        (ChildExit::Exited { code: 3 }, Some(3), None),
    ] {
        let mut record = record_in(JobState::Running);
        let outcome = JobOutcome::Crashed {
            exit,
            message: "gone".into(),
        };
        apply_now(&mut record, finish(outcome)).unwrap();
        let error = record.error.unwrap();
        assert_eq!((error.exit_code, error.signal), (code, signal));
    }
}

#[test]
fn failure_messages_name_the_clients_files() {
    let mut record = record_in(JobState::Running);
    let outcome = outcomes().remove(1);
    apply_now(&mut record, finish(outcome)).unwrap();
    assert_eq!(record.error.unwrap().message, "capture.pcap: truncated");
}

#[test]
fn a_settled_job_is_left_alone_by_every_move() {
    let moves = [
        Transition::Started { pid: 1 },
        Transition::Cancel,
        Transition::ReturnToQueue,
        Transition::Claim {
            node: "a".into(),
            fresh: fresh_cluster(),
        },
        Transition::DeadLetter { reason: "r".into() },
    ];
    for state in STATES.into_iter().filter(|s| s.is_terminal()) {
        for transition in moves.clone() {
            let mut record = record_in(state);
            let before = record.clone();
            let effect = apply_now(&mut record, transition);
            assert_eq!(effect, Ok(Effect::Unchanged));
            assert_eq!(record, before);
        }
    }
}

#[test]
fn return_to_queue_of_a_queued_job_is_no_change() {
    let mut record = record_in(JobState::Queued);
    let effect = apply_now(&mut record, Transition::ReturnToQueue);
    assert_eq!(effect, Ok(Effect::Unchanged));
    let mut running = record_in(JobState::Running);
    let effect = apply_now(&mut running, Transition::ReturnToQueue);
    assert_eq!(effect, Ok(Effect::Changed));
    assert_eq!(running.state, JobState::Queued);
}

#[test]
fn setting_what_is_already_set_is_no_change() {
    let mut record = record_in(JobState::Done);
    record.cluster = Some(fresh_cluster());
    let effect = apply_now(&mut record, Transition::SetPublished(true));
    assert_eq!(effect, Ok(Effect::Unchanged));
    let effect = apply_now(&mut record, Transition::SetPublished(false));
    assert_eq!(effect, Ok(Effect::Changed));
}

#[test]
fn claim_gives_a_record_without_cluster_state_one() {
    let mut record = record_in(JobState::Queued);
    apply_now(
        &mut record,
        Transition::Claim {
            node: "b".into(),
            fresh: fresh_cluster(),
        },
    )
    .unwrap();
    let cluster = record.cluster.unwrap();
    assert_eq!(cluster.owner.as_deref(), Some("b"));
    assert_eq!((cluster.epoch, cluster.deliveries), (1, 1));
}

#[test]
fn only_run_results_are_fenced() {
    assert!(Transition::Started { pid: 1 }.is_run_result());
    assert!(finish(JobOutcome::Cancelled).is_run_result());
    assert!(Transition::NoteFailure {
        message: "m".into()
    }
    .is_run_result());
    assert!(!Transition::Cancel.is_run_result());
    assert!(!Transition::SetPublished(true).is_run_result());
}

fn fresh_cluster() -> ClusterState {
    ClusterState {
        submitted_by: "a".into(),
        published: true,
        owner: None,
        epoch: 0,
        deliveries: 0,
        last_failure: None,
    }
}
