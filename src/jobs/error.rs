//! The job store's error type.
//!
//! Every variant carries what an operator needs to act on it (path, job id, file index), and
//! [`StoreError::code`] gives the stable wire code that the router puts in
//! `{"error": code, "message": text}`.

use crate::protocol::ErrorCode;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

use super::model::{JobId, TagError, TransitionError};

/// Why a `paths` submission named a file pcapd will not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRejection {
    Empty,
    /// A `..` component: refused before looking at the disk.
    ParentComponent,
    /// An absolute path that does not lie under `spool_dir`.
    OutsideSpool,
    /// The path lies under `spool_dir` but a symlink along it resolves outside.
    SymlinkOutside,
    NotRegularFile,
    Missing,
    /// A NUL byte: no file system path holds one.
    NulByte,
}

impl PathRejection {
    pub fn describe(self) -> &'static str {
        match self {
            PathRejection::Empty => "empty path",
            PathRejection::ParentComponent => "'..' components are not allowed",
            PathRejection::OutsideSpool => "absolute path outside spool_dir",
            PathRejection::SymlinkOutside => "resolves (through a symlink) outside spool_dir",
            PathRejection::NotRegularFile => "not a regular file",
            PathRejection::Missing => "no such file",
            PathRejection::NulByte => "holds a NUL byte",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no job {0}")]
    NotFound(JobId),
    #[error("{path}: corrupt job record: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("bad submission: {0}")]
    BadRequest(String),
    #[error("bad tag: {0}")]
    BadTag(#[from] TagError),
    #[error("bad 'since' timestamp: {0}")]
    BadSince(String),
    #[error("file {index} ({name:?}) is {size} bytes; max_upload is {max}")]
    UploadTooLarge {
        index: usize,
        name: String,
        size: u64,
        max: u64,
    },
    #[error("file {index} ({name:?}): a chunk would bring it to {attempted} bytes, but {declared} were declared")]
    UploadOverrun {
        index: usize,
        name: String,
        declared: u64,
        attempted: u64,
    },
    #[error("file {index} ({name:?}): {received} of {declared} declared bytes arrived")]
    UploadIncomplete {
        index: usize,
        name: String,
        declared: u64,
        received: u64,
    },
    #[error("{path}: rejected: {}", reason.describe())]
    PathRejected { path: String, reason: PathRejection },
    #[error(transparent)]
    IllegalTransition(#[from] TransitionError),
    #[error("bad log name {0:?}: a plain file name is expected")]
    BadLogName(String),
    #[error("job {job_id} has no log {name:?}")]
    LogNotFound { job_id: JobId, name: String },
}

impl StoreError {
    /// The stable wire error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Io { .. } => ErrorCode::Io,
            StoreError::NotFound(_) | StoreError::LogNotFound { .. } => ErrorCode::NotFound,
            StoreError::Corrupt { .. } => ErrorCode::Corrupt,
            StoreError::BadRequest(_) | StoreError::BadSince(_) | StoreError::BadLogName(_) => {
                ErrorCode::BadRequest
            }
            StoreError::BadTag(_) => ErrorCode::BadTag,
            StoreError::UploadTooLarge { .. } => ErrorCode::UploadTooLarge,
            StoreError::UploadOverrun { .. } | StoreError::UploadIncomplete { .. } => {
                ErrorCode::UploadSizeMismatch
            }
            StoreError::PathRejected { .. } => ErrorCode::PathRejected,
            StoreError::IllegalTransition(_) => ErrorCode::IllegalTransition,
        }
    }

    /// Attaches a path to an I/O error: `.map_err(StoreError::io(&path))`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Lets `update` take closures that cannot fail.
impl From<Infallible> for StoreError {
    fn from(never: Infallible) -> StoreError {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::model::JobState;

    #[test]
    fn codes_are_stable_and_messages_carry_context() {
        let id = JobId::parse("507965ab-6511-4cd4-9542-4671eb140f92").unwrap();
        let missing = StoreError::NotFound(id.clone());
        assert_eq!(missing.code().as_str(), "not_found");
        assert!(missing.to_string().contains(id.as_str()));

        let overrun = StoreError::UploadOverrun {
            index: 1,
            name: "b.pcap".into(),
            declared: 10,
            attempted: 12,
        };
        assert_eq!(overrun.code().as_str(), "upload_size_mismatch");
        assert!(overrun.to_string().contains("b.pcap"));

        let rejected = StoreError::PathRejected {
            path: "../etc/passwd".into(),
            reason: PathRejection::ParentComponent,
        };
        assert_eq!(rejected.code().as_str(), "path_rejected");
        assert!(rejected.to_string().contains("'..'"));

        let illegal = StoreError::from(TransitionError {
            job_id: id,
            from: JobState::Done,
            action: "cancel",
        });
        assert_eq!(illegal.code().as_str(), "illegal_transition");
        let io = StoreError::io(Path::new("/x/job.json"))(std::io::Error::other("disk on fire"));
        assert_eq!(io.code().as_str(), "io");
        assert_eq!(io.to_string(), "/x/job.json: disk on fire");
    }
}
