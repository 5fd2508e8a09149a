//! The worker child protocol of `docs/protocol.md` ("Child protocols"): one JSON object per line.
//!
//! Both ends use these types: the pool writes [`JobRequest`] lines and parses
//! [`WorkerMessage`] lines, the worker (`crate::worker`) does the reverse. The burp dialect, the pool's other child
//! protocol, is `super::burp`. Parsing is strict
//! (exactly one message kind per line, unknown keys refused) because a child that writes
//! anything else is broken and must be replaced, never guessed at.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// pcapd → worker: run one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub job: String,
    pub pcaps: Vec<PathBuf>,
    pub out: PathBuf,
    #[serde(default)]
    pub options: serde_json::Value,
}

/// Body of `{"ready": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub version: String,
    pub analyzer: String,
}

/// Body of `{"job": ID, "progress": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    pub bytes: u64,
    pub total: u64,
}

/// Body of `{"job": ID, "done": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Done {
    pub logs: Vec<String>,
    pub packets: u64,
    pub bytes: u64,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Files written under the job's `extract_files/` (docs/files.md).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_extracted: u64,
    /// Detector verdicts `hit` in detect.log.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub detect_hits: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Body of `{"job": ID, "failed": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failed {
    pub kind: FailureKind,
    pub error: String,
}

/// Why a worker could not finish a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The captures are unreadable or not captures; retrying will not help.
    BadInput,
    /// The analyzer (zeek, the command) failed.
    Analyzer,
    /// The worker itself failed (I/O on the log directory, a bug).
    Internal,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::BadInput => "bad_input",
            FailureKind::Analyzer => "analyzer",
            FailureKind::Internal => "internal",
        }
    }
}

/// One line from a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerMessage {
    Ready(Ready),
    Progress { job: String, progress: Progress },
    Done { job: String, done: Done },
    Failed { job: String, failed: Failed },
}

/// The wire shape: a flat object whose keys say which message it is.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ready: Option<Ready>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    done: Option<Done>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<Failed>,
}

/// A line that is not a valid worker message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("not a worker message ({reason}): {excerpt}")]
    Malformed { reason: String, excerpt: String },
}

impl WorkerMessage {
    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<WorkerMessage, MessageError> {
        let malformed = |reason: String| MessageError::Malformed {
            reason,
            excerpt: excerpt(line),
        };
        let wire: WireLine = serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
        match wire {
            WireLine {
                ready: Some(ready),
                job: None,
                progress: None,
                done: None,
                failed: None,
            } => Ok(WorkerMessage::Ready(ready)),
            WireLine {
                ready: None,
                job: Some(job),
                progress: Some(progress),
                done: None,
                failed: None,
            } => Ok(WorkerMessage::Progress { job, progress }),
            WireLine {
                ready: None,
                job: Some(job),
                progress: None,
                done: Some(done),
                failed: None,
            } => Ok(WorkerMessage::Done { job, done }),
            WireLine {
                ready: None,
                job: Some(job),
                progress: None,
                done: None,
                failed: Some(failed),
            } => Ok(WorkerMessage::Failed { job, failed }),
            _ => Err(malformed(
                "expected exactly one of ready, job+progress, job+done, job+failed".to_string(),
            )),
        }
    }

    /// The line to write (without its newline).
    pub fn to_line(&self) -> String {
        let wire = match self.clone() {
            WorkerMessage::Ready(ready) => WireLine {
                ready: Some(ready),
                ..WireLine::default()
            },
            WorkerMessage::Progress { job, progress } => WireLine {
                job: Some(job),
                progress: Some(progress),
                ..WireLine::default()
            },
            WorkerMessage::Done { job, done } => WireLine {
                job: Some(job),
                done: Some(done),
                ..WireLine::default()
            },
            WorkerMessage::Failed { job, failed } => WireLine {
                job: Some(job),
                failed: Some(failed),
                ..WireLine::default()
            },
        };
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

impl JobRequest {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The start of a line, for error messages: bounded, printable.
pub fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX)]);
    let mut out: String = text.escape_debug().collect();
    if line.len() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_message_kind() {
        let messages = [
            WorkerMessage::Ready(Ready {
                version: "1".into(),
                analyzer: "command".into(),
            }),
            WorkerMessage::Progress {
                job: "j1".into(),
                progress: Progress {
                    bytes: 5,
                    total: 10,
                },
            },
            WorkerMessage::Done {
                job: "j1".into(),
                done: Done {
                    logs: vec!["conn.log".into()],
                    packets: 3,
                    bytes: 10,
                    warnings: vec![],
                    files_extracted: 2,
                    detect_hits: 1,
                },
            },
            WorkerMessage::Failed {
                job: "j1".into(),
                failed: Failed {
                    kind: FailureKind::BadInput,
                    error: "no".into(),
                },
            },
        ];
        for message in messages {
            let line = message.to_line();
            assert_eq!(WorkerMessage::parse(line.as_bytes()), Ok(message));
        }
    }

    #[test]
    fn parses_the_documented_wire_shape() {
        let line = br#"{"job": "a", "failed": {"kind": "analyzer", "error": "exit 3"}}"#;
        assert_eq!(
            WorkerMessage::parse(line),
            Ok(WorkerMessage::Failed {
                job: "a".into(),
                failed: Failed {
                    kind: FailureKind::Analyzer,
                    error: "exit 3".into()
                }
            })
        );
    }

    #[test]
    fn refuses_mixed_unknown_and_garbage_lines() {
        for bad in [
            &b"garbage"[..],
            br#"{"job": "a"}"#,
            br#"{"job": "a", "progress": {"bytes": 1, "total": 2}, "done": {"logs": [], "packets": 0, "bytes": 0}}"#,
            br#"{"ready": {"version": "1", "analyzer": "x"}, "job": "a"}"#,
            br#"{"job": "a", "extra": 1, "progress": {"bytes": 1, "total": 2}}"#,
        ] {
            assert!(WorkerMessage::parse(bad).is_err(), "{}", excerpt(bad));
        }
    }

    #[test]
    fn excerpt_is_bounded_and_escaped() {
        let long = vec![b'x'; 500];
        assert_eq!(excerpt(&long).chars().count(), 81);
        assert_eq!(excerpt(b"a\"b\n"), "a\\\"b\\n");
    }
}
