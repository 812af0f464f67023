//! Builders of valid configurations of any size, for tests and the
//! `config_io` benchmark (so not behind `cfg(test)`).
//!
//! Names, UUIDs, MACs and IPs are derived from indexes, so the same call
//! always gives the same config: node *i* is `node{i}.example.com` at
//! `192.0.2.{i}`-style addresses, instance *j* is `inst{j}.example.com`.

use std::collections::BTreeMap;

use serde_json::json;

use super::bootstrap::InitParams;
use super::objects::{
    AdminState, ConfigData, Disk, DiskMode, Instance, LogicalId, Nic, Node, Uuid,
};

/// A deterministic, well-formed v4 UUID for object `index` of kind `kind`.
pub fn uuid_for(kind: u8, index: u64) -> Uuid {
    let mut b = [0u8; 16];
    b[0] = kind;
    b[8..16].copy_from_slice(&index.to_be_bytes());
    Uuid::from_bytes(b)
}

/// The n-th (0-based) IPv4 address after 10.0.0.0, as text.
fn ipv4(n: u64) -> String {
    let n = n + 1;
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// A valid config: `nodes` nodes (node1 is the master) in one group, and
/// `instances` instances spread over them, each with one `plain` disk and
/// one NIC with a unique MAC and IP. Hypervisor `fake`; serial 1.
pub fn generated(nodes: usize, instances: usize) -> ConfigData {
    let mut p = InitParams::new(
        "cluster.example.com",
        "node1.example.com",
        "192.0.2.254",
        "192.0.2.1",
        "eth0",
    );
    p.enabled_hypervisors = vec!["fake".into()];
    p.enabled_disk_templates = vec!["plain".into(), "diskless".into()];
    p.volume_group_name = Some("xenvg".into());
    let now = 1_700_000_000.0;
    let mut d = ConfigData::initial(&p, now).expect("fixed bootstrap parameters are valid");

    // Replace random UUIDs by fixed ones so that runs are reproducible.
    let cluster_uuid = uuid_for(1, 0);
    let group_uuid = uuid_for(2, 0);
    d.cluster.uuid = cluster_uuid;
    let mut group = d
        .nodegroups
        .pop_first()
        .expect("initial config has the default group")
        .1;
    group.uuid = group_uuid.clone();
    d.nodegroups = [(group_uuid.clone(), group)].into();
    let master = d
        .nodes
        .pop_first()
        .expect("initial config has the master")
        .1;
    d.nodes.clear();

    let mut node_uuids = Vec::with_capacity(nodes);
    for i in 1..=nodes.max(1) {
        let uuid = uuid_for(3, i as u64);
        let ip = if i == 1 {
            "192.0.2.1".to_string()
        } else {
            ipv4(100_000 + i as u64)
        };
        let node = Node {
            name: format!("node{i}.example.com").into(),
            primary_ip: ip.clone(),
            secondary_ip: ip,
            group: group_uuid.clone(),
            master_candidate: i <= 10,
            uuid: uuid.clone(),
            ..master.clone()
        };
        d.nodes.insert(uuid.clone(), node);
        node_uuids.push(uuid);
    }
    d.cluster.master_node = node_uuids[0].clone();

    for j in 1..=instances {
        let juuid = uuid_for(4, j as u64);
        let duuid = uuid_for(5, j as u64);
        let nuuid = uuid_for(6, j as u64);
        let pnode = node_uuids[(j - 1) % node_uuids.len()].clone();
        let disk = Disk {
            dev_type: "plain".into(),
            logical_id: LogicalId::Pair("xenvg".into(), format!("{}.disk0", duuid)),
            nodes: vec![pnode.clone()],
            iv_name: "disk/0".into(),
            size: 10240,
            mode: DiskMode::ReadWrite,
            params: BTreeMap::new(),
            serial_no: 1,
            uuid: duuid.clone(),
            ctime: now,
            mtime: now,
            ..Disk::default()
        };
        d.disks.insert(duuid.clone(), disk);
        let jj = j as u64;
        let nic = Nic {
            mac: format!(
                "aa:00:00:{:02x}:{:02x}:{:02x}",
                (jj >> 16) & 0xff,
                (jj >> 8) & 0xff,
                jj & 0xff
            ),
            ip: Some(ipv4(jj)),
            nicparams: BTreeMap::new(),
            uuid: nuuid,
            ..Nic::default()
        };
        let inst = Instance {
            name: format!("inst{j}.example.com").into(),
            primary_node: pnode,
            os: "debootstrap+default".into(),
            hypervisor: "fake".into(),
            beparams: [("maxmem".to_string(), json!(512))].into(),
            admin_state: AdminState::Up,
            admin_state_source: "admin".into(),
            nics: vec![nic],
            disks: vec![duuid],
            disks_active: true,
            serial_no: 1,
            ctime: now,
            mtime: now,
            uuid: juuid.clone(),
            ..Instance::default()
        };
        d.instances.insert(juuid, inst);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn generated_configs_validate_and_round_trip() {
        for (n, m) in [(1, 0), (3, 10), (20, 300)] {
            let d = generated(n, m);
            assert_eq!(d.nodes.len(), n);
            assert_eq!(d.instances.len(), m);
            assert_eq!(d.disks.len(), m);
            crate::config::validate::validate(&d).unwrap();
            let text = d.to_json();
            let again = ConfigData::from_json(&text, Path::new("mem")).unwrap();
            assert_eq!(again, d);
            assert_eq!(again.to_json(), text, "serialization is stable");
        }
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generated(4, 5).to_json(), generated(4, 5).to_json());
    }
}
