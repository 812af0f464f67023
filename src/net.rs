//! Host networking seen from one node: name resolution and address checks
//! (Ganeti's `netutils`). Bridges, taps and routes for instances join here
//! with the hypervisors.

pub mod hostname;
pub mod tap;

use crate::paths::Paths;

/// The TCP port of `service` (`ganeti-noded`, …) from the node's
/// `/etc/services` (under the root), as Ganeti looks daemon ports up;
/// `default` when the file or the entry is missing or unreadable.
pub fn service_port(paths: &Paths, service: &str, default: u16) -> u16 {
    let text = std::fs::read_to_string(paths.under_root("/etc/services")).unwrap_or_default();
    services_lookup(&text, service).unwrap_or(default)
}

/// The TCP port of `service` in `/etc/services` text: name or alias,
/// `PORT/tcp`; `#` starts a comment.
fn services_lookup(text: &str, service: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let name = fields.next()?;
        let (port, proto) = fields.next()?.split_once('/')?;
        let aliases: Vec<&str> = fields.collect();
        ((name == service || aliases.contains(&service)) && proto == "tcp")
            .then(|| port.parse().ok())
            .flatten()
    })
}

/// The node daemon's port on this cluster: `ganeti-noded` in
/// `/etc/services`, else 1811.
pub fn noded_port(paths: &Paths) -> u16 {
    service_port(paths, "ganeti-noded", crate::constants::DEFAULT_NODED_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_lookup() {
        let text = "# comment\nssh 22/tcp\nganeti-noded 11811/udp\nganeti-noded\t1911/tcp  noded # ours\nbad x/tcp\n";
        assert_eq!(services_lookup(text, "ganeti-noded"), Some(1911));
        assert_eq!(services_lookup(text, "noded"), Some(1911));
        assert_eq!(services_lookup(text, "ssh"), Some(22));
        assert_eq!(services_lookup(text, "bad"), None);
        assert_eq!(services_lookup(text, "ganeti-confd"), None);
    }
}
