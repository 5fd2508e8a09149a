//! How a worker runs one job: the builtin analyzer, zeek, or an operator's command.
//!
//! [`Backend::start`] checks once, when the worker starts, everything a restart would not fix
//! (the zeek binary, the command template); a failure there makes the worker exit with the
//! reserved "cannot start" code. [`Backend::run`] then runs one job. Zeek and the command run
//! as the worker's own children in the worker's process group (never `setsid`), so the pool's
//! group kill stops them with the worker.

mod builtin;
pub mod burp;
pub(crate) mod command;
mod external;
pub(crate) mod settings;
mod zeek;

use std::path::{Path, PathBuf};

use crate::protocol::worker::FailureKind;
pub use settings::{AnalyzerKind, SettingsError, WorkerSettings, ZeekSettings};

/// One job as the backend sees it.
#[derive(Debug, Clone)]
pub struct JobInput<'a> {
    pub pcaps: &'a [PathBuf],
    pub out: &'a Path,
    pub ignore_checksums: bool,
}

/// What a finished job produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    /// File names in the log directory.
    pub logs: Vec<String>,
    /// Packets analysed; 0 when the analyzer does not report it (zeek, command).
    pub packets: u64,
    /// Input bytes consumed.
    pub bytes: u64,
    pub warnings: Vec<String>,
    /// Files written under `extract_files/` (the builtin analyzer's `[Extract]`).
    pub files_extracted: u64,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} failure: {error}", kind.as_str())]
pub struct JobFailure {
    pub kind: FailureKind,
    pub error: String,
}

impl JobFailure {
    pub fn new(kind: FailureKind, error: impl Into<String>) -> JobFailure {
        JobFailure {
            kind,
            error: error.into(),
        }
    }
}

/// A worker cannot start; restarting it will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("backend = command needs [Command] command")]
    NoCommand,
    #[error("[Zeek] zeekbin {zeekbin:?}: {reason}")]
    ZeekUnusable { zeekbin: PathBuf, reason: String },
}

/// The analyzer a worker runs.
pub enum Backend {
    Builtin(builtin::Builtin),
    Zeek(zeek::Zeek),
    Command(command::CommandBackend),
}

impl Backend {
    pub fn start(settings: &WorkerSettings) -> Result<Backend, StartError> {
        match settings.backend {
            AnalyzerKind::Builtin => builtin::start(settings).map(Backend::Builtin),
            AnalyzerKind::Zeek => zeek::Zeek::start(&settings.zeek).map(Backend::Zeek),
            AnalyzerKind::Command => {
                command::CommandBackend::start(settings.command.as_deref()).map(Backend::Command)
            }
        }
    }

    /// The name reported in the worker's ready line.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Builtin(_) => "builtin",
            Backend::Zeek(_) => "zeek",
            Backend::Command(_) => "command",
        }
    }

    /// Runs one job; `progress(bytes, total)` may be called any number of times.
    pub fn run(
        &self,
        job: &JobInput<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<JobResult, JobFailure> {
        match self {
            Backend::Builtin(builtin) => builtin.run(job, progress),
            Backend::Zeek(zeek) => zeek.run(job),
            Backend::Command(command) => command.run(job),
        }
    }
}
