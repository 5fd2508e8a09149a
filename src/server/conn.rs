//! The request loop of one connection, generic over the byte stream.
//!
//! Each request: wait for a frame header (idle deadline, or shutdown), check the length
//! against `max_request` before reading the body (request deadline), parse, authenticate,
//! route. Upload data frames of a `submit` are read here and streamed into the
//! [`UploadSession`] one chunk at a time, each checked against `max_chunk` and the file's
//! declared size. A framing error answers `ER` and closes this connection only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::preauth::PreAuth;
use super::{Outcome, Service, UploadSession};
use crate::protocol::frame::{
    read_frame_body, read_frame_header, write_reply, FrameError, FrameHeader, PROBE,
};
use crate::protocol::{ErrorCode, Reply, Request};

/// Bytes read from the peer at once; larger upload chunks bypass the buffer.
const READ_BUFFER: usize = 16 * 1024;

/// Limits and deadlines of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_request: u64,
    pub max_chunk: u64,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    /// From the start of the connection to a first request with the right password.
    pub login_timeout: Duration,
}

/// How a connection ended (for logs and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum ConnEnd {
    ClientClosed,
    Probe,
    Idle,
    Shutdown,
    /// An answer was sent and the connection closed on purpose (bad frame, bad password).
    ClosedAfterError,
    /// No request with the right password within `login_timeout`.
    LoginTimeout,
    /// A newer unauthenticated connection took its place (`preauth`).
    Evicted,
    Io(String),
}

pub async fn serve_connection<S, Svc>(
    stream: S,
    peer: SocketAddr,
    service: Arc<Svc>,
    limits: ConnLimits,
    shutdown: CancellationToken,
    mut pre_auth: Option<PreAuth>,
) -> ConnEnd
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    Svc: Service + ?Sized,
{
    // A request arrives as a length and a body, often in one segment: read them with one
    // receive instead of one per piece (the buffer passes writes straight through).
    let mut stream = BufReader::with_capacity(READ_BUFFER, stream);
    let mut body = Vec::new();
    let mut first = true;
    let login_by = Instant::now() + limits.login_timeout;
    let mut logged_in = false;
    loop {
        let wait = if logged_in {
            limits.idle_timeout
        } else {
            login_by.saturating_duration_since(Instant::now())
        };
        let header = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return ConnEnd::Shutdown,
            h = timeout(wait, read_frame_header(&mut stream, first)) => h,
        };
        let len = match header {
            Err(_) if !logged_in => return ConnEnd::LoginTimeout,
            Err(_) => return ConnEnd::Idle,
            Ok(Ok(FrameHeader::Closed)) => return ConnEnd::ClientClosed,
            Ok(Ok(FrameHeader::Probe)) => return ConnEnd::Probe,
            Ok(Ok(FrameHeader::Length(len))) => len,
            Ok(Err(FrameError::Io(e))) => return ConnEnd::Io(e.to_string()),
            Ok(Err(e)) => return ConnEnd::Io(e.to_string()),
        };
        first = false;
        if len > limits.max_request {
            let reply = Reply::error(
                ErrorCode::RequestTooLarge,
                format!(
                    "request frame of {len} bytes exceeds max_request ({} bytes)",
                    limits.max_request
                ),
            );
            return answer_and_close(&mut stream, &reply).await;
        }
        let read_within = if logged_in {
            limits.request_timeout
        } else {
            login_by.saturating_duration_since(Instant::now())
        };
        match timeout(read_within, read_frame_body(&mut stream, len, &mut body)).await {
            Err(_) if !logged_in => return ConnEnd::LoginTimeout,
            Err(_) => {
                let reply = Reply::error(
                    ErrorCode::BadRequest,
                    "request frame not received within request_timeout",
                );
                return answer_and_close(&mut stream, &reply).await;
            }
            Ok(Err(e)) => return ConnEnd::Io(e.to_string()),
            Ok(Ok(())) => {}
        }
        // Burp-UI sends the readiness probe as a frame (length 2, then `RE`); bui-monitor
        // reads it and closes without an answer.
        if body == PROBE {
            return ConnEnd::Probe;
        }
        let request = match Request::parse(&body) {
            Ok(r) => r,
            Err(message) => {
                let reply = Reply::error(ErrorCode::BadRequest, message);
                if let Err(e) = write_reply(&mut stream, &reply).await {
                    return ConnEnd::Io(e.to_string());
                }
                continue;
            }
        };
        let verified = tokio::select! {
            _ = shutdown.cancelled() => return ConnEnd::Shutdown,
            ok = service.verify(peer, request.password()) => ok,
        };
        if !verified {
            return answer_and_close(&mut stream, &Reply::Ko).await;
        }
        if !logged_in {
            logged_in = true;
            // No longer among the unauthenticated: it cannot be pushed out.
            drop(pre_auth.take());
        }
        let reply = match request {
            Request::Query {
                query,
                timeout,
                cache,
                ..
            } => service.query(query, timeout, cache).await,
            Request::Call {
                func, args, kwargs, ..
            } => match service.call(peer, func, args, kwargs).await {
                Outcome::Close(reply) => return answer_and_close(&mut stream, &reply).await,
                Outcome::Reply(reply) => reply,
                Outcome::Upload(session) => {
                    match receive_upload(&mut stream, session, limits).await {
                        Ok(reply) => reply,
                        Err(reply) => return answer_and_close(&mut stream, &reply).await,
                    }
                }
            },
        };
        if let Err(e) = write_reply(&mut stream, &reply).await {
            return ConnEnd::Io(e.to_string());
        }
    }
}

/// How long, and how many bytes, a closing connection keeps discarding what the client still
/// sends (see [`answer_and_close`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 16 << 20;

/// Sends a final answer and closes, with a lingering close: the write side is shut down, then
/// whatever the client is still sending (upload data already in flight) is read and discarded
/// for a bounded time. Closing a socket with unread input makes the kernel send a reset, which
/// can destroy the answer before the client reads it.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    reply: &Reply,
) -> ConnEnd {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if let Err(e) = write_reply(stream, reply).await {
        return ConnEnd::Io(e.to_string());
    }
    let _ = stream.shutdown().await;
    let _ = timeout(LINGER_TIME, async {
        let mut sink = [0u8; 16 * 1024];
        let mut discarded = 0u64;
        while discarded < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n as u64,
            }
        }
    })
    .await;
    ConnEnd::ClosedAfterError
}

/// Reads every declared file's data frames into the session. `Err` means the stream is out of
/// step (overrun, cut short, too-large chunk): answer it and close; the session is dropped, so
/// nothing half-written becomes a job.
async fn receive_upload<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut session: Box<dyn UploadSession>,
    limits: ConnLimits,
) -> Result<Reply, Reply> {
    let upload_err = |msg: String| Reply::error(ErrorCode::Upload, msg);
    let sizes = session.sizes().to_vec();
    let mut buf = Vec::new();
    for (index, &size) in sizes.iter().enumerate() {
        let mut received = 0u64;
        while received < size {
            let header = timeout(limits.request_timeout, read_frame_header(stream, false))
                .await
                .map_err(|_| upload_err(format!("file {index}: no data within request_timeout")))?;
            let len = match header {
                Ok(FrameHeader::Length(len)) => len,
                Ok(_) | Err(_) => {
                    return Err(upload_err(format!(
                        "file {index}: stream ended after {received} of {size} bytes"
                    )))
                }
            };
            if len > limits.max_chunk {
                return Err(upload_err(format!(
                    "file {index}: data frame of {len} bytes exceeds max_chunk ({} bytes)",
                    limits.max_chunk
                )));
            }
            if len > size - received {
                return Err(upload_err(format!(
                    "file {index}: data frame of {len} bytes overruns the declared size ({size} bytes, {received} received)"
                )));
            }
            match timeout(limits.request_timeout, read_frame_body(stream, len, &mut buf)).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(upload_err(format!(
                        "file {index}: stream ended inside a data frame after {received} of {size} bytes"
                    )))
                }
            }
            received += len;
            buf = session.write(index, std::mem::take(&mut buf)).await?;
        }
    }
    Ok(session.finish().await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{read_reply, write_frame, RawReply};
    use crate::server::BoxFuture;
    use serde_json::{json, Map, Value};
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A service that echoes calls and collects uploads in memory.
    #[derive(Default)]
    struct Echo {
        uploaded: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    struct MemUpload {
        sizes: Vec<u64>,
        files: Vec<Vec<u8>>,
        sink: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl UploadSession for MemUpload {
        fn sizes(&self) -> &[u64] {
            &self.sizes
        }
        fn write(&mut self, index: usize, data: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, Reply>> {
            self.files[index].extend_from_slice(&data);
            Box::pin(async move { Ok(data) })
        }
        fn finish(self: Box<Self>) -> BoxFuture<'static, Reply> {
            let n = self.files.len();
            self.sink.lock().unwrap().extend(self.files);
            Box::pin(async move { Reply::Ok(json!({ "files": n })) })
        }
    }

    impl Service for Echo {
        fn verify<'a>(&'a self, _peer: SocketAddr, password: &'a str) -> BoxFuture<'a, bool> {
            Box::pin(async move {
                if password == "pw" {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                false
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
                if func == "submit" && kwargs.contains_key("refuse") {
                    return Outcome::Close(Reply::error(ErrorCode::QueueFull, "full"));
                }
                if func == "submit" {
                    let sizes: Vec<u64> = kwargs["files"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f["size"].as_u64().unwrap())
                        .collect();
                    let files = vec![Vec::new(); sizes.len()];
                    return Outcome::Upload(Box::new(MemUpload {
                        sizes,
                        files,
                        sink: self.uploaded.clone(),
                    }));
                }
                Outcome::Reply(Reply::Ok(json!({ "func": func })))
            })
        }
        fn query(&self, _q: String, _t: Option<f64>, _c: bool) -> BoxFuture<'_, Reply> {
            Box::pin(async { Reply::Ko })
        }
    }

    const LIMITS: ConnLimits = ConnLimits {
        max_request: 256,
        max_chunk: 8,
        idle_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        login_timeout: Duration::from_secs(5),
    };

    fn start(svc: Arc<Echo>) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<ConnEnd>) {
        let (client, server) = tokio::io::duplex(4096);
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let task = tokio::spawn(serve_connection(
            server,
            peer,
            svc,
            LIMITS,
            CancellationToken::new(),
            None,
        ));
        (client, task)
    }

    async fn call(client: &mut tokio::io::DuplexStream, req: Value) -> RawReply {
        write_frame(client, &serde_json::to_vec(&req).unwrap())
            .await
            .unwrap();
        read_reply(client, 1 << 20).await.unwrap()
    }

    #[tokio::test]
    async fn persistent_connection_answers_several_requests() {
        let (mut client, task) = start(Arc::default());
        for func in ["ping", "pool"] {
            let RawReply::Ok(body) =
                call(&mut client, json!({"password": "pw", "func": func})).await
            else {
                panic!()
            };
            assert_eq!(
                serde_json::from_slice::<Value>(&body).unwrap()["func"],
                func
            );
        }
        drop(client);
        assert_eq!(task.await.unwrap(), ConnEnd::ClientClosed);
    }

    #[tokio::test]
    async fn wrong_password_is_ko_after_delay_then_closed() {
        let (mut client, task) = start(Arc::default());
        let t0 = std::time::Instant::now();
        assert_eq!(
            call(&mut client, json!({"password": "bad", "func": "ping"})).await,
            RawReply::Ko
        );
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert_eq!(task.await.unwrap(), ConnEnd::ClosedAfterError);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let (mut client, task) = start(Arc::default());
        client.write_all(&10_000u64.to_be_bytes()).await.unwrap();
        let RawReply::Er(body) = read_reply(&mut client, 1 << 20).await.unwrap() else {
            panic!()
        };
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["error"],
            "request_too_large"
        );
        assert_eq!(task.await.unwrap(), ConnEnd::ClosedAfterError);
    }

    #[tokio::test]
    async fn probe_gets_no_answer() {
        let (mut client, task) = start(Arc::default());
        client.write_all(b"RE").await.unwrap();
        assert_eq!(task.await.unwrap(), ConnEnd::Probe);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    /// Burp-UI's `init_wait` loop sends the probe framed: length 2, then `RE`.
    #[tokio::test]
    async fn framed_probe_gets_no_answer_either() {
        let (mut client, task) = start(Arc::default());
        client.write_all(&2u64.to_be_bytes()).await.unwrap();
        client.write_all(b"RE").await.unwrap();
        assert_eq!(task.await.unwrap(), ConnEnd::Probe);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn malformed_json_is_er_and_connection_stays_usable() {
        let (mut client, _task) = start(Arc::default());
        write_frame(&mut client, b"{oops").await.unwrap();
        assert!(matches!(
            read_reply(&mut client, 1 << 20).await.unwrap(),
            RawReply::Er(_)
        ));
        assert!(matches!(
            call(&mut client, json!({"password": "pw", "func": "ping"})).await,
            RawReply::Ok(_)
        ));
    }

    #[tokio::test]
    async fn upload_streams_chunks_into_session() {
        let svc = Arc::new(Echo::default());
        let (mut client, _task) = start(svc.clone());
        let req = json!({"password": "pw", "func": "submit", "kwargs": {"files": [{"name": "a", "size": 10}, {"name": "b", "size": 0}]}});
        write_frame(&mut client, &serde_json::to_vec(&req).unwrap())
            .await
            .unwrap();
        write_frame(&mut client, b"01234567").await.unwrap();
        write_frame(&mut client, b"89").await.unwrap();
        let RawReply::Ok(body) = read_reply(&mut client, 1 << 20).await.unwrap() else {
            panic!()
        };
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["files"], 2);
        assert_eq!(
            *svc.uploaded.lock().unwrap(),
            vec![b"0123456789".to_vec(), Vec::new()]
        );
    }

    #[tokio::test]
    async fn refused_upload_closes_so_data_frames_are_never_read_as_requests() {
        let (mut client, task) = start(Arc::default());
        let req = json!({"password": "pw", "func": "submit", "kwargs": {"refuse": true, "files": [{"name": "a", "size": 4}]}});
        write_frame(&mut client, &serde_json::to_vec(&req).unwrap())
            .await
            .unwrap();
        write_frame(&mut client, b"data").await.unwrap();
        let RawReply::Er(body) = read_reply(&mut client, 1 << 20).await.unwrap() else {
            panic!("not ER")
        };
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["error"],
            "queue_full"
        );
        assert_eq!(task.await.unwrap(), ConnEnd::ClosedAfterError);
    }

    /// Sizes the router refuses for their type are still followed by data frames.
    #[tokio::test]
    async fn a_refused_declaration_of_any_shape_closes_the_connection() {
        for files in [
            json!([{"name": "a", "size": "10"}]),
            json!([{"name": "a", "size": -1}]),
            json!([{"name": "a", "size": 1.5}]),
            json!("a.pcap"),
        ] {
            let (mut client, task) = start(Arc::default());
            let req = json!({"password": "pw", "func": "submit", "kwargs": {"refuse": true, "files": files}});
            write_frame(&mut client, &serde_json::to_vec(&req).unwrap())
                .await
                .unwrap();
            write_frame(&mut client, br#"{"password":"pw","func":"ping"}"#)
                .await
                .unwrap();
            assert!(matches!(
                read_reply(&mut client, 1 << 20).await.unwrap(),
                RawReply::Er(_)
            ));
            assert_eq!(task.await.unwrap(), ConnEnd::ClosedAfterError, "{files}");
        }
    }

    #[tokio::test]
    async fn upload_overrun_or_truncation_is_er_and_nothing_finishes() {
        let svc = Arc::new(Echo::default());
        let (mut client, task) = start(svc.clone());
        let req = json!({"password": "pw", "func": "submit", "kwargs": {"files": [{"name": "a", "size": 4}]}});
        write_frame(&mut client, &serde_json::to_vec(&req).unwrap())
            .await
            .unwrap();
        write_frame(&mut client, b"123456").await.unwrap();
        let RawReply::Er(body) = read_reply(&mut client, 1 << 20).await.unwrap() else {
            panic!()
        };
        assert!(String::from_utf8_lossy(&body).contains("overruns"));
        assert_eq!(task.await.unwrap(), ConnEnd::ClosedAfterError);
        assert!(svc.uploaded.lock().unwrap().is_empty());

        let (mut client, task) = start(svc.clone());
        write_frame(&mut client, &serde_json::to_vec(&req).unwrap())
            .await
            .unwrap();
        write_frame(&mut client, b"12").await.unwrap();
        client.shutdown().await.unwrap();
        let RawReply::Er(body) = read_reply(&mut client, 1 << 20).await.unwrap() else {
            panic!()
        };
        assert!(String::from_utf8_lossy(&body).contains("stream ended after 2 of 4 bytes"));
        assert_eq!(task.await.unwrap(), ConnEnd::ClosedAfterError);
        assert!(svc.uploaded.lock().unwrap().is_empty());
    }
}
