//! The resolved [`InstanceSpec`] a node receives: every parameter filled
//! from the cluster (then the OS's hypervisor parameters, the node group's
//! disk parameters, then the instance's own), so the node never needs the
//! config (design 2.1, parameter inheritance).

use super::node_by_uuid;
use crate::cmdlib::LuError;
use crate::config::objects::{ConfigData, Disk, Instance, LogicalId, Nic, ParamMap, Uuid};
use crate::config::params;
use crate::error::ErrorKind;
use crate::rpc::proto::{DiskSpec, InstanceSpec, NicSpec, Params};
use serde_json::Value;
use std::collections::BTreeMap;

/// A parameter value as the OS scripts see it (strings stay bare).
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// OS parameters as the OS scripts get them (`OSP_*` values are text).
pub fn osparams_text(m: &ParamMap) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), as_text(v))).collect()
}

/// The filled disk parameters of `template` for disks of an instance
/// whose primary node is in the group `group` (cluster, then group).
pub fn template_diskparams(cfg: &ConfigData, inst: &Instance, template: &str) -> ParamMap {
    let group = cfg
        .nodes
        .get(&inst.primary_node)
        .and_then(|n| cfg.nodegroups.get(&n.group));
    match group {
        Some(g) => params::fill_diskparams(&cfg.cluster, g)
            .remove(template)
            .unwrap_or_default(),
        None => cfg
            .cluster
            .diskparams
            .get(template)
            .cloned()
            .unwrap_or_default(),
    }
}

/// One config disk as a node sees it, with `defaults` under its own
/// parameters.
pub fn disk_spec(disk: &Disk, defaults: &ParamMap) -> DiskSpec {
    DiskSpec {
        uuid: disk.uuid.as_str().to_string(),
        name: disk.name.clone(),
        iv_name: disk.iv_name.clone(),
        dev_type: disk.dev_type.clone(),
        logical_id: serde_json::to_value(&disk.logical_id).unwrap_or(Value::Null),
        size_mib: disk.size,
        mode: match disk.mode {
            crate::config::objects::DiskMode::ReadWrite => "rw".into(),
            crate::config::objects::DiskMode::ReadOnly => "ro".into(),
        },
        params: params::fill_dict(defaults, &disk.params, &[]),
        children: disk
            .children
            .iter()
            .map(|c| disk_spec(c, &ParamMap::new()))
            .collect(),
    }
}

/// The disks of `inst`, in order.
pub fn disk_specs(cfg: &ConfigData, inst: &Instance) -> Result<Vec<DiskSpec>, LuError> {
    inst.disks
        .iter()
        .map(|u| {
            let d = cfg.disks.get(u).ok_or_else(|| {
                LuError::prereq(
                    ErrorKind::NoEnt,
                    format!("Disk '{u}' of instance {} not known", inst.name),
                )
            })?;
            Ok(disk_spec(d, &template_diskparams(cfg, inst, &d.dev_type)))
        })
        .collect()
}

/// DRBD's dynamic disk parameters (Ganeti's `DDP_*`): which side of the
/// mirror the receiving node is and how to reach the other side. They
/// differ per node, so they are filled in per call by [`disk_for_node`]
/// and never stored in the config.
pub const DDP_LOCAL_IP: &str = "local-ip";
/// See [`DDP_LOCAL_IP`].
pub const DDP_REMOTE_IP: &str = "remote-ip";
/// See [`DDP_LOCAL_IP`].
pub const DDP_LOCAL_MINOR: &str = "local-minor";
/// See [`DDP_LOCAL_IP`].
pub const DDP_REMOTE_MINOR: &str = "remote-minor";

/// The replication address of a node: its secondary IP, or its primary
/// IP on a single-homed node.
pub fn replication_ip(node: &crate::config::objects::Node) -> String {
    if node.secondary_ip.is_empty() {
        node.primary_ip.clone()
    } else {
        node.secondary_ip.clone()
    }
}

/// `disk` as `node` must receive it (Ganeti's
/// `Disk.UpdateDynamicDiskParams`): a DRBD disk (or child) gets the
/// dynamic parameters for `node`'s side of the mirror, so the node needs
/// neither the config nor its own name in the `logical_id` (which holds
/// node UUIDs). Other disks, and DRBD disks `node` is not part of, are
/// returned unchanged.
pub fn disk_for_node(cfg: &ConfigData, disk: &DiskSpec, node: &Uuid) -> DiskSpec {
    let mut out = disk.clone();
    if disk.dev_type == "drbd" {
        if let Ok(LogicalId::Drbd {
            node_a,
            node_b,
            minor_a,
            minor_b,
            ..
        }) = serde_json::from_value::<LogicalId>(disk.logical_id.clone())
        {
            let sides = if *node == node_a {
                Some((&node_a, &node_b, minor_a, minor_b))
            } else if *node == node_b {
                Some((&node_b, &node_a, minor_b, minor_a))
            } else {
                None
            };
            if let Some((local, remote, lminor, rminor)) = sides {
                let ip = |u: &Uuid| cfg.nodes.get(u).map(replication_ip);
                if let (Some(lip), Some(rip)) = (ip(local), ip(remote)) {
                    out.params.insert(DDP_LOCAL_IP.into(), Value::from(lip));
                    out.params.insert(DDP_REMOTE_IP.into(), Value::from(rip));
                }
                out.params
                    .insert(DDP_LOCAL_MINOR.into(), Value::from(lminor));
                out.params
                    .insert(DDP_REMOTE_MINOR.into(), Value::from(rminor));
            }
        }
    }
    out.children = disk
        .children
        .iter()
        .map(|c| disk_for_node(cfg, c, node))
        .collect();
    out
}

/// One NIC with its parameters filled from the cluster's.
pub fn nic_spec(cfg: &ConfigData, nic: &Nic) -> NicSpec {
    let filled = params::fill_nicparams(&cfg.cluster, &nic.nicparams);
    let get = |k: &str| filled.get(k).map(as_text).unwrap_or_default();
    NicSpec {
        uuid: nic.uuid.as_str().to_string(),
        name: nic.name.clone(),
        mac: nic.mac.clone(),
        ip: nic.ip.clone(),
        mode: get("mode"),
        link: get("link"),
        vlan: get("vlan"),
        network: nic.network.as_ref().map(|u| {
            cfg.networks
                .get(u)
                .map_or(u.to_string(), |n| n.name.clone())
        }),
    }
}

/// Filled hypervisor parameters of `inst`.
pub fn hvparams(cfg: &ConfigData, inst: &Instance) -> Params {
    params::fill_hvparams(&cfg.cluster, &inst.os, &inst.hypervisor, &inst.hvparams)
}

/// Filled backend parameters of `inst`.
pub fn beparams(cfg: &ConfigData, inst: &Instance) -> Params {
    params::fill_beparams(&cfg.cluster, &inst.beparams)
}

/// Filled private OS parameters (cluster's for the OS, its variant, then
/// the instance's).
pub fn osparams_private(cfg: &ConfigData, os: &str, own: &ParamMap) -> ParamMap {
    let empty = ParamMap::new();
    let base = os.split('+').next().unwrap_or(os);
    let c = &cfg.cluster.osparams_private_cluster;
    params::fill_dict(
        &params::fill_dict(
            c.get(base).unwrap_or(&empty),
            c.get(os).unwrap_or(&empty),
            &[],
        ),
        own,
        &[],
    )
}

/// Everything a node needs to know about `inst`.
pub fn instance_spec(cfg: &ConfigData, inst: &Instance) -> Result<InstanceSpec, LuError> {
    node_by_uuid(cfg, &inst.primary_node)?;
    Ok(InstanceSpec {
        name: inst.name.as_str().to_string(),
        uuid: inst.uuid.as_str().to_string(),
        hypervisor: inst.hypervisor.clone(),
        hvparams: hvparams(cfg, inst),
        beparams: beparams(cfg, inst),
        os: inst.os.clone(),
        osparams: osparams_text(&params::fill_osparams(
            &cfg.cluster,
            &inst.os,
            &inst.osparams,
        )),
        osparams_private: osparams_text(&osparams_private(cfg, &inst.os, &inst.osparams_private)),
        nics: inst.nics.iter().map(|n| nic_spec(cfg, n)).collect(),
        disks: disk_specs(cfg, inst)?,
        network_port: inst.network_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::generated;
    use serde_json::json;

    #[test]
    fn parameters_are_filled_cluster_os_instance() {
        let mut cfg = generated(2, 1);
        cfg.cluster
            .hvparams
            .entry("fake".into())
            .or_default()
            .insert("migration_mode".into(), json!("live"));
        cfg.cluster.os_hvp.insert(
            "debootstrap+default".into(),
            [("fake".to_string(), [("k".to_string(), json!("os"))].into())].into(),
        );
        cfg.cluster.osparams.insert(
            "debootstrap".into(),
            [
                ("dist".to_string(), json!("bookworm")),
                ("n".to_string(), json!(3)),
            ]
            .into(),
        );
        cfg.cluster
            .diskparams
            .insert("plain".into(), [("stripes".to_string(), json!(1))].into());
        let inst_uuid = cfg.instances.keys().next().unwrap().clone();
        {
            let inst = cfg.instances.get_mut(&inst_uuid).unwrap();
            inst.osparams.insert("dist".into(), json!("trixie"));
            inst.hvparams.insert("k".into(), json!("inst"));
        }
        let group = cfg.nodegroups.keys().next().unwrap().clone();
        cfg.nodegroups
            .get_mut(&group)
            .unwrap()
            .diskparams
            .insert("plain".into(), [("stripes".to_string(), json!(2))].into());
        let inst = cfg.instances[&inst_uuid].clone();
        let spec = instance_spec(&cfg, &inst).unwrap();
        assert_eq!(spec.hvparams["migration_mode"], json!("live"));
        assert_eq!(spec.hvparams["k"], json!("inst"));
        assert_eq!(spec.beparams["maxmem"], json!(512));
        assert!(spec.beparams.contains_key("vcpus"), "{:?}", spec.beparams);
        assert_eq!(spec.osparams["dist"], "trixie");
        assert_eq!(spec.osparams["n"], "3");
        assert_eq!(spec.disks.len(), 1);
        assert_eq!(spec.disks[0].params["stripes"], json!(2));
        assert_eq!(spec.disks[0].size_mib, 10240);
        assert_eq!(spec.disks[0].mode, "rw");
        assert_eq!(spec.nics[0].mode, "bridged");
        // Parameters the OS does not override stay the cluster's.
        let mut other = inst.clone();
        other.hvparams.clear();
        other.os = "other".into();
        let spec = instance_spec(&cfg, &other).unwrap();
        assert!(!spec.hvparams.contains_key("k"));
    }

    #[test]
    fn drbd_disks_get_each_node_its_side() {
        let mut cfg = generated(3, 0);
        let uuids: Vec<Uuid> = cfg.nodes.keys().cloned().collect();
        let (a, b, other) = (uuids[0].clone(), uuids[1].clone(), uuids[2].clone());
        cfg.nodes.get_mut(&b).unwrap().secondary_ip = "198.51.100.2".into();
        cfg.nodes.get_mut(&a).unwrap().secondary_ip = String::new();
        let lv = |name: &str| Disk {
            dev_type: "plain".into(),
            logical_id: LogicalId::Pair("xenvg".into(), name.into()),
            size: 1024,
            ..Disk::default()
        };
        let disk = Disk {
            dev_type: "drbd".into(),
            logical_id: LogicalId::Drbd {
                node_a: a.clone(),
                node_b: b.clone(),
                port: 11000,
                minor_a: 0,
                minor_b: 5,
                secret: "s".into(),
            },
            children: vec![lv("d"), lv("m")],
            size: 1024,
            ..Disk::default()
        };
        let base = disk_spec(&disk, &ParamMap::new());
        let on_a = disk_for_node(&cfg, &base, &a);
        let a_ip = cfg.nodes[&a].primary_ip.clone();
        assert_eq!(
            on_a.params[DDP_LOCAL_IP],
            json!(a_ip),
            "single-homed: primary IP"
        );
        assert_eq!(on_a.params[DDP_REMOTE_IP], json!("198.51.100.2"));
        assert_eq!(on_a.params[DDP_LOCAL_MINOR], json!(0));
        assert_eq!(on_a.params[DDP_REMOTE_MINOR], json!(5));
        let on_b = disk_for_node(&cfg, &base, &b);
        assert_eq!(on_b.params[DDP_LOCAL_IP], json!("198.51.100.2"));
        assert_eq!(on_b.params[DDP_REMOTE_IP], json!(a_ip));
        assert_eq!(on_b.params[DDP_LOCAL_MINOR], json!(5));
        assert_eq!(on_b.params[DDP_REMOTE_MINOR], json!(0));
        assert!(on_b.children.iter().all(|c| c.params.is_empty()));
        assert_eq!(disk_for_node(&cfg, &base, &other), base, "not its disk");
        let file = disk_spec(&lv("x"), &ParamMap::new());
        assert_eq!(disk_for_node(&cfg, &file, &a), file);
    }

    #[test]
    fn missing_disk_is_an_error_naming_it() {
        let mut cfg = generated(1, 1);
        cfg.disks.clear();
        let inst = cfg.instances.values().next().unwrap().clone();
        let e = instance_spec(&cfg, &inst).unwrap_err();
        assert!(e.to_string().contains("inst1.example.com"), "{e}");
    }
}
