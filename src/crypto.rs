//! Cluster secrets: the node daemon certificate (`server.pem`), the confd
//! HMAC key (`hmac.key`) and the cluster domain secret.
//!
//! Generated once by `gnt-cluster init` (and renewed by `gnt-cluster
//! renew-crypto` later). Key material is written with mode 0600 through
//! [`crate::sys::fs::atomic_write`]; nothing here reads the config.
//!
//! Ganeti makes RSA-2048 X.509 v1 certificates with OpenSSL. Our pure-Rust
//! generator (rcgen on ring) makes ECDSA P-256 X.509 v3 certificates; the
//! file layout (private key PEM then certificate PEM in one file) and the
//! common name `ganeti.example.com` follow Ganeti.

use crate::constants::{CERT_VALIDITY_DAYS, HMAC_KEY_BYTES};
use crate::sys::fs::{atomic_write, random_bytes, FsError};
use std::path::{Path, PathBuf};

/// Common name of cluster certificates (Ganeti's `X509_CERT_CN`).
pub const CERT_COMMON_NAME: &str = "ganeti.example.com";
/// Mode of files holding private keys or secrets.
pub const SECRET_FILE_MODE: u32 = 0o600;

/// Generating or reading a secret failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The certificate could not be generated.
    #[error("generating a certificate for {path}")]
    Generate {
        /// Where it was to be written.
        path: PathBuf,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// A file step failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A secret file has permissions looser than 0600.
    #[error("{path} has mode {mode:04o}; secret files must not be readable by group or others (chmod 600)")]
    LooseMode {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A secret file's content is not what it should be.
    #[error("{path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Writes a new self-signed certificate with its private key to `path`
/// (key PEM first, then certificate PEM, mode 0600).
pub fn generate_cert(path: &Path, common_name: &str) -> Result<(), CryptoError> {
    let gen_err = |source| CryptoError::Generate {
        path: path.to_path_buf(),
        source,
    };
    let key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let mut params =
        rcgen::CertificateParams::new(vec![common_name.to_string()]).map_err(gen_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(24 * 3600)).into();
    params.not_after =
        (now + std::time::Duration::from_secs(u64::from(CERT_VALIDITY_DAYS) * 24 * 3600)).into();
    let mut serial = [0u8; 16];
    random_bytes(&mut serial)?;
    serial[0] &= 0x7f; // keep the serial positive
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(gen_err)?;
    let pem = format!("{}{}", key.serialize_pem(), cert.pem());
    atomic_write(path, pem.as_bytes(), SECRET_FILE_MODE)?;
    Ok(())
}

/// A new random secret as Ganeti writes it: hex digits of
/// [`HMAC_KEY_BYTES`] random bytes.
pub fn generate_secret() -> Result<String, CryptoError> {
    let mut raw = [0u8; HMAC_KEY_BYTES];
    random_bytes(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a fresh secret (hex, newline-terminated) to `path`, mode 0600.
pub fn generate_secret_file(path: &Path) -> Result<(), CryptoError> {
    let secret = generate_secret()?;
    atomic_write(path, format!("{secret}\n").as_bytes(), SECRET_FILE_MODE)?;
    Ok(())
}

/// Reads a secret file, refusing it when its mode is looser than 0600 or
/// it is empty. Returns the secret with surrounding whitespace removed.
pub fn read_secret_file(path: &Path) -> Result<String, CryptoError> {
    check_secret_mode(path)?;
    let raw = crate::sys::fs::read(path)?;
    let text = String::from_utf8(raw).map_err(|_| CryptoError::Malformed {
        path: path.to_path_buf(),
        reason: "not UTF-8 text",
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(CryptoError::Malformed {
            path: path.to_path_buf(),
            reason: "empty",
        });
    }
    Ok(secret.to_string())
}

/// Fails when group or others may read or write `path`.
pub fn check_secret_mode(path: &Path) -> Result<(), CryptoError> {
    let mode = crate::sys::fs::mode_of(path)?;
    if mode & 0o077 != 0 {
        return Err(CryptoError::LooseMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ganeti-crypto-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn certificate_file_has_key_and_cert_and_is_private() {
        let d = tempdir("cert");
        let p = d.join("server.pem");
        generate_cert(&p, CERT_COMMON_NAME).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        assert!(text.contains("-----BEGIN CERTIFICATE-----"));
        check_secret_mode(&p).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn secrets_are_hex_and_loose_modes_are_refused() {
        let d = tempdir("secret");
        let p = d.join("hmac.key");
        generate_secret_file(&p).unwrap();
        let s = read_secret_file(&p).unwrap();
        assert_eq!(s.len(), 2 * HMAC_KEY_BYTES);
        assert!(s.chars().all(|c| c.is_ascii_hexdigit()));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_file(&p).unwrap_err().to_string();
        assert!(err.contains("0644"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
