//! The client side of the wire protocol, used by the CLI, the demo and the tests.
//!
//! One [`Client`] holds one connection (TLS or plain) and sends any number of requests on it,
//! as pcapd allows. Uploads stream each file from disk in `chunk`-sized data frames, so a
//! multi-gigabyte capture never sits in memory. The daemon's certificate is verified against
//! the configured certificate (the daemon's own, or `--ca`) as the only trust anchor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::protocol::frame::{read_reply, write_frame, FrameError, RawReply};
use crate::tls::{self, TlsError};

/// Largest reply the client accepts (a `list` of many jobs, a fetched log chunk).
const MAX_REPLY: u64 = 256 << 20;
/// Upload chunk size: below the daemon's default `max_chunk` (4 MiB).
pub const DEFAULT_CHUNK: usize = 1 << 20;

/// Where and how to reach the daemon.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub host: String,
    pub port: u16,
    pub password: String,
    /// `None` = plain TCP (`ssl = false`).
    pub tls: Option<TlsTrust>,
    pub connect_timeout: Duration,
    pub chunk: usize,
}

/// The certificate the daemon must present, and the name it must present it for.
#[derive(Debug, Clone)]
pub struct TlsTrust {
    pub ca: PathBuf,
    pub server_name: String,
}

/// Messages carry their cause inline and expose no `source()`: the CLI prints errors with
/// their chain, which would say every cause twice ("refused: refused").
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {error}")]
    Connect { addr: String, error: std::io::Error },
    #[error("connection to {0} timed out")]
    ConnectTimeout(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("TLS handshake with {addr} failed: {error}")]
    Handshake { addr: String, error: std::io::Error },
    #[error("authentication failed (wrong password)")]
    Auth,
    #[error("server error {code}: {message}")]
    Server { code: String, message: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("cannot read {path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("connection error: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(io) => ClientError::Io(io),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

impl ClientError {
    /// The server's error code, if the server answered `ER`.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct Client {
    settings: ClientSettings,
    stream: Box<dyn Stream>,
}

impl Client {
    pub async fn connect(settings: ClientSettings) -> Result<Client, ClientError> {
        let addr = if settings.host.contains(':') && !settings.host.starts_with('[') {
            format!("[{}]:{}", settings.host, settings.port)
        } else {
            format!("{}:{}", settings.host, settings.port)
        };
        let tcp = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| ClientError::ConnectTimeout(addr.clone()))?
            .map_err(|error| ClientError::Connect {
                addr: addr.clone(),
                error,
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &settings.tls {
            None => Box::new(tcp),
            Some(trust) => {
                let connector = tls::connector(&trust.ca)?;
                let name = tls::server_name(&trust.server_name)?;
                let tls =
                    tokio::time::timeout(settings.connect_timeout, connector.connect(name, tcp))
                        .await
                        .map_err(|_| ClientError::ConnectTimeout(addr.clone()))?
                        .map_err(|error| ClientError::Handshake {
                            addr: addr.clone(),
                            error,
                        })?;
                Box::new(tls)
            }
        };
        Ok(Client { settings, stream })
    }

    /// Address of the daemon as configured (for messages).
    pub fn target(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    async fn send(&mut self, func: &str, kwargs: Value) -> Result<(), ClientError> {
        let request = json!({ "password": self.settings.password, "func": func, "args": [], "kwargs": kwargs });
        let body =
            serde_json::to_vec(&request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        write_frame(&mut self.stream, &body).await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        self.stream.flush().await?;
        self.read_answer().await
    }

    /// Reads the server's answer without flushing first (after a failed write, a flush would
    /// fail again while the answer already waits to be read).
    async fn read_answer(&mut self) -> Result<Vec<u8>, ClientError> {
        match read_reply(&mut self.stream, MAX_REPLY).await? {
            RawReply::Ok(body) => Ok(body),
            RawReply::Ko => Err(ClientError::Auth),
            RawReply::Er(body) => Err(server_error(&body)),
        }
    }

    /// Calls a function that answers JSON.
    pub async fn call(&mut self, func: &str, kwargs: Value) -> Result<Value, ClientError> {
        self.send(func, kwargs).await?;
        let body = self.receive().await?;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("answer to {func} is not JSON: {e}")))
    }

    /// Calls a function that answers raw bytes (`fetch`).
    pub async fn call_raw(&mut self, func: &str, kwargs: Value) -> Result<Vec<u8>, ClientError> {
        self.send(func, kwargs).await?;
        self.receive().await
    }

    /// Sends a bui-monitor burp status query (`backend = burp`). `Ok(None)` is the server's
    /// `KO`: burp had no answer for it (a warning such as an unknown client), or, on the
    /// first request of a connection, a wrong password.
    pub async fn query(
        &mut self,
        query: &str,
        cache: bool,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let request = json!({ "password": self.settings.password, "query": query, "cache": cache });
        let body =
            serde_json::to_vec(&request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        write_frame(&mut self.stream, &body).await?;
        match self.receive().await {
            Ok(answer) => Ok(Some(answer)),
            Err(ClientError::Auth) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Submits capture files by uploading them. `progress(sent, total)` is called per chunk.
    pub async fn submit_files(
        &mut self,
        paths: &[PathBuf],
        tag: Option<&str>,
        options: Map<String, Value>,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Value, ClientError> {
        let mut declared = Vec::new();
        let mut files = Vec::new();
        for path in paths {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|error| ClientError::File {
                    path: path.clone(),
                    error,
                })?;
            let size = file
                .metadata()
                .await
                .map_err(|error| ClientError::File {
                    path: path.clone(),
                    error,
                })?
                .len();
            declared.push(json!({ "name": file_label(path), "size": size }));
            files.push((path.clone(), file, size));
        }
        let total: u64 = files.iter().map(|f| f.2).sum();
        let mut kwargs = json!({ "files": declared, "options": options });
        if let Some(tag) = tag {
            kwargs["tag"] = json!(tag);
        }
        self.send("submit", kwargs).await?;
        let mut sent = 0u64;
        let mut buf = vec![0u8; self.settings.chunk.max(1)];
        for (path, mut file, size) in files {
            let mut left = size;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = file
                    .read(&mut buf[..want])
                    .await
                    .map_err(|error| ClientError::File {
                        path: path.clone(),
                        error,
                    })?;
                if n == 0 {
                    return Err(ClientError::File {
                        path,
                        error: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "file shrank while uploading",
                        ),
                    });
                }
                if let Err(e) = write_frame(&mut self.stream, &buf[..n]).await {
                    // The server refused the upload (e.g. queue_full), answered and closed while
                    // data was still being sent: report its answer, not the broken pipe.
                    return Err(self.read_answer().await.err().unwrap_or(ClientError::Io(e)));
                }
                left -= n as u64;
                sent += n as u64;
                progress(sent, total);
            }
        }
        let body = self.receive().await?;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("answer to submit is not JSON: {e}")))
    }

    /// Sends the readiness probe (`RE`) and closes.
    pub async fn probe(mut self) -> Result<(), ClientError> {
        self.stream.write_all(crate::protocol::frame::PROBE).await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "capture".into(), |n| n.to_string_lossy().into_owned())
}

fn server_error(body: &[u8]) -> ClientError {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => ClientError::Server {
            code: v["error"].as_str().unwrap_or("error").to_owned(),
            message: v["message"]
                .as_str()
                .map_or_else(|| v.to_string(), str::to_owned),
        },
        Err(_) => ClientError::Server {
            code: "error".into(),
            message: String::from_utf8_lossy(body).into_owned(),
        },
    }
}

/// The address a client should dial for a daemon bound to `bind`: wildcard binds are reached
/// over loopback of the same family.
pub fn dial_host(bind: std::net::IpAddr) -> String {
    match bind {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => "::1".into(),
        other => other.to_string(),
    }
}
