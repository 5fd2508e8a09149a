//! [`DaemonError`]: why the daemon could not start or run, and its exit code.

use std::net::SocketAddr;

use crate::config::{self, ConfigErrors};
use crate::jobs::StoreError;
use crate::pool::PoolError;
use crate::tls::TlsError;

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
