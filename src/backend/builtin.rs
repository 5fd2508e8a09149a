//! The builtin analyzer backend: runs `crate::analyzer::analyze` inside the worker process.
//!
//! No child process is involved, so a group kill of the worker stops the analysis at once.
//! Analyzer errors keep their kind (`bad_input` for a capture that cannot be read, so the
//! job fails without blaming the worker).

use super::WorkerSettings;
use super::{JobFailure, JobInput, JobResult, StartError};
use crate::analyzer::{analyze, AnalyzeOptions};
use crate::config::{ExtractConfig, LogFormat};
use crate::protocol::worker::FailureKind;

pub struct Builtin {
    format: LogFormat,
    extract: ExtractConfig,
    /// conn.log's Community ID seed, `None` for no `community_id` column.
    community_id: Option<u16>,
}

pub fn start(settings: &WorkerSettings) -> Result<Builtin, StartError> {
    Ok(Builtin {
        format: settings.format.into(),
        extract: settings.extract.clone(),
        community_id: settings.analyzer.community_id(),
    })
}

impl Builtin {
    pub fn run(
        &self,
        job: &JobInput<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<JobResult, JobFailure> {
        let opts = AnalyzeOptions {
            ignore_checksums: job.ignore_checksums,
            format: self.format,
            only_logs: None,
            extract: self.extract.clone(),
            community_id: self.community_id,
        };
        match analyze(job.pcaps, job.out, &opts, progress) {
            Ok(summary) => Ok(JobResult {
                logs: summary.logs,
                packets: summary.packets,
                bytes: summary.bytes,
                warnings: summary.warnings,
                files_extracted: summary.files_extracted,
            }),
            Err(e) => {
                let kind = match e.kind() {
                    "bad_input" => FailureKind::BadInput,
                    "analyzer" => FailureKind::Analyzer,
                    _ => FailureKind::Internal,
                };
                Err(JobFailure::new(kind, e.to_string()))
            }
        }
    }
}
