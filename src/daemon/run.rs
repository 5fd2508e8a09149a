//! Starting, reloading and stopping the daemon.
//!
//! Order on start: open the job store and recover it, start the pool and wait for its
//! children, then accept connections and report ready (stdout line, `listen.addr` in the state
//! directory, `READY=1` to systemd). SIGTERM/SIGINT drain: stop accepting, let running jobs
//! finish within `grace`, requeue the rest on disk, exit 0. SIGHUP reloads the password, the
//! certificate, the pool size and the worker timeouts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::events::PoolEvents;
use crate::backend::WorkerSettings;
use crate::config::{self, BackendKind, Config, ConfigErrors, LiveConfig};
use crate::dispatch::{ClusterDispatch, Dispatch, LocalDispatch};
use crate::http::GatewayHandler;
use crate::jobs::{Indexing, JobStore, StoreError, WorkerAccess};
use crate::ledger::{blocking, Fence, JobLedger};
use crate::pool::{self, ChildDialect, PoolError, PoolHandle, PoolSettings};
use crate::server::auth::Auth;
use crate::server::conn::ConnLimits;
use crate::server::{run_listener, ListenerLimits, ProtocolHandler};
use crate::service::{BurpMonitor, JobService, Parts};
use crate::tls::{ReloadableAcceptor, TlsError};

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("configuration error:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Credentials(#[from] Box<config::ConfigError>),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("job store: {0}")]
    Store(#[from] StoreError),
    #[error("worker pool: {0}")]
    Pool(#[from] PoolError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot locate the pcapd executable for the workers: {0}")]
    Exe(std::io::Error),
    #[error("{0}")]
    Signals(std::io::Error),
    #[error("worker settings: {0}")]
    Worker(#[from] crate::backend::SettingsError),
    #[error(transparent)]
    BurpClient(#[from] crate::backend::burp::BurpClientError),
    #[error("[Worker] user/group: {0}")]
    WorkerIdentity(crate::pool::SpawnError),
    #[error(transparent)]
    Output(crate::output::transport::TransportError),
    #[error(transparent)]
    Cluster(crate::cluster::ClusterError),
}

impl DaemonError {
    /// Configuration problems exit 64, everything else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Config(_)
            | DaemonError::Credentials(_)
            | DaemonError::Tls(_)
            | DaemonError::Worker(_)
            | DaemonError::BurpClient(_)
            | DaemonError::WorkerIdentity(_)
            | DaemonError::Output(_)
            | DaemonError::Cluster(_) => crate::exit::EXIT_CONFIG,
            _ => 1,
        }
    }
}

/// What the daemon reports once it accepts connections.
#[derive(Debug, Clone)]
pub struct Ready {
    pub addr: SocketAddr,
    /// The HTTP gateway's address, with `[Http]`.
    pub http_addr: Option<SocketAddr>,
}

/// Loads the configuration `serve` uses: the given file, else the default file if present,
/// else embedded defaults (credentials generated in the state directory).
pub fn load_config(path: Option<&Path>) -> Result<Config, DaemonError> {
    let default = Path::new(config::DEFAULT_CONFIG_PATH);
    let path = match path {
        Some(p) => Some(p.to_owned()),
        None if default.exists() => Some(default.to_owned()),
        None => None,
    };
    match path {
        Some(p) => Ok(Config::load(&p)?),
        None => embedded_config(config::default_state_dir()),
    }
}

/// Embedded defaults rooted at `state_dir`, with credentials created on first use.
pub fn embedded_config(state_dir: PathBuf) -> Result<Config, DaemonError> {
    config::ensure_embedded_credentials(&state_dir).map_err(Box::new)?;
    Ok(Config::embedded(state_dir))
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
        stop_events,
    } = core;

    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: SocketAddr::new(config.global.bind, config.global.port),
        source,
    })?;
    let http_listener = match &config.http {
        Some(http) => {
            let addr = SocketAddr::new(http.bind, http.port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| DaemonError::Bind { addr, source })?;
            Some((listener, bound, http.ssl))
        }
        None => None,
    };
    let ready = Ready {
        addr,
        http_addr: http_listener.as_ref().map(|(_, bound, _)| *bound),
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
        shutdown.clone(),
        connections.clone(),
    ));
    let http_task = http_listener.map(|(listener, bound, ssl)| {
        tracing::info!(addr = %bound, ssl, "HTTP gateway listening");
        let gateway = Arc::new(GatewayHandler {
            service: service.clone(),
            limits: conn_limits(&config),
        });
        tokio::spawn(run_listener(
            listener,
            tls.clone().filter(|_| ssl),
            gateway,
            limits,
            shutdown.clone(),
            connections.clone(),
        ))
    });
    crate::systemd::notify("READY=1\nSTATUS=accepting jobs");
    tracing::info!(%addr, pool = config.global.pool, backend = config.global.backend.name(), "pcapd ready");
    on_ready(&ready);

    let reloadable = Reloadable {
        live: &live,
        auth: &auth,
        pool: &pool,
        tls: tls.as_ref(),
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reloads.recv() => reload(&reloadable).await,
        }
    }

    // Drain: stop accepting, let running jobs finish within `grace`, hand the rest back.
    crate::systemd::notify("STOPPING=1");
    let _ = listen_task.await;
    if let Some(task) = http_task {
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

/// The TLS acceptor both doors share, when either speaks TLS.
fn tls_acceptor(config: &Config) -> Result<Option<ReloadableAcceptor>, DaemonError> {
    let http_ssl = config.http.as_ref().is_some_and(|h| h.ssl);
    if !(config.global.ssl || http_ssl) {
        return Ok(None);
    }
    let (cert, key) = tls_files(config)?;
    Ok(Some(ReloadableAcceptor::load(&cert, &key)?))
}

/// Opens the job store (and its index; not in cluster mode), letting the workers' group
/// reach it.
async fn open_store(config: &Config) -> Result<JobStore, DaemonError> {
    let worker = pool::worker_identity(
        config.worker.user.as_deref(),
        config.worker.group.as_deref(),
    )
    .map_err(DaemonError::WorkerIdentity)?
    .map(|(uid, gid)| WorkerAccess { uid, gid });
    if let Some(access) = worker {
        let store_dirs = config.global.jobs_dir.ancestors().skip(1);
        // The workers must reach jobs_dir: pcapd's own state directory above it lets their
        // group through (search only; its files stay 0600).
        for dir in store_dirs.take_while(|d| d.starts_with(&config.global.state_dir)) {
            traversable_by(dir, access).map_err(DaemonError::Store)?;
        }
    }
    // With [Cluster] the records are shared by hosts on a common file system: a per-host
    // SQLite index would miss the other hosts' writes (and SQLite is unsafe over NFS), so
    // every host reads the records themselves.
    let index_path = (config.cluster.is_none())
        .then(|| config.global.state_dir.join(crate::jobs::index::INDEX_FILE));
    let jobs_dir = config.global.jobs_dir.clone();
    let opening = blocking(move || {
        let indexing = match &index_path {
            Some(path) => Indexing::At(path),
            None => Indexing::Off,
        };
        JobStore::open_for(&jobs_dir, worker, indexing)
    });
    // Rebuilding the index of a large store (first start after an upgrade, a deleted
    // index) can outlast systemd's start timeout: extend it while the store opens.
    tokio::pin!(opening);
    let mut extend = tokio::time::interval(STORE_OPEN_EXTEND / 3);
    extend.tick().await;
    loop {
        tokio::select! {
            opened = &mut opening => return Ok(opened?),
            _ = extend.tick() => crate::systemd::notify(&format!(
                "EXTEND_TIMEOUT_USEC={}\nSTATUS=opening the job store (building its index)",
                STORE_OPEN_EXTEND.as_micros()
            )),
        }
    }
}

/// What runs behind the front doors, and the handles the composition root keeps.
struct Core {
    service: Arc<JobService>,
    ledger: Arc<JobLedger>,
    pool: PoolHandle,
    dispatch: Arc<dyn Dispatch>,
    auth: Arc<Auth>,
    live: Arc<LiveConfig>,
    /// Stops the pool-event task (after the drain).
    stop_events: CancellationToken,
}

/// Recovers the store, starts the pool, the ledger, dispatch (local or cluster), the
/// outputs and the background tasks, and builds the job service on them.
async fn start_core(
    config: &Config,
    store: Arc<JobStore>,
    password: String,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Core, DaemonError> {
    let claims = config
        .cluster
        .as_ref()
        .map(|c| Arc::new(crate::cluster::Claims::new(c)));
    let fence = claims.clone().map(|c| c as Arc<dyn Fence>);
    let ledger = Arc::new(JobLedger::new(store, fence));
    // With [Cluster] the records are shared: other hosts' running jobs and uploads are not
    // this host's to recover. Its own unfinished jobs come back as its pending stream entries.
    let recovery = if claims.is_none() {
        ledger.recover().await?
    } else {
        crate::jobs::Recovery::default()
    };
    tracing::info!(
        requeued = recovery.requeue.len(),
        failed = recovery.failed.len(),
        cleaned = recovery.cleaned_temp,
        "job store recovered"
    );
    for (path, reason) in &recovery.unreadable {
        tracing::error!(path = %path.display(), reason, "unreadable job record left alone");
    }

    let burp_client_version = match config.global.backend {
        BackendKind::Burp => {
            Some(crate::backend::burp::client_version(&config.burp.burpbin).await?)
        }
        _ => None,
    };
    let output_settings =
        crate::output::OutputSettings::from_config(config).map_err(DaemonError::Output)?;
    let (pool, events) = pool::start(pool_settings(config)?).await?;
    let dispatch: Arc<dyn Dispatch> = match (&config.cluster, claims) {
        (Some(cluster_config), Some(claims)) => {
            let cluster =
                crate::cluster::Cluster::new(cluster_config, claims, ledger.clone(), pool.clone())
                    .map_err(DaemonError::Cluster)?;
            Arc::new(ClusterDispatch::new(Arc::new(cluster)))
        }
        _ => Arc::new(LocalDispatch::new(ledger.clone(), pool.clone())),
    };
    let outputs = Arc::new(crate::output::Outputs::start(
        output_settings,
        ledger.clone(),
        shutdown.clone(),
        tracker,
    ));
    let stop_events = CancellationToken::new();
    let pool_events = PoolEvents {
        ledger: ledger.clone(),
        dispatch: dispatch.clone(),
        outputs,
        pool: pool.clone(),
    };
    tracker.spawn(pool_events.run(events, stop_events.clone()));
    dispatch
        .clone()
        .start(recovery.requeue, shutdown.clone(), tracker)
        .await;
    let live = Arc::new(LiveConfig::new(config.clone()));
    tracker.spawn(retention_loop(
        ledger.clone(),
        live.clone(),
        shutdown.clone(),
    ));
    let auth = Arc::new(Auth::new(password, config.global.auth_delay));
    auth.set_exempt(config.global.auth_exempt.clone());
    let service = Arc::new(JobService::new(Parts {
        config: live.clone(),
        auth: auth.clone(),
        ledger: ledger.clone(),
        dispatch: dispatch.clone(),
        pool: pool.clone(),
        monitor: BurpMonitor::new(burp_client_version),
        shutdown: shutdown.clone(),
    }));
    Ok(Core {
        service,
        ledger,
        pool,
        dispatch,
        auth,
        live,
        stop_events,
    })
}

/// How much longer systemd is asked to wait, every third of it, while the job store opens.
const STORE_OPEN_EXTEND: Duration = Duration::from_secs(30);

/// Adds search permission for `access`'s group to `dir` (an existing directory of pcapd's).
fn traversable_by(dir: &Path, access: WorkerAccess) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(dir).map_err(StoreError::io(dir))?;
    std::os::unix::fs::chown(dir, None, Some(access.gid)).map_err(StoreError::io(dir))?;
    let mode = metadata.permissions().mode() | 0o010;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(StoreError::io(dir))
}

fn tls_files(config: &Config) -> Result<(PathBuf, PathBuf), DaemonError> {
    match (&config.global.sslcert, &config.global.sslkey) {
        (Some(c), Some(k)) => Ok((c.clone(), k.clone())),
        _ => Err(DaemonError::Tls(TlsError::Cert {
            path: PathBuf::from("(sslcert)"),
            reason: "ssl = true needs sslcert and sslkey".into(),
        })),
    }
}

fn listener_limits(config: &Config) -> ListenerLimits {
    ListenerLimits {
        max_connections: config.global.max_connections,
        handshake_timeout: config.global.handshake_timeout,
    }
}

/// The per-connection deadlines and sizes both front doors apply.
fn conn_limits(config: &Config) -> ConnLimits {
    let g = &config.global;
    ConnLimits {
        max_request: g.max_request,
        max_chunk: g.max_chunk,
        idle_timeout: g.idle_timeout,
        request_timeout: g.request_timeout,
        login_timeout: g.login_timeout,
    }
}

/// What the pool's children run: burp monitor clients for `backend = burp`, else this
/// executable's `worker` subcommand.
fn pool_settings(config: &Config) -> Result<PoolSettings, DaemonError> {
    if config.global.backend == BackendKind::Burp {
        let (program, args) = crate::backend::burp::monitor_command(&config.burp);
        return Ok(PoolSettings {
            size: config.global.pool,
            program,
            args,
            worker: config.worker.clone(),
            max_queue: config.global.max_queue,
            dialect: ChildDialect::Burp(crate::backend::burp::dialect(&config.burp)),
        });
    }
    let program = std::env::current_exe().map_err(DaemonError::Exe)?;
    let settings = WorkerSettings::from_config(
        config.global.backend,
        config.output.format,
        &config.zeek,
        &config.command,
        false,
        config.worker.max_line,
    )?;
    let json = settings.to_json();
    Ok(PoolSettings {
        size: config.global.pool,
        program,
        args: vec!["worker".into(), "--settings".into(), json],
        worker: config.worker.clone(),
        max_queue: config.global.max_queue,
        dialect: ChildDialect::Worker,
    })
}

/// Writes the bound address for local clients (the embedded defaults may use port 0).
fn write_listen_addr(state_dir: &Path, addr: SocketAddr) {
    if std::fs::create_dir_all(state_dir).is_ok() {
        if let Err(e) = std::fs::write(state_dir.join("listen.addr"), format!("{addr}\n")) {
            tracing::warn!(error = %e, "cannot write listen.addr");
        }
    }
}

/// What a reload changes in the running daemon.
struct Reloadable<'a> {
    live: &'a LiveConfig,
    auth: &'a Auth,
    pool: &'a PoolHandle,
    tls: Option<&'a ReloadableAcceptor>,
}

/// SIGHUP: re-read the config; apply password, certificate, pool size and worker timeouts.
/// A bad new config is logged and the old one stays.
async fn reload(daemon: &Reloadable<'_>) {
    crate::systemd::reloading();
    let current = daemon.live.get();
    let fresh = match &current.source {
        Some(path) => Config::load(path).map_err(DaemonError::from),
        None => embedded_config(current.global.state_dir.clone()),
    };
    let fresh = match fresh.and_then(|c| {
        c.password()
            .map(|p| (c, p))
            .map_err(|e| DaemonError::from(Box::new(e)))
    }) {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!("reload refused, keeping the running configuration: {e}");
            crate::systemd::notify("READY=1");
            return;
        }
    };
    let (config, password) = fresh;
    let ignored = restart_only_changes(&current, &config);
    if !ignored.is_empty() {
        tracing::warn!(
            "reload: these settings changed but need a restart: {}",
            ignored.join(", ")
        );
    }
    daemon.auth.set_password(password);
    daemon.auth.set_exempt(config.global.auth_exempt.clone());
    if let (Some(tls), Ok((cert, key))) = (daemon.tls, tls_files(&config)) {
        if let Err(e) = tls.reload(&cert, &key) {
            tracing::error!("certificate reload failed, keeping the old one: {e}");
        }
    }
    daemon
        .pool
        .reconfigure(config.global.pool, config.worker.clone())
        .await;
    tracing::info!(pool = config.global.pool, "configuration reloaded");
    daemon.live.replace(config);
    crate::systemd::notify("READY=1");
}

/// Keys a reload cannot apply (the listener, storage and worker command line are set up at
/// start) that differ between the running and the new configuration.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.global, &new.global);
    let checks: [(&'static str, bool); 16] = [
        (
            "[Burp] burpbin/bconfcli/timeout",
            format!("{:?}", old.burp) != format!("{:?}", new.burp),
        ),
        ("[Global] port", o.port != n.port),
        ("[Global] bind", o.bind != n.bind),
        ("[Global] ssl", o.ssl != n.ssl),
        ("[Global] backend", o.backend != n.backend),
        ("[Global] state_dir", o.state_dir != n.state_dir),
        ("[Global] jobs_dir", o.jobs_dir != n.jobs_dir),
        ("[Global] spool_dir", o.spool_dir != n.spool_dir),
        (
            "[Global] max_connections",
            o.max_connections != n.max_connections,
        ),
        ("[Global] max_queue", o.max_queue != n.max_queue),
        (
            "[Global] max_request/max_chunk/max_upload",
            (o.max_request, o.max_chunk, o.max_upload)
                != (n.max_request, n.max_chunk, n.max_upload),
        ),
        (
            "[Global] handshake/request/idle timeouts",
            (
                o.handshake_timeout,
                o.request_timeout,
                o.idle_timeout,
                o.login_timeout,
            ) != (
                n.handshake_timeout,
                n.request_timeout,
                n.idle_timeout,
                n.login_timeout,
            ),
        ),
        ("[Output] format", old.output.format != new.output.format),
        (
            "[Command] command",
            old.command.command != new.command.command,
        ),
        (
            "[Zeek]",
            format!("{:?}", old.zeek) != format!("{:?}", new.zeek),
        ),
        (
            "[Worker] env/user/group/memory_limit/max_line",
            format!(
                "{:?}",
                (
                    &old.worker.env,
                    &old.worker.user,
                    &old.worker.group,
                    old.worker.memory_limit,
                    old.worker.max_line
                )
            ) != format!(
                "{:?}",
                (
                    &new.worker.env,
                    &new.worker.user,
                    &new.worker.group,
                    new.worker.memory_limit,
                    new.worker.max_line
                )
            ),
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key)
        .collect()
}

/// Removes expired jobs now and then.
async fn retention_loop(
    ledger: Arc<JobLedger>,
    live: Arc<LiveConfig>,
    shutdown: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(60);
    loop {
        let jobs_config = live.get().jobs.clone();
        if !jobs_config.keep.is_zero() || jobs_config.max_disk > 0 {
            match ledger.sweep(jobs_config.keep, jobs_config.max_disk).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(removed = removed.len(), "retention removed jobs")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention sweep failed"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
