//! Starting, reloading and stopping the daemon.
//!
//! Order on start: open the job store and recover it, start the pool and wait for its
//! children, then accept connections and report ready (stdout line, `listen.addr` in the state
//! directory, `READY=1` to systemd). SIGTERM/SIGINT drain: stop accepting, let running jobs
//! finish within `grace`, requeue the rest on disk, exit 0. SIGHUP reloads the password, the
//! certificate, the pool size and the worker timeouts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::core::{start_core, Core};
use super::error::DaemonError;
use super::reload;
use super::setup::{
    conn_limits, listener_limits, load_config, open_store, tls_acceptor, write_listen_addr,
};
use crate::config::Config;
use crate::http::{GatewayHandler, RouteSet};
use crate::metrics::{Door, DoorCounter};
use crate::server::{run_listener, ProtocolHandler};

/// What the daemon reports once it accepts connections.
#[derive(Debug, Clone)]
pub struct Ready {
    pub addr: SocketAddr,
    /// The HTTP gateway's address, with `[Http]`.
    pub http_addr: Option<SocketAddr>,
    /// The metrics port's address, with `[Metrics]`.
    pub metrics_addr: Option<SocketAddr>,
}

/// `pcapd serve`: runs until SIGTERM/SIGINT. Returns the exit code.
pub async fn serve_main(config_path: Option<PathBuf>) -> Result<i32, DaemonError> {
    // Captures and logs are the operator's and their group's, nobody else's: whatever the
    // caller's umask, what pcapd and its workers create is at most 0750/0640 (the unit's
    // UMask=0027, for runs outside systemd too).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o027));
    let config = load_config(config_path.as_deref())?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let addr = SocketAddr::new(config.global.bind, config.global.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })?;
    let shutdown = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: draining"); stopper.cancel(); break }
                _ = int.recv() => { tracing::info!("SIGINT: draining"); stopper.cancel(); break }
                _ = hup.recv() => { let _ = reload_tx.send(()); }
            }
        }
    });
    run(config, listener, shutdown, reload_rx, |ready| {
        println!(
            "pcapd {} listening on {}",
            env!("CARGO_PKG_VERSION"),
            ready.addr
        );
        if let Some(http) = ready.http_addr {
            println!("pcapd HTTP gateway listening on {http}");
        }
        if let Some(metrics) = ready.metrics_addr {
            println!("pcapd metrics listening on {metrics}");
        }
    })
    .await?;
    Ok(0)
}

/// Runs the daemon on a bound listener until `shutdown`; `reloads` delivers SIGHUPs.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<()>,
    on_ready: impl FnOnce(&Ready),
) -> Result<(), DaemonError> {
    let password = config.password().map_err(Box::new)?;
    crate::config::check_files(&config)?;
    let tls = tls_acceptor(&config)?;
    let store = Arc::new(open_store(&config).await?);
    let tracker = TaskTracker::new();
    let core = start_core(&config, store, password, &shutdown, &tracker).await?;
    let Core {
        service,
        ledger,
        pool,
        dispatch,
        auth,
        live,
        metrics,
        stop_events,
    } = core;

    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: SocketAddr::new(config.global.bind, config.global.port),
        source,
    })?;
    let http_listener = match &config.http {
        Some(http) => Some((
            bind(SocketAddr::new(http.bind, http.port)).await?,
            http.ssl,
            http.metrics_auth,
        )),
        None => None,
    };
    let metrics_listener = match &config.metrics {
        Some(m) => Some(bind(SocketAddr::new(m.bind, m.port)).await?),
        None => None,
    };
    let ready = Ready {
        addr,
        http_addr: http_listener.as_ref().map(|((_, bound), _, _)| *bound),
        metrics_addr: metrics_listener.as_ref().map(|(_, bound)| *bound),
    };
    write_listen_addr(&config.global.state_dir, addr);
    let limits = listener_limits(&config);
    let connections = TaskTracker::new();
    let protocol = Arc::new(ProtocolHandler {
        service: service.clone(),
        limits: conn_limits(&config),
    });
    let listen_task = tokio::spawn(run_listener(
        listener,
        tls.clone().filter(|_| config.global.ssl),
        protocol,
        limits,
        DoorCounter::new(metrics.clone(), Door::Protocol),
        shutdown.clone(),
        connections.clone(),
    ));
    // The gateway and the metrics port: the same HTTP handler with its own routes.
    let spawn_http = |listener: TcpListener, tls, routes, door| {
        let handler = Arc::new(GatewayHandler {
            service: service.clone(),
            limits: conn_limits(&config),
            routes,
        });
        tokio::spawn(run_listener(
            listener,
            tls,
            handler,
            limits,
            DoorCounter::new(metrics.clone(), door),
            shutdown.clone(),
            connections.clone(),
        ))
    };
    let http_task = http_listener.map(|((listener, bound), ssl, metrics_auth)| {
        tracing::info!(addr = %bound, ssl, "HTTP gateway listening");
        let tls = tls.clone().filter(|_| ssl);
        spawn_http(
            listener,
            tls,
            RouteSet::Gateway { metrics_auth },
            Door::Http,
        )
    });
    let metrics_task = metrics_listener.map(|(listener, bound)| {
        tracing::info!(addr = %bound, "metrics port listening");
        spawn_http(listener, None, RouteSet::MetricsOnly, Door::Metrics)
    });
    crate::systemd::notify("READY=1\nSTATUS=accepting jobs");
    tracing::info!(%addr, pool = config.global.pool, backend = config.global.backend.name(), "pcapd ready");
    on_ready(&ready);

    let reloadable = reload::Reloadable {
        live: &live,
        auth: &auth,
        pool: &pool,
        tls: tls.as_ref(),
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reloads.recv() => reload::reload(&reloadable).await,
        }
    }

    // Drain: stop accepting, let running jobs finish within `grace`, hand the rest back.
    crate::systemd::notify("STOPPING=1");
    let _ = listen_task.await;
    for task in [http_task, metrics_task].into_iter().flatten() {
        let _ = task.await;
    }
    let grace = live.get().worker.grace;
    let unfinished = pool.shutdown(grace).await;
    dispatch.unfinished(unfinished).await;
    connections.close();
    let _ = tokio::time::timeout(grace, connections.wait()).await;
    stop_events.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    ledger.close().await;
    tracing::info!("pcapd stopped");
    Ok(())
}

/// Binds a listener of the HTTP gateway or the metrics port; returns it with the address it
/// got (port 0 picks one).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), DaemonError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DaemonError::Bind { addr, source })?;
    Ok((listener, bound))
}
