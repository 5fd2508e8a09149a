//! The HTTP gateway (`[Http]`): Brocapi's `POST /submit/pcap` and REST routes over the same
//! job service as the TLS protocol.
//!
//! Connections come through the shared accept loop (`server::listener`: connection cap,
//! TLS with the daemon's reloadable certificate, handshake deadline, the bounded set of
//! unauthenticated connections). Here each connection is HTTP/1.1 (hyper) with the main
//! listener's deadlines: headers within `request_timeout`, each piece of a body within
//! `request_timeout`, a first authenticated request within `login_timeout`, and no longer
//! than `idle_timeout` between requests. Routes are in `routes.rs`, header parsing in
//! `request.rs`.

pub mod request;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::server::conn::{ConnEnd, ConnLimits};
use crate::server::preauth::PreAuth;
use crate::server::ConnectionHandler;
use crate::service::JobService;
use routes::RouteLimits;
pub use routes::RouteSet;

/// How often a connection's deadlines are looked at.
const WATCH_TICK: Duration = Duration::from_millis(250);

/// Serves HTTP connections for the daemon: the gateway's routes, or the metrics port's.
pub struct GatewayHandler {
    pub service: Arc<JobService>,
    pub limits: ConnLimits,
    pub routes: RouteSet,
}

/// What the deadline watch knows of a connection.
struct Activity {
    /// Requests being answered now.
    in_flight: usize,
    /// When the last request ended (or the connection began).
    since: Instant,
    /// Its place among the unauthenticated, until a request shows the password.
    pre_auth: Option<PreAuth>,
}

impl ConnectionHandler for GatewayHandler {
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
        serve_http(self, stream, peer, shutdown, pre_auth)
    }
}

async fn serve_http<S>(
    handler: Arc<GatewayHandler>,
    stream: S,
    peer: SocketAddr,
    shutdown: CancellationToken,
    pre_auth: PreAuth,
) -> ConnEnd
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = handler.limits;
    let began = Instant::now();
    let activity = Arc::new(Mutex::new(Activity {
        in_flight: 0,
        since: began,
        pre_auth: Some(pre_auth),
    }));
    let route_limits = RouteLimits {
        body_timeout: limits.request_timeout,
    };
    let route_set = handler.routes;
    let service = {
        let activity = activity.clone();
        service_fn(move |request| {
            let (service, activity) = (handler.service.clone(), activity.clone());
            async move {
                lock(&activity).in_flight += 1;
                let authenticated = || drop(lock(&activity).pre_auth.take());
                let response = routes::route(
                    &service,
                    peer,
                    request,
                    route_limits,
                    route_set,
                    authenticated,
                )
                .await;
                let mut state = lock(&activity);
                state.in_flight -= 1;
                state.since = Instant::now();
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => break match result {
                Ok(()) if draining => ConnEnd::Shutdown,
                Ok(()) => ConnEnd::ClientClosed,
                Err(e) => ConnEnd::Io(e.to_string()),
            },
            _ = shutdown.cancelled(), if !draining => {
                // Finish the request in flight, then close.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = tokio::time::sleep(WATCH_TICK) => {
                let state = lock(&activity);
                if state.in_flight > 0 {
                    continue;
                }
                let now = Instant::now();
                if state.pre_auth.is_some() && now - began >= limits.login_timeout {
                    break ConnEnd::LoginTimeout;
                }
                if now - state.since >= limits.idle_timeout {
                    break ConnEnd::Idle;
                }
            }
        }
    }
}

fn lock(activity: &Mutex<Activity>) -> std::sync::MutexGuard<'_, Activity> {
    activity.lock().unwrap_or_else(|e| e.into_inner())
}
