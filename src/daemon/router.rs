//! The TLS protocol's door: turns `{"func", "kwargs"}` calls into [`Command`]s for the job
//! service (`service.rs`), answers bui-monitor's functions and burp queries (`monitor.rs`),
//! and the service's answers and errors into `OK`/`ER` replies.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::service::{Answer, DeclaredUpload};
use super::state::Daemon;
use crate::protocol::{ErrorCode, Reply};
use crate::server::{BoxFuture, Outcome, Service, UploadSession};
use crate::service::{Command, ServiceError};

impl Daemon {
    async fn dispatch(self: &Arc<Self>, func: &str, kwargs: Map<String, Value>) -> Outcome {
        let command = match Command::parse(func, kwargs) {
            Some(Ok(command)) => command,
            Some(Err(error)) => return Outcome::Reply(error.into_reply()),
            None => {
                return Outcome::Reply(match self.monitor_function(func).await {
                    Some(reply) => reply,
                    None => Reply::error(
                        ErrorCode::UnknownFunction,
                        format!("unknown function {func:?}"),
                    ),
                })
            }
        };
        match self.execute(command).await {
            Ok(Answer::Json(value)) => Outcome::Reply(Reply::Ok(value)),
            Ok(Answer::Bytes(bytes)) => Outcome::Reply(Reply::OkRaw(bytes)),
            Ok(Answer::Upload(upload)) => Outcome::Upload(upload),
            Err(error) => Outcome::Reply(error.into_reply()),
        }
    }
}

fn reply(answer: Result<Value, ServiceError>) -> Reply {
    match answer {
        Ok(value) => Reply::Ok(value),
        Err(error) => error.into_reply(),
    }
}

impl UploadSession for DeclaredUpload {
    fn sizes(&self) -> &[u64] {
        DeclaredUpload::sizes(self)
    }

    fn write(&mut self, index: usize, data: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, Reply>> {
        Box::pin(async move {
            DeclaredUpload::write(self, index, data)
                .await
                .map_err(ServiceError::into_reply)
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Reply> {
        Box::pin(async move { reply(DeclaredUpload::finish(*self).await) })
    }
}

impl Service for Daemon {
    fn verify<'a>(&'a self, peer: SocketAddr, password: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match self.auth.verify(peer.ip(), password).await {
                Ok(()) => true,
                Err(failures) => {
                    tracing::warn!(peer = %peer.ip(), failures, "authentication failed");
                    false
                }
            }
        })
    }

    fn call(
        &self,
        _peer: SocketAddr,
        func: String,
        _args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> BoxFuture<'_, Outcome> {
        Box::pin(async move { self.self_arc().dispatch(&func, kwargs).await })
    }

    fn query(&self, query: String, _timeout: Option<f64>, cache: bool) -> BoxFuture<'_, Reply> {
        // bui-monitor ignores the request's timeout too: `[Burp] timeout` bounds every query.
        Box::pin(async move { self.burp_query(&query, cache).await })
    }
}
