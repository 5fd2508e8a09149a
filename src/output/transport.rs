//! Connections to the syslog receiver: UDP, TCP, or TLS (RFC 5425) over tokio-rustls with the
//! receiver's certificate checked against `[Syslog] ca`.
//!
//! Syslog has no acknowledgements, so a stream connection is closed in a way that proves the
//! receiver read everything: our side shuts its writes (TLS: close_notify), then waits for
//! the receiver to close in turn, which it does only after reading to our end of stream.
//! Bytes a receiver accepted into its socket buffer but never read (it was stopped) are
//! therefore never counted as sent.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::{SyslogConfig, SyslogFraming, SyslogProto};

/// Connecting, writing and the closing exchange each get this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection failed; the text goes into the job record's `forwarding.error`.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{addr}: {what}: {source}")]
    Io {
        addr: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{addr}: {what} took longer than {IO_TIMEOUT:?}")]
    TimedOut { addr: String, what: &'static str },
    #[error("[Syslog] ca {path}: {message}")]
    Trust { path: String, message: String },
}

/// The pieces a connection is made from, read once from the config.
pub struct Endpoint {
    host: String,
    port: u16,
    proto: SyslogProto,
    pub framing: Option<SyslogFraming>,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl Endpoint {
    pub fn new(config: &SyslogConfig) -> Result<Endpoint, TransportError> {
        let tls = match config.proto {
            SyslogProto::Tls => Some(tls_connector(config)?),
            _ => None,
        };
        Ok(Endpoint {
            host: config.host.clone(),
            port: config.port,
            proto: config.proto,
            framing: match config.proto {
                SyslogProto::Udp => None,
                _ => Some(config.framing),
            },
            tls,
        })
    }

    fn addr_text(&self) -> String {
        format!("{}:{} ({})", self.host, self.port, self.proto_name())
    }

    fn proto_name(&self) -> &'static str {
        match self.proto {
            SyslogProto::Udp => "udp",
            SyslogProto::Tcp => "tcp",
            SyslogProto::Tls => "tls",
        }
    }

    async fn resolve(&self) -> Result<SocketAddr, TransportError> {
        let resolve_error = |source| TransportError::Resolve {
            host: self.host.clone(),
            source,
        };
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(resolve_error)?
            .next()
            .ok_or_else(|| resolve_error(std::io::Error::other("no address")))
    }

    pub async fn connect(&self) -> Result<Connection, TransportError> {
        let addr = self.resolve().await?;
        let text = self.addr_text();
        let stream = match self.proto {
            SyslogProto::Udp => {
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local).await.map_err(io(&text, "bind"))?;
                // Connected: an unreachable port comes back as ECONNREFUSED on a later send.
                socket.connect(addr).await.map_err(io(&text, "connect"))?;
                Stream::Udp(socket)
            }
            SyslogProto::Tcp | SyslogProto::Tls => {
                let tcp = timed(&text, "connect", TcpStream::connect(addr)).await?;
                let _ = tcp.set_nodelay(true);
                match &self.tls {
                    None => Stream::Tcp(tcp),
                    Some((connector, name)) => Stream::Tls(Box::new(
                        timed(&text, "TLS handshake", connector.connect(name.clone(), tcp)).await?,
                    )),
                }
            }
        };
        Ok(Connection { stream, addr: text })
    }
}

/// The syslog receiver's trust: `[Syslog] ca`, pinned or as WebPKI anchors (`crate::tls`).
fn tls_connector(
    config: &SyslogConfig,
) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), TransportError> {
    let path = config.ca.clone().unwrap_or_default();
    let trust = |e: crate::tls::TlsError| TransportError::Trust {
        path: path.display().to_string(),
        message: match e {
            crate::tls::TlsError::Cert { reason, .. } => reason,
            other => other.to_string(),
        },
    };
    let connector = crate::tls::connector(&path).map_err(trust)?;
    let name = crate::tls::server_name(&config.host).map_err(trust)?;
    Ok((connector, name))
}

fn io<'a>(addr: &'a str, what: &'static str) -> impl FnOnce(std::io::Error) -> TransportError + 'a {
    move |source| TransportError::Io {
        addr: addr.to_owned(),
        what,
        source,
    }
}

async fn timed<T>(
    addr: &str,
    what: &'static str,
    future: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, TransportError> {
    match tokio::time::timeout(IO_TIMEOUT, future).await {
        Ok(result) => result.map_err(io(addr, what)),
        Err(_) => Err(TransportError::TimedOut {
            addr: addr.to_owned(),
            what,
        }),
    }
}

enum Stream {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// One open connection to the receiver.
pub struct Connection {
    stream: Stream,
    addr: String,
}

impl Connection {
    /// Sends framed messages (UDP: one message, one datagram).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        let addr = self.addr.clone();
        match &mut self.stream {
            Stream::Udp(socket) => timed(&addr, "send", socket.send(bytes)).await.map(drop),
            Stream::Tcp(tcp) => timed(&addr, "send", tcp.write_all(bytes)).await,
            Stream::Tls(tls) => timed(&addr, "send", tls.write_all(bytes)).await,
        }
    }

    /// Ends the connection and confirms the receiver read all of it (see the module comment).
    /// UDP has nothing to confirm.
    pub async fn close(self) -> Result<(), TransportError> {
        let addr = self.addr;
        match self.stream {
            Stream::Udp(_) => Ok(()),
            Stream::Tcp(tcp) => confirm_close(&addr, tcp).await,
            Stream::Tls(tls) => confirm_close(&addr, *tls).await,
        }
    }
}

async fn confirm_close<S: AsyncRead + AsyncWrite + Unpin>(
    addr: &str,
    mut stream: S,
) -> Result<(), TransportError> {
    timed(addr, "flush", stream.flush()).await?;
    timed(addr, "shutdown", stream.shutdown()).await?;
    let mut sink = [0u8; 512];
    let closed = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                // TLS receivers often close without close_notify: the end of the stream still
                // came after everything we sent was read.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    timed(addr, "waiting for the receiver to close", closed).await
}
