//! The accept loop both front doors share: a connection cap taken before `accept()`, TLS
//! with a handshake deadline, one task per connection, accept errors backed off instead of
//! ending the server. Until it authenticates a connection is one of a bounded set
//! (`preauth`), pushed out by newer ones. What a connection speaks is its
//! [`ConnectionHandler`]'s business: the TLS protocol ([`ProtocolHandler`]) or HTTP
//! (`crate::http`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::{serve_connection, ConnEnd, ConnLimits};
use super::preauth::{PreAuth, PreAuthPool};
use super::Service;
use crate::backoff::Backoff;
use crate::metrics::DoorCounter;
use crate::tls::ReloadableAcceptor;

/// Listener-wide limits.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
}

/// Serves one accepted (and, with TLS, handshaken) connection.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Runs the connection to its end. `pre_auth` is its place among the unauthenticated:
    /// drop it once the peer has shown the password.
    fn serve<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        shutdown: CancellationToken,
        pre_auth: PreAuth,
    ) -> impl Future<Output = ConnEnd> + Send
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static;
}

/// The TLS protocol's connections: the request loop of `conn.rs` over a [`Service`].
pub struct ProtocolHandler<Svc: ?Sized> {
    pub service: Arc<Svc>,
    pub limits: ConnLimits,
}

impl<Svc: Service> ConnectionHandler for ProtocolHandler<Svc> {
    fn serve<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        shutdown: CancellationToken,
        pre_auth: PreAuth,
    ) -> impl Future<Output = ConnEnd> + Send
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = self.service.clone();
        serve_connection(stream, peer, service, self.limits, shutdown, Some(pre_auth))
    }
}

/// Accepts until `shutdown`; every connection task is tracked by `tracker` so the caller can
/// wait for them to finish.
pub async fn run_listener<H: ConnectionHandler>(
    listener: TcpListener,
    tls: Option<ReloadableAcceptor>,
    handler: Arc<H>,
    limits: ListenerLimits,
    door: DoorCounter,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let unauthenticated = PreAuthPool::new(limits.max_connections / 2);
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        // The permit comes first: at the cap the server stops accepting, so the kernel's
        // backlog (not our memory) holds the excess.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (socket, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(ok) => { backoff.reset(); ok }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, "accept failed; backing off {:?}", delay);
                    tokio::time::sleep(delay).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let tls = tls.as_ref().map(ReloadableAcceptor::current);
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        let pre_auth = unauthenticated.admit();
        let evicted = pre_auth.eviction();
        let open = door.opened();
        tracker.spawn(async move {
            let end = tokio::select! {
                end = handle(socket, peer, tls, handler, limits, shutdown, pre_auth) => end,
                _ = evicted.cancelled() => ConnEnd::Evicted,
            };
            tracing::debug!(%peer, ?end, "connection closed");
            drop(open);
            drop(permit);
        });
    }
}

async fn handle<H: ConnectionHandler>(
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: Arc<H>,
    limits: ListenerLimits,
    shutdown: CancellationToken,
    pre_auth: PreAuth,
) -> ConnEnd {
    match tls {
        None => handler.serve(socket, peer, shutdown, pre_auth).await,
        Some(acceptor) => {
            match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(socket)).await {
                Err(_) => ConnEnd::Io("TLS handshake not finished within handshake_timeout".into()),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    ConnEnd::Io(format!("TLS handshake failed: {e}"))
                }
                Ok(Ok(stream)) => handler.serve(stream, peer, shutdown, pre_auth).await,
            }
        }
    }
}
