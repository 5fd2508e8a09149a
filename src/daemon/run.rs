//! Starting, reloading and stopping the daemon.
//!
//! Order on start: open the job store and recover it, start the pool and wait for its
//! children, then accept connections and report ready (stdout line, `listen.addr` in the state
//! directory, `READY=1` to systemd). SIGTERM/SIGINT drain: stop accepting, let running jobs
//! finish within `grace`, requeue the rest on disk, exit 0. SIGHUP reloads the password, the
//! certificate, the pool size and the worker timeouts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::events::apply_pool_events;
use super::monitor::QueryCache;
use super::state::{blocking, Daemon};
use crate::backend::WorkerSettings;
use crate::config::{self, BackendKind, Config, ConfigErrors};
use crate::http::GatewayHandler;
use crate::jobs::{Indexing, JobId, JobState, JobStore, StoreError, Timestamp, WorkerAccess};
use crate::pool::{self, Admission, ChildDialect, PoolError, PoolSettings};
use crate::server::auth::Auth;
use crate::server::conn::ConnLimits;
use crate::server::tls::{ReloadableAcceptor, TlsError};
use crate::server::{run_listener, ListenerLimits, ProtocolHandler};

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
    let http_ssl = config.http.as_ref().is_some_and(|h| h.ssl);
    let tls = if config.global.ssl || http_ssl {
        let (cert, key) = tls_files(&config)?;
        Some(ReloadableAcceptor::load(&cert, &key)?)
    } else {
        None
    };
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
    let store = {
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
                opened = &mut opening => break opened?,
                _ = extend.tick() => crate::systemd::notify(&format!(
                    "EXTEND_TIMEOUT_USEC={}\nSTATUS=opening the job store (building its index)",
                    STORE_OPEN_EXTEND.as_micros()
                )),
            }
        }
    };
    let store = Arc::new(store);
    // With [Cluster] the records are shared: other hosts' running jobs and uploads are not
    // this host's to recover. Its own unfinished jobs come back as its pending stream entries.
    let cluster = match &config.cluster {
        Some(c) => Some(Arc::new(
            crate::cluster::Cluster::new(c).map_err(DaemonError::Cluster)?,
        )),
        None => None,
    };
    let recovery = if cluster.is_some() {
        crate::jobs::Recovery::default()
    } else {
        let store = store.clone();
        blocking(move || store.recover(Timestamp::now())).await?
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
        crate::output::OutputSettings::from_config(&config).map_err(DaemonError::Output)?;
    let (pool, events) = pool::start(pool_settings(&config)?).await?;
    let tracker = TaskTracker::new();
    let outputs =
        crate::output::Outputs::start(output_settings, store.clone(), shutdown.clone(), &tracker);
    let (changes, _) = broadcast::channel(1024);
    let daemon = Arc::new_cyclic(|me| Daemon {
        me: me.clone(),
        config: RwLock::new(Arc::new(config.clone())),
        auth: {
            let auth = Auth::new(password, config.global.auth_delay);
            auth.set_exempt(config.global.auth_exempt.clone());
            auth
        },
        store: store.clone(),
        pool: pool.clone(),
        changes,
        progress: Mutex::new(HashMap::new()),
        started: Instant::now(),
        shutdown: shutdown.clone(),
        accepted: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        burp_client_version,
        query_cache: QueryCache::default(),
        outputs,
        cluster: cluster.clone(),
    });
    let stop_events = CancellationToken::new();
    tracker.spawn(apply_pool_events(
        daemon.clone(),
        events,
        stop_events.clone(),
    ));
    requeue_recovered(&daemon, &recovery.requeue).await;
    if let Some(cluster) = &cluster {
        tracing::info!(
            node = cluster.node,
            "cluster mode: jobs come from the shared stream"
        );
        tracker.spawn(crate::cluster::run(
            daemon.clone(),
            cluster.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(retention_loop(daemon.clone(), shutdown.clone()));

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
        service: daemon.clone(),
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
            daemon: daemon.clone(),
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

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reloads.recv() => reload(&daemon, tls.as_ref()).await,
        }
    }

    crate::systemd::notify("STOPPING=1");
    let _ = listen_task.await;
    if let Some(task) = http_task {
        let _ = task.await;
    }
    let grace = daemon.config().worker.grace;
    let unfinished = pool.shutdown(grace).await;
    requeue_on_disk(&daemon, unfinished).await;
    connections.close();
    let _ = tokio::time::timeout(grace, connections.wait()).await;
    stop_events.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    let closing = store.clone();
    blocking(move || closing.close_index()).await;
    tracing::info!("pcapd stopped");
    Ok(())
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
    )?
    .with_files(&config.extract, &config.detect);
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

async fn requeue_recovered(daemon: &Arc<Daemon>, ids: &[JobId]) {
    for id in ids {
        match daemon.load(id).await {
            Ok(record) => {
                if let Err(e) = daemon.enqueue(daemon.job_spec(&record), Admission::Recovered) {
                    tracing::error!(job = %id, error = ?e, "cannot requeue recovered job");
                }
            }
            Err(e) => tracing::error!(job = %id, error = %e, "cannot load recovered job"),
        }
    }
}

/// Marks jobs the drain could not finish as queued again, so the next start runs them.
async fn requeue_on_disk(daemon: &Arc<Daemon>, ids: Vec<JobId>) {
    for id in ids {
        if let Some(cluster) = &daemon.cluster {
            // Its entry stays pending: this host's next start (or a live host, after
            // claim_after) runs it again.
            cluster.release(&id);
            continue;
        }
        let (store, id2) = (daemon.store.clone(), id.clone());
        let result = blocking(move || {
            store.update(&id2, |r| {
                // A job that never started is queued on disk already.
                if r.state.is_terminal() || r.state == JobState::Queued {
                    Ok(())
                } else {
                    r.return_to_queue(Timestamp::now())
                }
            })
        })
        .await;
        match result {
            Ok(_) => tracing::info!(job = %id, "requeued for the next start"),
            Err(e) => tracing::error!(job = %id, error = %e, "cannot requeue job on shutdown"),
        }
    }
}

/// SIGHUP: re-read the config; apply password, certificate, pool size and worker timeouts.
/// A bad new config is logged and the old one stays.
async fn reload(daemon: &Arc<Daemon>, tls: Option<&ReloadableAcceptor>) {
    crate::systemd::reloading();
    let current = daemon.config();
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
    if let (Some(tls), Ok((cert, key))) = (tls, tls_files(&config)) {
        if let Err(e) = tls.reload(&cert, &key) {
            tracing::error!("certificate reload failed, keeping the old one: {e}");
        }
    }
    daemon
        .pool
        .reconfigure(config.global.pool, config.worker.clone())
        .await;
    tracing::info!(pool = config.global.pool, "configuration reloaded");
    *daemon.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
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
async fn retention_loop(daemon: Arc<Daemon>, shutdown: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(60);
    loop {
        let jobs_config = daemon.config().jobs.clone();
        if !jobs_config.keep.is_zero() || jobs_config.max_disk > 0 {
            let store = daemon.store.clone();
            match blocking(move || {
                store.sweep(jobs_config.keep, jobs_config.max_disk, Timestamp::now())
            })
            .await
            {
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
