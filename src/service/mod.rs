//! The job service, shared by every front door.
//!
//! [`Command`] is a function with its arguments parsed into types (`command.rs`);
//! [`JobService`] executes it (`job_service.rs`) and gives an [`Answer`] (`answer.rs`), or a
//! [`ServiceError`]: a refusal with its [`ErrorCode`], which the TLS protocol sends as `ER`
//! and the HTTP gateway as a status and JSON body. Submissions enter through the intake
//! (`intake.rs`), streamed ones as uploads (`upload.rs`); bui-monitor's functions and burp
//! queries are answered by `monitor.rs`. The front doors (`tls_door.rs` here, `crate::http`)
//! only translate their wire format to commands and answers back.

mod answer;
pub mod command;
mod intake;
mod job_service;
mod monitor;
mod scrape;
mod tls_door;
mod upload;

pub use command::{CaptureSource, Command, FetchArgs, JobOptions, SubmitArgs, Tag};
pub use job_service::{Health, JobService, Parts};
pub use monitor::BurpMonitor;
pub use upload::StreamUpload;

use crate::jobs::StoreError;
use crate::pool::Rejected;
use crate::protocol::{client_message, ErrorCode, Reply};

/// A refused or failed call: the code a client acts on and a message for a human.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
}

impl ServiceError {
    /// The message is made client-facing here, once for both doors: no server path, at most
    /// `MAX_CLIENT_MESSAGE` bytes (see `protocol::message`).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ServiceError {
        ServiceError {
            code,
            message: client_message(&message.into()),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorCode::BadRequest, message)
    }

    pub fn shutting_down() -> ServiceError {
        ServiceError::new(
            ErrorCode::ShuttingDown,
            "the daemon is shutting down; submit later",
        )
    }

    pub fn queue_full(max: usize) -> ServiceError {
        ServiceError::new(
            ErrorCode::QueueFull,
            format!("the job queue is full ({max} jobs); try again later"),
        )
    }

    /// The TLS protocol's `ER` reply.
    pub fn into_reply(self) -> Reply {
        Reply::error(self.code, self.message)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        ServiceError::new(e.code(), e.to_string())
    }
}

impl From<Rejected> for ServiceError {
    fn from(rejected: Rejected) -> ServiceError {
        match rejected {
            Rejected::QueueFull { max } => ServiceError::queue_full(max),
            Rejected::ShuttingDown => ServiceError::shutting_down(),
            e @ Rejected::WrongDialect { .. } => {
                ServiceError::new(ErrorCode::Unsupported, e.to_string())
            }
        }
    }
}
