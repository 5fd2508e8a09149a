//! TLS material: PEM certificate chain and key → rustls configs (TLS 1.2 and 1.3 only).
//!
//! PEM is read through `rustls-pki-types`. The server side is reloadable on SIGHUP: the
//! listener asks [`ReloadableAcceptor::current`] for every new connection, so a reload
//! affects new handshakes and never cuts existing ones.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("invalid server name {0:?}")]
    ServerName(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads every certificate of a PEM file; an empty file is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no PEM certificate found".into()));
    }
    Ok(certs)
}

/// Builds the server configuration from a certificate chain and key file.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    Ok(Arc::new(config))
}

/// A TLS acceptor that SIGHUP can swap.
#[derive(Clone)]
pub struct ReloadableAcceptor {
    inner: Arc<RwLock<TlsAcceptor>>,
}

impl ReloadableAcceptor {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let acceptor = TlsAcceptor::from(server_config(cert, key)?);
        Ok(Self {
            inner: Arc::new(RwLock::new(acceptor)),
        })
    }

    /// Re-reads the files; on error the old certificate stays in use.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let acceptor = TlsAcceptor::from(server_config(cert, key)?);
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = acceptor;
        Ok(())
    }

    pub fn current(&self) -> TlsAcceptor {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A client connector trusting exactly the certificates in `ca` (the daemon's own
/// certificate works as its trust anchor).
pub fn connector(ca: &Path) -> Result<TlsConnector, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|e| TlsError::Cert {
            path: ca.to_owned(),
            reason: e.to_string(),
        })?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Parses the name the client verifies the certificate against (DNS name or IP address).
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName(name.to_owned()))
}
