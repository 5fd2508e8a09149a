//! The network side: listener, TLS, authentication and the per-connection request loop.
//!
//! `listener` accepts with a connection cap taken before `accept()` and a handshake deadline;
//! `conn` runs the request loop of one connection over any `AsyncRead + AsyncWrite`, so tests
//! drive it over `tokio::io::duplex`; `auth` checks passwords; certificates come from `crate::tls`. What
//! a request does is decided by a [`Service`] (the daemon's router).

pub mod auth;
pub mod conn;
pub mod listener;
pub mod preauth;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::protocol::Reply;

pub use listener::{run_listener, ConnectionHandler, ListenerLimits, ProtocolHandler};

/// A boxed future, for the object-safe upload session.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a function call asks the connection to do next.
pub enum Outcome {
    /// Send this reply.
    Reply(Reply),
    /// Send this final reply and close: data frames the client sent after its request (a
    /// refused upload's) must not be read as requests.
    Close(Reply),
    /// Read upload data frames into this session, then send what `finish` returns.
    Upload(Box<dyn UploadSession>),
}

/// An accepted `submit` waiting for its file bytes.
pub trait UploadSession: Send {
    /// Declared size of each file, in upload order.
    fn sizes(&self) -> &[u64];
    /// Stores the next chunk of file `index`; hands the buffer back for reuse.
    fn write(&mut self, index: usize, data: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, Reply>>;
    /// All bytes arrived: make the job durable and answer.
    fn finish(self: Box<Self>) -> BoxFuture<'static, Reply>;
}

/// The request router behind the connection loop.
pub trait Service: Send + Sync + 'static {
    /// Checks a password (constant time, in `peer`'s turn); a wrong one resolves only after
    /// its delay, ready to be answered `KO`.
    fn verify<'a>(&'a self, peer: SocketAddr, password: &'a str) -> BoxFuture<'a, bool>;
    /// Runs a function call.
    fn call(
        &self,
        peer: SocketAddr,
        func: String,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> BoxFuture<'_, Outcome>;
    /// Runs a bui-monitor burp status query.
    fn query(&self, query: String, timeout: Option<f64>, cache: bool) -> BoxFuture<'_, Reply>;
}
