//! The pieces the composition root is built from: the configuration `serve` loads, the TLS
//! acceptor, the job store, the pool's settings and the front doors' limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::DaemonError;
use crate::backend::WorkerSettings;
use crate::config::{self, BackendKind, Config};
use crate::jobs::{Indexing, JobStore, StoreError, WorkerAccess};
use crate::ledger::blocking;
use crate::pool::{self, ChildDialect, PoolSettings};
use crate::server::conn::ConnLimits;
use crate::server::ListenerLimits;
use crate::tls::{ReloadableAcceptor, TlsError};

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

/// The TLS acceptor both doors share, when either speaks TLS.
pub(super) fn tls_acceptor(config: &Config) -> Result<Option<ReloadableAcceptor>, DaemonError> {
    if !config.uses_tls() {
        return Ok(None);
    }
    let Some((cert, key)) = config.tls_files() else {
        return Err(DaemonError::Tls(TlsError::Cert {
            path: PathBuf::from("(sslcert)"),
            reason: "ssl = true needs sslcert and sslkey".into(),
        }));
    };
    Ok(Some(ReloadableAcceptor::load(cert, key)?))
}

/// Opens the job store (and its index; not in cluster mode), letting the workers' group
/// reach it.
pub(super) async fn open_store(config: &Config) -> Result<JobStore, DaemonError> {
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

/// How much longer systemd is asked to wait, every third of it, while the job store opens.
const STORE_OPEN_EXTEND: Duration = Duration::from_secs(30);

/// Adds search permission for `access`'s group to `dir` (an existing directory of pcapd's).
pub(super) fn traversable_by(dir: &Path, access: WorkerAccess) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(dir).map_err(StoreError::io(dir))?;
    std::os::unix::fs::chown(dir, None, Some(access.gid)).map_err(StoreError::io(dir))?;
    let mode = metadata.permissions().mode() | 0o010;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(StoreError::io(dir))
}

pub(super) fn listener_limits(config: &Config) -> ListenerLimits {
    ListenerLimits {
        max_connections: config.global.max_connections,
        handshake_timeout: config.global.handshake_timeout,
    }
}

/// The per-connection deadlines and sizes both front doors apply.
pub(super) fn conn_limits(config: &Config) -> ConnLimits {
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
pub(super) fn pool_settings(config: &Config) -> Result<PoolSettings, DaemonError> {
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
    .with_files(&config.extract, &config.detect)
    .with_analyzer(&config.analyzer);
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
pub(super) fn write_listen_addr(state_dir: &Path, addr: SocketAddr) {
    if std::fs::create_dir_all(state_dir).is_ok() {
        if let Err(e) = std::fs::write(state_dir.join("listen.addr"), format!("{addr}\n")) {
            tracing::warn!(error = %e, "cannot write listen.addr");
        }
    }
}
