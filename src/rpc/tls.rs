//! rustls configurations for node RPC. (Contract stub; the transport
//! helper replaces the bodies.)

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate chain and its private key, as read from a `*.pem` file
/// holding both (Ganeti's `server.pem` layout).
#[derive(Debug)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// SHA-256 of the leaf certificate (lowercase hex).
    pub fn cert_sha256(&self) -> String {
        self.certs
            .first()
            .map(|c| cert_sha256(c))
            .unwrap_or_default()
    }
}

/// Why TLS material could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no usable certificate or key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("building the TLS configuration: {0}")]
    Config(String),
}

/// Loads key and certificate from one PEM file.
pub fn load_identity(pem: &Path) -> Result<Identity, TlsError> {
    Err(TlsError::Invalid {
        path: pem.to_path_buf(),
        message: "not built yet".into(),
    })
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn cert_sha256(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Server side, configured node: presents `id`; serves only clients
/// presenting exactly `id`'s certificate.
pub fn server_config_pinned(_id: &Identity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Err(TlsError::Config("not built yet".into()))
}

/// Server side, unconfigured node waiting to join: presents `id`; requires
/// a client certificate but accepts any (the join protocol authenticates).
pub fn server_config_join(_id: &Identity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Err(TlsError::Config("not built yet".into()))
}

/// Client side: presents `id`; accepts only a server presenting exactly
/// `id`'s certificate.
pub fn client_config_pinned(_id: &Identity) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    Err(TlsError::Config("not built yet".into()))
}

/// Client side for joining: presents `id`; accepts any server certificate
/// (the caller checks its fingerprint through the join protocol).
pub fn client_config_unpinned(_id: &Identity) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    Err(TlsError::Config("not built yet".into()))
}
