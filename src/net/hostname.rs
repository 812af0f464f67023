//! Resolving node and cluster names, and checking addresses.
//!
//! Names resolve through the system resolver. In a virtual cluster
//! (`GANETI_ROOTDIR`/`GANETI_HOSTNAME`) the file `BASE/hosts` (the parent of
//! every node root, `/etc/hosts` format) is consulted first: it plays the
//! role of the shared `/etc/hosts` Ganeti's virtual-cluster guide asks for,
//! without touching the real one. Loopback addresses are refused for a real
//! cluster and allowed for a virtual one, where every node is 127.0.0.x.

use crate::paths::Paths;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::config::objects::IpFamily;

/// The family for a `--primary-ip-version` number (4 or 6).
pub fn family_from_version(v: u8) -> Option<IpFamily> {
    match v {
        4 => Some(IpFamily::V4),
        6 => Some(IpFamily::V6),
        _ => None,
    }
}

/// Whether `ip` belongs to `family`.
pub fn family_matches(family: IpFamily, ip: &IpAddr) -> bool {
    matches!(
        (family, ip),
        (IpFamily::V4, IpAddr::V4(_)) | (IpFamily::V6, IpAddr::V6(_))
    )
}

/// A name that could not be resolved as needed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No address of the wanted family.
    #[error("cannot resolve {name:?} to an IPv{version} address{hint}")]
    NotFound {
        /// The name.
        name: String,
        /// Wanted family.
        version: u32,
        /// Where to fix it.
        hint: String,
    },
    /// The hosts file exists but cannot be read.
    #[error("reading {path}")]
    HostsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A resolved name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The name as given.
    pub name: String,
    /// Its address.
    pub ip: IpAddr,
}

/// The virtual cluster's shared hosts file (`BASE/hosts`), if virtual.
pub fn virtual_hosts_file(paths: &Paths) -> Option<PathBuf> {
    if !paths.is_virtual() {
        return None;
    }
    paths.root().parent().map(|base| base.join("hosts"))
}

/// Resolves `name` to an address of `family`.
pub fn resolve(paths: &Paths, name: &str, family: IpFamily) -> Result<HostInfo, ResolveError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        if family_matches(family, &ip) {
            return Ok(HostInfo {
                name: name.to_string(),
                ip,
            });
        }
    }
    if let Some(hosts) = virtual_hosts_file(paths) {
        match std::fs::read_to_string(&hosts) {
            Ok(text) => {
                if let Some(ip) = lookup_hosts_text(&text, name, family) {
                    return Ok(HostInfo {
                        name: name.to_string(),
                        ip,
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ResolveError::HostsFile {
                    path: hosts,
                    source,
                })
            }
        }
    }
    let found = (name, 0u16)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.find(|a| family_matches(family, &a.ip())));
    match found {
        Some(a) => Ok(HostInfo {
            name: name.to_string(),
            ip: a.ip(),
        }),
        None => Err(ResolveError::NotFound {
            name: name.to_string(),
            version: family.version(),
            hint: match virtual_hosts_file(paths) {
                Some(f) => format!(" (add it to {} or to DNS)", f.display()),
                None => " (fix DNS or /etc/hosts)".to_string(),
            },
        }),
    }
}

/// Finds `name` in `/etc/hosts`-format text.
pub fn lookup_hosts_text(text: &str, name: &str, family: IpFamily) -> Option<IpAddr> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .find(|ip| family_matches(family, ip))
}

/// Adds `ip name` to a hosts file unless the name is already there.
pub fn add_to_hosts_file(
    path: &std::path::Path,
    name: &str,
    ip: IpAddr,
) -> Result<(), crate::sys::fs::FsError> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let present = current.lines().any(|l| {
        let mut f = l.split('#').next().unwrap_or("").split_whitespace();
        f.next().and_then(|i| i.parse::<IpAddr>().ok()) == Some(ip) && f.any(|n| n == name)
    });
    if present {
        return Ok(());
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{ip}\t{name}\n"));
    crate::sys::fs::atomic_write(path, text.as_bytes(), 0o644)
}

/// Whether `ip` is an address of this host (it can be bound).
pub fn is_own_address(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Whether something accepts TCP connections at `ip:port` within `timeout`.
pub fn tcp_ping(ip: IpAddr, port: u16, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_text_lookup_respects_family_and_comments() {
        let text = "127.0.0.1 localhost\n# 10.0.0.1 node1\n127.0.0.2\tnode1 node1.example.com\n::1 node1\n";
        assert_eq!(
            lookup_hosts_text(text, "node1", IpFamily::V4),
            Some("127.0.0.2".parse().unwrap())
        );
        assert_eq!(
            lookup_hosts_text(text, "NODE1", IpFamily::V6),
            Some("::1".parse().unwrap())
        );
        assert_eq!(lookup_hosts_text(text, "node2", IpFamily::V4), None);
    }

    #[test]
    fn virtual_cluster_resolves_from_base_hosts() {
        let base = std::env::temp_dir().join(format!("ganeti-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("node1")).unwrap();
        let paths = Paths::virtual_node(&base.join("node1"), "node1").unwrap();
        add_to_hosts_file(&base.join("hosts"), "node1", "127.0.0.7".parse().unwrap()).unwrap();
        add_to_hosts_file(&base.join("hosts"), "node1", "127.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(
            std::fs::read_to_string(base.join("hosts"))
                .unwrap()
                .lines()
                .count(),
            1
        );
        let h = resolve(&paths, "node1", IpFamily::V4).unwrap();
        assert_eq!(h.ip, "127.0.0.7".parse::<IpAddr>().unwrap());
        let err = resolve(&paths, "no-such-node.invalid", IpFamily::V4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hosts"), "{err}");
        assert!(is_own_address("127.0.0.7".parse().unwrap()));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
