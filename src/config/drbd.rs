//! DRBD resources handed out from the config: minors per node, TCP ports
//! from the cluster's pool, and shared secrets (Ganeti's
//! `ConfigWriter.AllocateDRBDMinor`, `AllocatePort`, `GenerateDRBDSecret`,
//! done by WConfd in 3.0).
//!
//! Pure functions over a config snapshot or the cluster object: the caller
//! (instance creation in `cmdlib`) holds the node locks of the nodes it
//! allocates minors on, so minors in use are exactly those its disks
//! already record; ports change the cluster object and so are taken in a
//! config update and given back to `tcpudp_port_pool` on failure.

use super::objects::{Cluster, ConfigData, Disk, LogicalId, Uuid};
use super::ConfigError;
use std::collections::{BTreeMap, BTreeSet};

/// First TCP port given to a DRBD link (`FIRST_DRBD_PORT`).
pub const FIRST_DRBD_PORT: u32 = 11000;
/// Last TCP port given to a DRBD link (`LAST_DRBD_PORT`).
pub const LAST_DRBD_PORT: u32 = 14999;
/// Bytes of randomness in a DRBD shared secret (`GenerateSecret`'s 20,
/// written as 40 hex digits).
pub const DRBD_SECRET_BYTES: usize = 20;

fn disk_minors(d: &Disk, out: &mut BTreeMap<Uuid, BTreeSet<u32>>) {
    if let LogicalId::Drbd {
        node_a,
        node_b,
        minor_a,
        minor_b,
        ..
    } = &d.logical_id
    {
        out.entry(node_a.clone()).or_default().insert(*minor_a);
        out.entry(node_b.clone()).or_default().insert(*minor_b);
    }
    for c in &d.children {
        disk_minors(c, out);
    }
}

/// The DRBD minors each node's disks use (Ganeti's `ComputeDRBDMap`,
/// without the instance names).
pub fn used_minors(cfg: &ConfigData) -> BTreeMap<Uuid, BTreeSet<u32>> {
    let mut out = BTreeMap::new();
    for d in cfg.disks.values() {
        disk_minors(d, &mut out);
    }
    out
}

/// One minor per entry of `nodes` (a node may appear several times, e.g.
/// once per disk): the lowest minor free on that node, counting the ones
/// handed out earlier in the same call.
pub fn allocate_minors(cfg: &ConfigData, nodes: &[Uuid]) -> Vec<u32> {
    let mut used = used_minors(cfg);
    nodes
        .iter()
        .map(|n| {
            let taken = used.entry(n.clone()).or_default();
            let minor = (0..).find(|m| !taken.contains(m)).unwrap_or(0);
            taken.insert(minor);
            minor
        })
        .collect()
}

/// Takes a port for a DRBD link: one given back earlier
/// (`tcpudp_port_pool`), else the one after `highest_used_port`.
pub fn allocate_port(cluster: &mut Cluster) -> Result<u32, ConfigError> {
    if let Some(p) = cluster.tcpudp_port_pool.pop_first() {
        return Ok(p);
    }
    let next = cluster.highest_used_port.max(FIRST_DRBD_PORT - 1) + 1;
    if next > LAST_DRBD_PORT {
        return Err(ConfigError::Update {
            reason: format!("The highest used port is greater than {LAST_DRBD_PORT}. Aborting."),
        });
    }
    cluster.highest_used_port = next;
    Ok(next)
}

/// Gives `port` back for reuse (a failed creation, a removed disk).
pub fn release_port(cluster: &mut Cluster, port: u32) {
    if (FIRST_DRBD_PORT..=LAST_DRBD_PORT).contains(&port) {
        cluster.tcpudp_port_pool.insert(port);
    }
}

/// Gives back the ports of `disk` and its children (a removed disk).
pub fn release_disk_ports(cluster: &mut Cluster, disk: &Disk) {
    if let LogicalId::Drbd { port, .. } = &disk.logical_id {
        release_port(cluster, *port);
    }
    for c in &disk.children {
        release_disk_ports(cluster, c);
    }
}

/// A new shared secret (hex), distinct from every secret in `cfg`.
pub fn generate_secret(cfg: &ConfigData) -> Result<String, ConfigError> {
    let mut existing = BTreeSet::new();
    for d in cfg.disks.values() {
        if let LogicalId::Drbd { secret, .. } = &d.logical_id {
            existing.insert(secret.as_str());
        }
    }
    loop {
        let mut b = [0u8; DRBD_SECRET_BYTES];
        crate::sys::fs::random_bytes(&mut b).map_err(|e| ConfigError::Update {
            reason: format!("cannot read random bytes for a DRBD secret: {e}"),
        })?;
        let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if !existing.contains(s.as_str()) {
            return Ok(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::generated;

    fn drbd(a: &Uuid, b: &Uuid, ma: u32, mb: u32) -> Disk {
        Disk {
            dev_type: "drbd".into(),
            logical_id: LogicalId::Drbd {
                node_a: a.clone(),
                node_b: b.clone(),
                port: 11000,
                minor_a: ma,
                minor_b: mb,
                secret: "s".into(),
            },
            uuid: Uuid::generate(),
            ..Disk::default()
        }
    }

    #[test]
    fn minors_skip_used_ones_per_node() {
        let mut cfg = generated(3, 0);
        let n: Vec<Uuid> = cfg.nodes.keys().cloned().collect();
        for d in [drbd(&n[0], &n[1], 0, 0), drbd(&n[0], &n[1], 2, 1)] {
            cfg.disks.insert(d.uuid.clone(), d);
        }
        assert_eq!(used_minors(&cfg)[&n[0]], [0, 2].into());
        assert_eq!(
            allocate_minors(
                &cfg,
                &[n[0].clone(), n[1].clone(), n[0].clone(), n[2].clone()]
            ),
            vec![1, 2, 3, 0]
        );
    }

    #[test]
    fn ports_come_from_the_pool_then_count_up_to_the_limit() {
        let mut c = Cluster::default();
        assert_eq!(allocate_port(&mut c).unwrap(), FIRST_DRBD_PORT);
        assert_eq!(allocate_port(&mut c).unwrap(), FIRST_DRBD_PORT + 1);
        release_port(&mut c, FIRST_DRBD_PORT);
        release_port(&mut c, 80);
        assert_eq!(c.tcpudp_port_pool, [FIRST_DRBD_PORT].into());
        assert_eq!(allocate_port(&mut c).unwrap(), FIRST_DRBD_PORT);
        assert_eq!(c.highest_used_port, FIRST_DRBD_PORT + 1);
        let mut d = Disk {
            dev_type: "drbd".into(),
            logical_id: LogicalId::Drbd {
                node_a: Uuid::generate(),
                node_b: Uuid::generate(),
                port: 12345,
                minor_a: 0,
                minor_b: 0,
                secret: String::new(),
            },
            ..Disk::default()
        };
        d.children.push(Disk::default());
        release_disk_ports(&mut c, &d);
        assert_eq!(allocate_port(&mut c).unwrap(), 12345, "the pool first");
        c.highest_used_port = LAST_DRBD_PORT;
        let e = allocate_port(&mut c).unwrap_err();
        assert!(e.to_string().contains("14999"), "{e}");
    }

    #[test]
    fn secrets_are_hex_and_new() {
        let cfg = generated(1, 0);
        let a = generate_secret(&cfg).unwrap();
        let b = generate_secret(&cfg).unwrap();
        assert_eq!(a.len(), 2 * DRBD_SECRET_BYTES);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
