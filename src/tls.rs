//! TLS material: PEM certificate chain and key → rustls configs (TLS 1.2 and 1.3 only).
//!
//! PEM is read through `rustls-pki-types`. The server side is reloadable on SIGHUP: the
//! listener asks [`ReloadableAcceptor::current`] for every new connection, so a reload
//! affects new handshakes and never cuts existing ones.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
};
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
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    config.send_tls13_tickets = 0;
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

/// A client connector trusting exactly the certificates in `ca`.
///
/// The daemon's own certificate works as the trust anchor: a server presenting exactly one of
/// the configured certificates is accepted (pinning; this also covers self-signed
/// certificates made with `openssl req -x509`, which are marked CA and which WebPKI refuses as
/// end-entity certificates). Any other chain must verify to the configured certificates with
/// WebPKI, including the host name check.
pub fn connector(ca: &Path) -> Result<TlsConnector, TlsError> {
    let pinned = load_certs(ca)?;
    let mut roots = RootCertStore::empty();
    for cert in &pinned {
        // A certificate WebPKI cannot use as an anchor still works as a pin.
        let _ = roots.add(cert.clone());
    }
    let webpki = if roots.is_empty() {
        None
    } else {
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsError::Cert {
                path: ca.to_owned(),
                reason: e.to_string(),
            })?;
        Some(verifier)
    };
    let verifier = PinnedOrWebPki {
        pinned,
        webpki,
        provider: provider(),
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Accepts the pinned certificates as presented, else defers to WebPKI.
#[derive(Debug)]
struct PinnedOrWebPki {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|pin| pin.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Parses the name the client verifies the certificate against (DNS name or IP address).
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate marked CA (as `openssl req -x509` makes them) is accepted
    /// when pinned, and a different certificate is refused.
    #[tokio::test]
    async fn pinned_ca_certificate_is_accepted_and_others_refused() {
        let dir = std::env::temp_dir().join(format!("pcapd-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let make = |name: &str, is_ca: bool| {
            let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            if is_ca {
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            }
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            let (c, k) = (
                dir.join(format!("{name}.pem")),
                dir.join(format!("{name}.key")),
            );
            std::fs::write(&c, cert.pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            (c, k)
        };
        let (cert, key) = make("ca-marked", true);
        let (other, _) = make("other", false);
        let acceptor = TlsAcceptor::from(server_config(&cert, &key).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (sock, _) = listener.accept().await.unwrap();
                let _ = acceptor.accept(sock).await;
            }
        });
        let name = server_name("localhost").unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(
            connector(&cert)
                .unwrap()
                .connect(name.clone(), tcp)
                .await
                .is_ok(),
            "pinned certificate accepted"
        );
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(
            connector(&other).unwrap().connect(name, tcp).await.is_err(),
            "unrelated certificate refused"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
