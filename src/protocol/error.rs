//! [`ErrorCode`]: the one error vocabulary of every front door.
//!
//! The TLS protocol sends the code in `ER` payloads (`{"error": code, "message": text}`), the
//! HTTP gateway in its JSON error bodies with the status [`ErrorCode::http_status`] gives. The
//! job store's errors map onto the same codes (`StoreError::code`). `docs/protocol.md` lists
//! them; a code, once published, keeps its spelling.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed: a frame, JSON, an argument's type or value.
    BadRequest,
    /// A request frame over the size cap.
    RequestTooLarge,
    UnknownFunction,
    /// The job queue holds `max_queue` jobs; try later.
    QueueFull,
    /// `jobs_dir`'s file system is below `min_free`: no upload is taken until space returns.
    DiskFull,
    /// The upload stream broke or was cut.
    Upload,
    /// A capture over `max_upload`.
    UploadTooLarge,
    /// An upload's bytes did not match its declared size.
    UploadSizeMismatch,
    /// A tag that cannot be a syslog HOSTNAME.
    BadTag,
    /// A spool path outside `spool_dir`, or not a plain file.
    PathRejected,
    /// No such job, or no such log of a job.
    NotFound,
    /// The operation does not apply in the job's state.
    IllegalTransition,
    /// This daemon's configuration does not offer the function.
    Unsupported,
    /// The daemon is draining; submit again after it restarts.
    ShuttingDown,
    /// No child could take the request in time (every slot busy or backing off).
    Unavailable,
    /// The server's disk refused a read or write.
    Io,
    /// A stored job record cannot be read.
    Corrupt,
    Internal,
}

/// What a client waits before retrying a refusal that passes with time.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

impl ErrorCode {
    /// The code's wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::UnknownFunction => "unknown_function",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::Upload => "upload_failed",
            ErrorCode::UploadTooLarge => "upload_too_large",
            ErrorCode::UploadSizeMismatch => "upload_size_mismatch",
            ErrorCode::BadTag => "bad_tag",
            ErrorCode::PathRejected => "path_rejected",
            ErrorCode::NotFound => "not_found",
            ErrorCode::IllegalTransition => "illegal_transition",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Io => "io",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP gateway's status for the code: 4xx for what the client can fix, 503 for what
    /// passes with time, 500 only for the server's own failures.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::Upload
            | ErrorCode::UploadSizeMismatch
            | ErrorCode::BadTag
            | ErrorCode::PathRejected => 400,
            ErrorCode::NotFound | ErrorCode::UnknownFunction => 404,
            ErrorCode::IllegalTransition => 409,
            ErrorCode::RequestTooLarge | ErrorCode::UploadTooLarge => 413,
            ErrorCode::Unsupported => 501,
            ErrorCode::DiskFull => 507,
            ErrorCode::QueueFull | ErrorCode::ShuttingDown | ErrorCode::Unavailable => 503,
            ErrorCode::Io | ErrorCode::Corrupt | ErrorCode::Internal => 500,
        }
    }

    /// How long to wait before asking again, for refusals that pass with time.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            ErrorCode::QueueFull | ErrorCode::Unavailable => Some(RETRY_AFTER),
            ErrorCode::ShuttingDown => Some(RETRY_AFTER * 5),
            ErrorCode::DiskFull => Some(RETRY_AFTER * 30),
            _ => None,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_never_server_errors() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::BadTag,
            ErrorCode::PathRejected,
            ErrorCode::UploadTooLarge,
            ErrorCode::NotFound,
        ] {
            let status = code.http_status();
            assert!((400..500).contains(&status), "{code}: {status}");
        }
        assert_eq!(ErrorCode::QueueFull.http_status(), 503);
        assert!(ErrorCode::QueueFull.retry_after().is_some());
        assert!(ErrorCode::BadRequest.retry_after().is_none());
    }
}
