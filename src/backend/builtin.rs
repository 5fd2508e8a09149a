//! The builtin analyzer backend: NOT AVAILABLE in this build yet.
//!
//! The builtin analyzer (`crate::analyzer::analyze`) is written separately. Until it is wired
//! in, `start` refuses, so a worker with `backend = builtin` exits with the "cannot start" code
//! and a clear message instead of pretending to analyse. Replacing `start` and `Builtin::run`
//! (and the uninhabited field) is the whole integration.

use super::{JobFailure, JobInput, JobResult, StartError};
use crate::worker::WorkerSettings;

/// Cannot be constructed until the analyzer exists.
pub struct Builtin {
    unavailable: std::convert::Infallible,
}

pub fn start(_settings: &WorkerSettings) -> Result<Builtin, StartError> {
    Err(StartError::BuiltinUnavailable)
}

impl Builtin {
    pub fn run(
        &self,
        _job: &JobInput<'_>,
        _progress: &mut dyn FnMut(u64, u64),
    ) -> Result<JobResult, JobFailure> {
        match self.unavailable {}
    }
}
