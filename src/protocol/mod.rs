//! The wire protocol pcapd shares with Burp-UI's bui-monitor (see `docs/protocol.md`).
//!
//! Client → server: frames of `len: u64 big-endian` + `len` bytes; the first frame of an
//! exchange is a JSON request, upload data frames may follow a `submit`. The two bytes `RE`
//! alone are a readiness probe. Server → client: a 2-byte status (`OK`, `KO`, `ER`), then for
//! `OK` and `ER` one frame. This module owns the byte layout only; what a request *means* is
//! the router's business (`crate::server::router`).

pub mod burp;
pub mod error;
pub mod frame;
pub mod message;
pub mod request;
pub mod worker;

pub use error::ErrorCode;
pub use frame::{read_frame_header, write_reply, FrameError, FrameHeader, Reply};
pub use message::client_message;
pub use request::Request;
