//! rustls configurations for node RPC: the one place TLS is set up.
//!
//! Every node and the master hold the same cluster certificate
//! (`server.pem`: private key PEM, then certificate PEM). Trust is by
//! **pinning**: a peer is accepted iff the end-entity certificate it
//! presents is byte-for-byte the cluster certificate. Names, expiry and
//! chains are ignored, as in Ganeti, whose noded checks the client
//! certificate against its own.
//!
//! Ganeti generates RSA X.509 **v1** certificates, which webpki refuses
//! (`UnsupportedCertVersion`), so nothing here goes through webpki: the
//! handshake signatures are checked with ring against the public key taken
//! out of the presented certificate by the small DER walker below
//! ([`spki_of_cert`]). Our own generator (`crate::crypto::generate_cert`)
//! makes ECDSA P-256 v3 certificates; both kinds work.
//!
//! Built by `daemons::noded` (server side, through [`super::server`]) and by
//! [`super::client::RpcClient`] (client side). This module does no I/O
//! besides reading the PEM file.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
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

    /// Parses key and certificate(s) from PEM text; `path` names the source
    /// in errors.
    pub fn from_pem(pem: &[u8], path: &Path) -> Result<Identity, TlsError> {
        let invalid = |message: String| TlsError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("bad certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("no CERTIFICATE block".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| invalid(format!("no usable private key: {e}")))?;
        // Catch a certificate we cannot parse now, not at the first handshake.
        spki_of_cert(&certs[0]).map_err(|e| invalid(format!("certificate: {e}")))?;
        Ok(Identity { certs, key })
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
    let text = std::fs::read(pem).map_err(|source| TlsError::Read {
        path: pem.to_path_buf(),
        source,
    })?;
    Identity::from_pem(&text, pem)
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn cert_sha256(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The server name a client puts in its hello. Nobody checks it (trust is
/// by pinning), but rustls needs one: the address when it is an IP literal,
/// else Ganeti's certificate name.
pub fn server_name(address: &str) -> ServerName<'static> {
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(crate::crypto::CERT_COMMON_NAME)
            .expect("the certificate common name is a valid DNS name"),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn config_error(e: rustls::Error) -> TlsError {
    TlsError::Config(e.to_string())
}

fn server_config(
    id: &Identity,
    verifier: ClientVerifier,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(config_error)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(certified_key(id)?));
    Ok(Arc::new(cfg))
}

fn client_config(
    id: &Identity,
    verifier: ServerVerifier,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(certified_key(id)?));
    Ok(Arc::new(cfg))
}

/// The certificate and signing key rustls presents. Built by hand because
/// rustls' own `with_single_cert` checks the pair through webpki, which
/// refuses X.509 v1; we check that key and certificate belong together by
/// signing a probe and verifying it against the certificate's public key.
fn certified_key(id: &Identity) -> Result<rustls::sign::SingleCertAndKey, TlsError> {
    let leaf = id
        .certs
        .first()
        .ok_or_else(|| TlsError::Config("the identity has no certificate".into()))?;
    let key = provider()
        .key_provider
        .load_private_key(id.key.clone_key())
        .map_err(config_error)?;
    let signer = key
        .choose_scheme(SCHEMES)
        .ok_or_else(|| TlsError::Config("the private key supports none of our schemes".into()))?;
    let probe = b"ganeti-rs key/certificate match probe";
    let sig = signer.sign(probe).map_err(config_error)?;
    verify_raw(probe, leaf, signer.scheme(), &sig, TlsVersion::Tls12)
        .map_err(|_| TlsError::Config("the private key does not match the certificate".into()))?;
    Ok(rustls::sign::CertifiedKey::new(id.certs.clone(), key).into())
}

fn leaf(id: &Identity) -> Result<Vec<u8>, TlsError> {
    id.certs
        .first()
        .map(|c| c.to_vec())
        .ok_or_else(|| TlsError::Config("the identity has no certificate".into()))
}

/// Server side, configured node: presents `id`; serves only clients
/// presenting exactly `id`'s certificate.
pub fn server_config_pinned(id: &Identity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config(
        id,
        ClientVerifier {
            pinned: Some(leaf(id)?),
        },
    )
}

/// Server side, unconfigured node waiting to join: presents `id`; requires
/// a client certificate but accepts any (the join protocol authenticates).
pub fn server_config_join(id: &Identity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config(id, ClientVerifier { pinned: None })
}

/// Client side: presents `id`; accepts only a server presenting exactly
/// `id`'s certificate.
pub fn client_config_pinned(id: &Identity) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config(
        id,
        ServerVerifier {
            pinned: Some(leaf(id)?),
        },
    )
}

/// Client side for joining: presents `id`; accepts any server certificate
/// (the caller checks its fingerprint through the join protocol).
pub fn client_config_unpinned(id: &Identity) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config(id, ServerVerifier { pinned: None })
}

/// Accepts iff the leaf equals `pinned` (any leaf when `None`).
fn check_pinned(pinned: Option<&[u8]>, end_entity: &[u8]) -> Result<(), rustls::Error> {
    match pinned {
        Some(p) if p != end_entity => Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        )),
        _ => Ok(()),
    }
}

/// Checks servers' certificates for [`client_config_pinned`] and
/// [`client_config_unpinned`].
#[derive(Debug)]
struct ServerVerifier {
    pinned: Option<Vec<u8>>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_pinned(self.pinned.as_deref(), end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, TlsVersion::Tls12)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, TlsVersion::Tls13)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// Checks clients' certificates for [`server_config_pinned`] and
/// [`server_config_join`]. A certificate is always required.
#[derive(Debug)]
struct ClientVerifier {
    pinned: Option<Vec<u8>>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_pinned(self.pinned.as_deref(), end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, TlsVersion::Tls12)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, TlsVersion::Tls13)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// The handshake signature schemes we verify, most preferred first.
const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsVersion {
    Tls12,
    Tls13,
}

/// The kind of key a SubjectPublicKeyInfo holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA (`rsaEncryption`); the key bytes are an `RSAPublicKey`.
    Rsa,
    /// ECDSA on P-256; the key bytes are an uncompressed point.
    EcP256,
    /// ECDSA on P-384; the key bytes are an uncompressed point.
    EcP384,
    /// Ed25519; the key bytes are the 32-byte public key.
    Ed25519,
}

/// A public key taken from a certificate: its kind and the contents of
/// the `subjectPublicKey` BIT STRING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Which algorithm.
    pub kind: KeyKind,
    /// The key bytes as ring expects them for `kind`.
    pub key: Vec<u8>,
}

fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    version: TlsVersion,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_raw(message, cert, dss.scheme, dss.signature(), version)
}

/// Checks `signature` over `message` by the key in `cert` with `scheme`,
/// through ring only (see the module doc for why not webpki).
fn verify_raw(
    message: &[u8],
    cert: &[u8],
    scheme: SignatureScheme,
    signature: &[u8],
    version: TlsVersion,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let key = spki_of_cert(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let alg = ring_algorithm(scheme, key.kind, version).ok_or(rustls::Error::PeerMisbehaved(
        rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
    ))?;
    ring::signature::UnparsedPublicKey::new(alg, &key.key)
        .verify(message, signature)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

/// The ring algorithm for a handshake signature with `scheme` by a key of
/// `kind`; `None` when they do not fit together. TLS 1.3 binds an ECDSA
/// scheme to its curve and forbids PKCS#1 v1.5; TLS 1.2 does neither.
fn ring_algorithm(
    scheme: SignatureScheme,
    kind: KeyKind,
    version: TlsVersion,
) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
    use ring::signature as s;
    use KeyKind::*;
    use SignatureScheme as S;
    let tls12 = version == TlsVersion::Tls12;
    Some(match (scheme, kind) {
        (S::ECDSA_NISTP256_SHA256, EcP256) => &s::ECDSA_P256_SHA256_ASN1,
        (S::ECDSA_NISTP384_SHA384, EcP384) => &s::ECDSA_P384_SHA384_ASN1,
        (S::ECDSA_NISTP384_SHA384, EcP256) if tls12 => &s::ECDSA_P256_SHA384_ASN1,
        (S::ECDSA_NISTP256_SHA256, EcP384) if tls12 => &s::ECDSA_P384_SHA256_ASN1,
        (S::ED25519, Ed25519) => &s::ED25519,
        (S::RSA_PSS_SHA256, Rsa) => &s::RSA_PSS_2048_8192_SHA256,
        (S::RSA_PSS_SHA384, Rsa) => &s::RSA_PSS_2048_8192_SHA384,
        (S::RSA_PSS_SHA512, Rsa) => &s::RSA_PSS_2048_8192_SHA512,
        (S::RSA_PKCS1_SHA256, Rsa) if tls12 => &s::RSA_PKCS1_2048_8192_SHA256,
        (S::RSA_PKCS1_SHA384, Rsa) if tls12 => &s::RSA_PKCS1_2048_8192_SHA384,
        (S::RSA_PKCS1_SHA512, Rsa) if tls12 => &s::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

// DER object identifiers (contents octets only).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_VERSION: u8 = 0xa0; // [0] EXPLICIT, constructed

/// Reads one DER TLV off the front of `input`: (tag, contents, rest).
fn der_next(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("truncated DER: no tag")?;
    if tag & 0x1f == 0x1f {
        return Err(format!("unsupported multi-byte DER tag {tag:#04x}"));
    }
    let (&first, rest) = rest.split_first().ok_or("truncated DER: no length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(format!("unsupported DER length form {first:#04x}"));
        }
        if rest.len() < n {
            return Err("truncated DER length".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(format!(
            "truncated DER: element of {len} bytes, {} left",
            rest.len()
        ));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn der_expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let (t, contents, rest) = der_next(input)?;
    if t != tag {
        return Err(format!("{what}: expected tag {tag:#04x}, found {t:#04x}"));
    }
    Ok((contents, rest))
}

/// The public key of a DER X.509 certificate (v1 or v3), found by walking
/// `Certificate → tbsCertificate → subjectPublicKeyInfo`.
pub fn spki_of_cert(der: &[u8]) -> Result<PublicKey, String> {
    let (cert, _) = der_expect(der, TAG_SEQUENCE, "Certificate")?;
    let (tbs, _) = der_expect(cert, TAG_SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs;
    let (tag, _, after) = der_next(rest)?;
    if tag == TAG_VERSION {
        rest = after; // v2/v3; absent in v1
    }
    // serialNumber, signature, issuer, validity, subject
    for what in ["serialNumber", "signature", "issuer", "validity", "subject"] {
        let (_, _, after) = der_next(rest).map_err(|e| format!("{what}: {e}"))?;
        rest = after;
    }
    let (spki, _) = der_expect(rest, TAG_SEQUENCE, "subjectPublicKeyInfo")?;
    parse_spki(spki)
}

/// Parses the contents of a SubjectPublicKeyInfo SEQUENCE.
fn parse_spki(spki: &[u8]) -> Result<PublicKey, String> {
    let (alg, rest) = der_expect(spki, TAG_SEQUENCE, "algorithm")?;
    let (bits, _) = der_expect(rest, TAG_BIT_STRING, "subjectPublicKey")?;
    let (&unused, key) = bits.split_first().ok_or("empty subjectPublicKey")?;
    if unused != 0 {
        return Err("subjectPublicKey has unused bits".into());
    }
    let (oid, params) = der_expect(alg, TAG_OID, "algorithm OID")?;
    let kind = if oid == OID_RSA {
        KeyKind::Rsa
    } else if oid == OID_ED25519 {
        KeyKind::Ed25519
    } else if oid == OID_EC_PUBLIC_KEY {
        let (curve, _) = der_expect(params, TAG_OID, "EC curve")?;
        if curve == OID_P256 {
            KeyKind::EcP256
        } else if curve == OID_P384 {
            KeyKind::EcP384
        } else {
            return Err("unsupported EC curve (P-256 and P-384 are)".into());
        }
    } else {
        return Err("unsupported public key algorithm (RSA, ECDSA, Ed25519 are)".into());
    };
    Ok(PublicKey {
        kind,
        key: key.to_vec(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A temporary directory removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("ganeti-rpc-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A fresh identity made by our own generator.
    pub(crate) fn new_identity() -> (TempDir, PathBuf, Identity) {
        let dir = TempDir::new("id");
        let path = dir.0.join("server.pem");
        crate::crypto::generate_cert(&path, crate::crypto::CERT_COMMON_NAME).unwrap();
        let id = load_identity(&path).unwrap();
        (dir, path, id)
    }

    /// An RSA X.509 v1 identity as Ganeti makes them, from `openssl`;
    /// `None` (with a message) when openssl is not installed.
    pub(crate) fn openssl_v1_identity(dir: &Path) -> Option<PathBuf> {
        use crate::sys::cmd::{Command, RealRunner, Runner};
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        let (key, csr, crt) = (p("k.pem"), p("r.csr"), p("c.pem"));
        let steps = [
            vec!["openssl", "genrsa", "-out", &key, "2048"],
            vec![
                "openssl",
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                "/CN=ganeti.example.com",
                "-out",
                &csr,
            ],
            vec![
                "openssl", "x509", "-req", "-in", &csr, "-signkey", &key, "-days", "1", "-out",
                &crt,
            ],
        ];
        for argv in steps {
            if let Err(e) = RealRunner.run(&Command::new(argv)) {
                eprintln!("skipping the X.509 v1 part: openssl unusable: {e}");
                return None;
            }
        }
        let mut pem = std::fs::read(dir.join("k.pem")).unwrap();
        pem.extend(std::fs::read(dir.join("c.pem")).unwrap());
        let out = dir.join("server.pem");
        crate::sys::fs::atomic_write(&out, &pem, 0o600).unwrap();
        Some(out)
    }

    /// A client that presents no certificate and accepts any server.
    pub(crate) fn client_config_without_cert() -> Arc<rustls::ClientConfig> {
        let cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier { pinned: None }))
            .with_no_client_auth();
        Arc::new(cfg)
    }

    /// [`client_config_pinned`] limited to TLS 1.2.
    pub(crate) fn client_config_tls12(id: &Identity) -> Arc<rustls::ClientConfig> {
        let cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier {
                pinned: Some(leaf(id).unwrap()),
            }))
            .with_client_cert_resolver(Arc::new(certified_key(id).unwrap()));
        Arc::new(cfg)
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let (_d1, _p1, a) = new_identity();
        let (_d2, _p2, b) = new_identity();
        let mixed = Identity {
            certs: a.certs.clone(),
            key: b.key.clone_key(),
        };
        let e = server_config_pinned(&mixed).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn loads_our_certificate_and_finds_its_p256_key() {
        let (_d, _p, id) = new_identity();
        assert_eq!(id.certs.len(), 1);
        assert_eq!(id.cert_sha256().len(), 64);
        let k = spki_of_cert(&id.certs[0]).unwrap();
        assert_eq!(k.kind, KeyKind::EcP256);
        assert_eq!(k.key.len(), 65);
        assert_eq!(k.key[0], 4, "uncompressed point");
    }

    #[test]
    fn finds_the_rsa_key_of_a_v1_certificate() {
        let dir = TempDir::new("v1");
        let Some(path) = openssl_v1_identity(&dir.0) else {
            return;
        };
        let id = load_identity(&path).unwrap();
        // version absent: the tbsCertificate starts with the serial (INTEGER)
        let (cert, _) = der_expect(&id.certs[0], TAG_SEQUENCE, "c").unwrap();
        let (tbs, _) = der_expect(cert, TAG_SEQUENCE, "t").unwrap();
        assert_eq!(der_next(tbs).unwrap().0, 0x02);
        let k = spki_of_cert(&id.certs[0]).unwrap();
        assert_eq!(k.kind, KeyKind::Rsa);
        // configs build with an RSA key too
        server_config_pinned(&id).unwrap();
        client_config_pinned(&id).unwrap();
    }

    #[test]
    fn ganeti_test_certificate_parses_when_present() {
        let p = Path::new("/usr/share/ganeti/testsuite/test/data/cert2.pem");
        if !p.exists() {
            eprintln!("skipping: {} absent", p.display());
            return;
        }
        let id = load_identity(p).unwrap();
        assert_eq!(spki_of_cert(&id.certs[0]).unwrap().kind, KeyKind::Rsa);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let dir = TempDir::new("bad");
        let e = load_identity(&dir.0.join("missing.pem")).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
        let only_cert = dir.0.join("c.pem");
        let (_d, p, _) = new_identity();
        let text = std::fs::read_to_string(p).unwrap();
        let cert_part = &text[text.find("-----BEGIN CERTIFICATE").unwrap()..];
        crate::sys::fs::atomic_write(&only_cert, cert_part.as_bytes(), 0o600).unwrap();
        let e = load_identity(&only_cert).unwrap_err().to_string();
        assert!(e.contains("private key"), "{e}");
        let garbage = dir.0.join("g.pem");
        crate::sys::fs::atomic_write(&garbage, b"hello", 0o600).unwrap();
        let e = load_identity(&garbage).unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
    }

    #[test]
    fn der_walker_never_panics_on_mutations() {
        let (_d, _p, id) = new_identity();
        let der = id.certs[0].to_vec();
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let mut m = der.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = usize::try_from(next() % m.len() as u64).unwrap();
                m[i] = u8::try_from(next() & 0xff).unwrap();
            }
            let cut = usize::try_from(next() % (m.len() as u64 + 1)).unwrap();
            let _ = spki_of_cert(&m);
            let _ = spki_of_cert(&m[..cut]);
        }
        assert!(spki_of_cert(&[]).is_err());
        assert!(spki_of_cert(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn pinning_compares_bytes() {
        assert!(check_pinned(Some(b"abc"), b"abc").is_ok());
        assert!(check_pinned(Some(b"abc"), b"abd").is_err());
        assert!(check_pinned(None, b"anything").is_ok());
    }

    #[test]
    fn tls13_refuses_pkcs1_and_mismatched_curves() {
        use SignatureScheme as S;
        assert!(ring_algorithm(S::RSA_PKCS1_SHA256, KeyKind::Rsa, TlsVersion::Tls13).is_none());
        assert!(ring_algorithm(S::RSA_PKCS1_SHA256, KeyKind::Rsa, TlsVersion::Tls12).is_some());
        assert!(
            ring_algorithm(S::ECDSA_NISTP384_SHA384, KeyKind::EcP256, TlsVersion::Tls13).is_none()
        );
        assert!(ring_algorithm(S::ED25519, KeyKind::Rsa, TlsVersion::Tls12).is_none());
    }

    #[test]
    fn server_name_is_the_ip_when_literal() {
        assert!(matches!(server_name("127.0.0.1"), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[::1]"), ServerName::IpAddress(_)));
        assert!(matches!(server_name("node1"), ServerName::DnsName(_)));
    }
}
