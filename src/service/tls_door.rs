//! The TLS protocol's door: turns `{"func", "kwargs"}` calls and burp queries into
//! [`Command`]s for the [`JobService`], and its answers and errors into `OK`/`KO`/`ER`
//! replies. The connection loop (`crate::server`) knows frames, passwords and uploads, not
//! what any function means.

use std::net::SocketAddr;

use serde_json::{Map, Value};

use super::answer::Answer;
use super::job_service::JobService;
use super::upload::DeclaredUpload;
use super::{Command, ServiceError};
use crate::protocol::{ErrorCode, Reply};
use crate::server::{BoxFuture, Outcome, Service, UploadSession};

/// An answer as the TLS protocol sends it; a refusal of a call that declared an upload
/// closes the connection (its data frames may already be on their way).
fn outcome(answer: Result<Answer, ServiceError>, upload_follows: bool) -> Outcome {
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) if upload_follows => return Outcome::Close(error.into_reply()),
        Err(error) => return Outcome::Reply(error.into_reply()),
    };
    Outcome::Reply(match answer {
        Answer::Upload(upload) => return Outcome::Upload(upload),
        Answer::Bytes(bytes) | Answer::Burp(Some(bytes)) => Reply::OkRaw(bytes),
        Answer::Text(Some(text)) => Reply::OkRaw(text.into_bytes()),
        Answer::Text(None) | Answer::Burp(None) => Reply::Ko,
        json => Reply::Ok(json.to_json().expect("every other answer is JSON")),
    })
}

fn reply(answer: Result<Answer, ServiceError>) -> Reply {
    match outcome(answer, false) {
        Outcome::Reply(reply) | Outcome::Close(reply) => reply,
        Outcome::Upload(_) => Reply::error(ErrorCode::Internal, "an upload was not expected here"),
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
        Box::pin(async move { reply(DeclaredUpload::finish(*self).await.map(Answer::Submitted)) })
    }
}

impl Service for JobService {
    fn verify<'a>(&'a self, peer: SocketAddr, password: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match self.auth().verify(peer.ip(), password).await {
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
        Box::pin(async move {
            let upload_follows = Command::declares_upload(&func, &kwargs);
            match Command::parse(&func, kwargs) {
                Some(Ok(command)) => outcome(self.execute(command).await, upload_follows),
                Some(Err(error)) => outcome(Err(error), upload_follows),
                None => Outcome::Reply(Reply::error(
                    ErrorCode::UnknownFunction,
                    format!("unknown function {func:?}"),
                )),
            }
        })
    }

    /// bui-monitor ignores the request's timeout too: `[Burp] timeout` bounds every query.
    fn query(&self, query: String, _timeout: Option<f64>, cache: bool) -> BoxFuture<'_, Reply> {
        Box::pin(async move { reply(self.execute(Command::BurpQuery { query, cache }).await) })
    }
}
