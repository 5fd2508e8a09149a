//! SIGHUP: re-read the configuration and apply what can change in a running daemon.
//!
//! Applied: the password (inline or `password_file`, read again), `auth_exempt`, the TLS
//! certificate and key (new handshakes), the pool size and the `[Worker]` settings the pool
//! takes per job, and every key read where it is used (`[Jobs]`, `max_upload`, `spool_dir`).
//! Which keys need a restart is the key table's `reload` column (`config::keys`); those that
//! changed are logged. A file that fails validation is refused and the running one kept.

use super::error::DaemonError;
use super::setup::embedded_config;
use crate::config::{Config, LiveConfig};
use crate::pool::PoolHandle;
use crate::server::auth::Auth;
use crate::tls::ReloadableAcceptor;

/// What a reload changes in the running daemon.
pub(super) struct Reloadable<'a> {
    pub live: &'a LiveConfig,
    pub auth: &'a Auth,
    pub pool: &'a PoolHandle,
    pub tls: Option<&'a ReloadableAcceptor>,
}

/// SIGHUP: re-read the config; apply password, certificate, pool size and worker timeouts.
/// A bad new config is logged and the old one stays.
pub(super) async fn reload(daemon: &Reloadable<'_>) {
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
    let ignored = crate::config::keys::restart_only_changes(&current, &config);
    if !ignored.is_empty() {
        tracing::warn!(
            "reload: these settings changed but need a restart: {}",
            ignored.join(", ")
        );
    }
    daemon.auth.set_password(password);
    daemon.auth.set_exempt(config.global.auth_exempt.clone());
    if let (Some(tls), Some((cert, key))) = (daemon.tls, config.tls_files()) {
        if let Err(e) = tls.reload(cert, key) {
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
