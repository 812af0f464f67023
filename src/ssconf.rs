//! `ssconf_*` files: small per-node files, written from the config on the
//! master (and pushed to every node), read by daemons and shell scripts.
//!
//! File names and contents follow Ganeti 3.0 (`ssconf.py`, the config
//! writer's `_UnlockedGetSsconfValues`): one value per line, `True`/`False`
//! for booleans, a trailing newline on every non-empty file, mode 0444.
//! [`render`] is pure; [`write_all`] is the only writer; [`read`] serves
//! everyone else. Nothing here reads `config.data`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::config::objects::ConfigData;
use crate::config::params;
use crate::paths::Paths;
use crate::sys::fs::{self, FsError};

/// Permission bits of ssconf files (`SS_FILE_PERMS`).
pub const SS_FILE_MODE: u32 = 0o444;

/// The largest ssconf file Ganeti reads (`_MAX_SIZE`, 128 KiB).
pub const MAX_SIZE_BYTES: usize = 128 * 1024;

/// A failed ssconf read or write.
#[derive(Debug, thiserror::Error)]
pub enum SsconfError {
    /// Writing one file failed.
    #[error("writing ssconf_{key}")]
    Write {
        /// The ssconf key.
        key: String,
        /// The cause (names the path).
        #[source]
        source: FsError,
    },
    /// Reading one file failed.
    #[error("reading ssconf_{key}")]
    Read {
        /// The ssconf key.
        key: String,
        /// The cause (names the path).
        #[source]
        source: FsError,
    },
    /// Listing or cleaning the data directory failed.
    #[error("cleaning stale ssconf files in {dir}")]
    Clean {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not UTF-8.
    #[error("ssconf_{key} is not valid UTF-8")]
    NotUtf8 {
        /// The ssconf key.
        key: String,
    },
    /// A key is not one Ganeti defines.
    #[error("unknown ssconf key {key:?}")]
    UnknownKey {
        /// The key given.
        key: String,
    },
}

/// The keys Ganeti 3.0 defines (`VALID_SS_KEYS`), without the `ssconf_` prefix.
pub const KEYS: &[&str] = &[
    "cluster_name",
    "cluster_tags",
    "file_storage_dir",
    "shared_file_storage_dir",
    "gluster_storage_dir",
    "master_candidates",
    "master_candidates_ips",
    "master_candidates_certs",
    "master_ip",
    "master_netdev",
    "master_netmask",
    "master_node",
    "node_list",
    "node_primary_ips",
    "node_secondary_ips",
    "node_vm_capable",
    "offline_nodes",
    "online_nodes",
    "primary_ip_family",
    "instance_list",
    "release_version",
    "hypervisor_list",
    "maintain_node_health",
    "uid_pool",
    "nodegroups",
    "networks",
    "enabled_user_shutdown",
    "ssh_ports",
    "hvparams_chroot",
    "hvparams_fake",
    "hvparams_kvm",
    "hvparams_lxc",
    "hvparams_xen-hvm",
    "hvparams_xen-pvm",
];

/// Python's `str()` of a bool.
fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Python's `str()` of a JSON-decoded value, as Ganeti writes hvparams.
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(b) => py_bool(*b).to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// One group of a [`nice_sort_key`]: digits (as a number) sort before text.
pub type NiceSortGroup = (u8, u128, String);

/// Ganeti's `NiceSort` key: digit runs compare as numbers, the rest as text.
pub fn nice_sort_key(s: &str) -> Vec<NiceSortGroup> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut digits = false;
    let flush = |cur: &mut String, digits: bool, out: &mut Vec<NiceSortGroup>| {
        if cur.is_empty() {
            return;
        }
        if digits {
            out.push((0, cur.parse().unwrap_or(u128::MAX), String::new()));
        } else {
            out.push((1, 0, std::mem::take(cur)));
        }
        cur.clear();
    };
    for ch in s.chars() {
        let d = ch.is_ascii_digit();
        if d != digits {
            flush(&mut cur, digits, &mut out);
            digits = d;
        }
        cur.push(ch);
    }
    flush(&mut cur, digits, &mut out);
    out
}

fn nice_sorted<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<(Vec<NiceSortGroup>, &str)> = items.map(|s| (nice_sort_key(s), s)).collect();
    v.sort();
    v.into_iter().map(|(_, s)| s).collect()
}

/// Renders every ssconf file: key (without `ssconf_`) → exact file content.
pub fn render(data: &ConfigData) -> BTreeMap<String, String> {
    let cl = &data.cluster;
    let mut nodes: Vec<_> = data.nodes.values().collect();
    nodes.sort_by_cached_key(|n| nice_sort_key(n.name.as_str()));
    let lines = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join("\n");

    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("cluster_name", cl.cluster_name.clone());
    put("cluster_tags", lines(&mut cl.tags.iter().cloned()));
    put("file_storage_dir", cl.file_storage_dir.clone());
    put(
        "shared_file_storage_dir",
        cl.shared_file_storage_dir.clone(),
    );
    put("gluster_storage_dir", cl.gluster_storage_dir.clone());
    let mcs: Vec<_> = nodes.iter().filter(|n| n.master_candidate).collect();
    put(
        "master_candidates",
        lines(&mut mcs.iter().map(|n| n.name.to_string())),
    );
    put(
        "master_candidates_ips",
        lines(&mut mcs.iter().map(|n| n.primary_ip.clone())),
    );
    put(
        "master_candidates_certs",
        lines(&mut cl.candidate_certs.iter().map(|(u, d)| format!("{u}={d}"))),
    );
    put("master_ip", cl.master_ip.clone());
    put("master_netdev", cl.master_netdev.clone());
    put("master_netmask", cl.master_netmask.to_string());
    put(
        "master_node",
        data.nodes
            .get(&cl.master_node)
            .map(|n| n.name.to_string())
            .unwrap_or_default(),
    );
    put(
        "node_list",
        lines(&mut nodes.iter().map(|n| n.name.to_string())),
    );
    put(
        "node_primary_ips",
        lines(&mut nodes.iter().map(|n| format!("{} {}", n.name, n.primary_ip))),
    );
    put(
        "node_secondary_ips",
        lines(
            &mut nodes
                .iter()
                .map(|n| format!("{} {}", n.name, n.secondary_ip)),
        ),
    );
    put(
        "node_vm_capable",
        lines(
            &mut nodes
                .iter()
                .map(|n| format!("{}={}", n.name, py_bool(n.vm_capable))),
        ),
    );
    put(
        "offline_nodes",
        lines(
            &mut nodes
                .iter()
                .filter(|n| n.offline)
                .map(|n| n.name.to_string()),
        ),
    );
    put(
        "online_nodes",
        lines(
            &mut nodes
                .iter()
                .filter(|n| !n.offline)
                .map(|n| n.name.to_string()),
        ),
    );
    put(
        "primary_ip_family",
        cl.primary_ip_family.af_number().to_string(),
    );
    put(
        "instance_list",
        nice_sorted(data.instances.values().map(|i| i.name.as_str())).join("\n"),
    );
    put(
        "release_version",
        crate::constants::GANETI_COMPAT_VERSION.to_string(),
    );
    put("hypervisor_list", cl.enabled_hypervisors.join("\n"));
    put(
        "maintain_node_health",
        py_bool(cl.maintain_node_health).to_string(),
    );
    put(
        "uid_pool",
        lines(&mut cl.uid_pool.iter().map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })),
    );
    let groups: Vec<String> = data
        .nodegroups
        .values()
        .map(|g| format!("{} {}", g.uuid, g.name))
        .collect();
    put(
        "nodegroups",
        nice_sorted(groups.iter().map(String::as_str)).join("\n"),
    );
    let nets: Vec<String> = data
        .networks
        .values()
        .map(|n| format!("{} {}", n.uuid, n.name))
        .collect();
    put(
        "networks",
        nice_sorted(nets.iter().map(String::as_str)).join("\n"),
    );
    put(
        "enabled_user_shutdown",
        py_bool(cl.enabled_user_shutdown).to_string(),
    );
    let ssh_ports = lines(&mut nodes.iter().map(|n| {
        let port = data
            .nodegroups
            .get(&n.group)
            .map(|g| params::fill_ndparams(cl, g, n))
            .unwrap_or_else(|| params::fill_dict(&cl.ndparams, &n.ndparams, &[]))
            .get("ssh_port")
            .map(py_str)
            .unwrap_or_else(|| "None".to_string());
        format!("{}={}", n.name, port)
    }));
    put("ssh_ports", ssh_ports);
    for hv in params::hypervisors() {
        let text: String = cl
            .hvparams
            .get(hv)
            .map(|p| {
                p.iter()
                    .map(|(k, v)| format!("{k}={}\n", py_str(v)))
                    .collect()
            })
            .unwrap_or_default();
        put(&format!("hvparams_{hv}"), text);
    }
    // Ganeti's writer ends every non-empty value with a newline.
    for v in m.values_mut() {
        if !v.is_empty() && !v.ends_with('\n') {
            v.push('\n');
        }
    }
    m
}

/// Writes every ssconf file of `data` under `paths` (atomically, mode 0444),
/// skipping files whose content is already right, and removes `ssconf_*`
/// files that are no longer part of the set.
pub fn write_all(paths: &Paths, data: &ConfigData) -> Result<(), SsconfError> {
    let files = render(data);
    for (key, content) in &files {
        let path = paths.ssconf_file(key);
        let unchanged = std::fs::read(&path).is_ok_and(|old| old == content.as_bytes())
            && fs::mode_of(&path).is_ok_and(|m| m == SS_FILE_MODE);
        if unchanged {
            continue;
        }
        fs::atomic_write(&path, content.as_bytes(), SS_FILE_MODE).map_err(|source| {
            SsconfError::Write {
                key: key.clone(),
                source,
            }
        })?;
    }
    let dir = paths.data_dir();
    let clean_err = |source| SsconfError::Clean {
        dir: dir.clone(),
        source,
    };
    for entry in std::fs::read_dir(&dir).map_err(clean_err)? {
        let entry = entry.map_err(clean_err)?;
        let name = entry.file_name();
        let Some(key) = name.to_str().and_then(|n| n.strip_prefix("ssconf_")) else {
            continue;
        };
        if !files.contains_key(key) {
            std::fs::remove_file(entry.path()).map_err(clean_err)?;
        }
    }
    Ok(())
}

/// Reads one ssconf value (`key` without the `ssconf_` prefix), without the
/// trailing newline.
pub fn read(paths: &Paths, key: &str) -> Result<String, SsconfError> {
    let known = KEYS.contains(&key) || key.starts_with("hvparams_");
    if !known {
        return Err(SsconfError::UnknownKey {
            key: key.to_string(),
        });
    }
    let bytes = fs::read(&paths.ssconf_file(key)).map_err(|source| SsconfError::Read {
        key: key.to_string(),
        source,
    })?;
    let mut text = String::from_utf8(bytes).map_err(|_| SsconfError::NotUtf8 {
        key: key.to_string(),
    })?;
    while text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// The master node's name, from `ssconf_master_node`.
pub fn master_node(paths: &Paths) -> Result<String, SsconfError> {
    read(paths, "master_node")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::generated;

    #[test]
    fn renders_ganeti_formats() {
        let mut d = generated(3, 12);
        d.cluster.uid_pool = vec![(1000, 1000), (2000, 2010)];
        d.cluster.tags = ["b".to_string(), "a".to_string()].into();
        let m = render(&d);
        for k in KEYS {
            assert!(m.contains_key(*k), "missing {k}");
        }
        assert_eq!(m.len(), KEYS.len());
        assert_eq!(m["cluster_name"], "cluster.example.com\n");
        assert_eq!(m["master_node"], "node1.example.com\n");
        assert_eq!(
            m["node_list"],
            "node1.example.com\nnode2.example.com\nnode3.example.com\n"
        );
        assert!(m["node_primary_ips"].starts_with("node1.example.com 192.0.2.1\n"));
        assert!(m["node_vm_capable"].contains("node2.example.com=True\n"));
        assert_eq!(m["offline_nodes"], "");
        assert_eq!(m["primary_ip_family"], "2\n");
        assert_eq!(m["maintain_node_health"], "False\n");
        assert_eq!(m["uid_pool"], "1000\n2000-2010\n");
        assert_eq!(m["cluster_tags"], "a\nb\n");
        assert_eq!(m["hypervisor_list"], "fake\n");
        assert!(m["ssh_ports"].contains("node3.example.com=22\n"));
        assert!(m["hvparams_fake"].contains("migration_mode=live\n"));
        assert!(m["hvparams_kvm"].contains("acpi=True\n"));
        // NiceSort: inst2 before inst10.
        let list: Vec<&str> = m["instance_list"].lines().collect();
        let p2 = list.iter().position(|s| *s == "inst2.example.com").unwrap();
        let p10 = list
            .iter()
            .position(|s| *s == "inst10.example.com")
            .unwrap();
        assert!(p2 < p10);
        let group_line = m["nodegroups"].trim_end().to_string();
        assert!(group_line.ends_with(" default"), "{group_line}");
    }

    #[test]
    fn write_read_and_clean() {
        let root = std::env::temp_dir().join(format!("ganeti-ssconf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let root = root.join("node1");
        let paths = Paths::virtual_node(&root, "node1").unwrap();
        fs::ensure_dir(&paths.data_dir(), 0o755).unwrap();
        let stale = paths.ssconf_file("old_key");
        fs::atomic_write(&stale, b"x", 0o444).unwrap();
        let d = generated(2, 1);
        write_all(&paths, &d).unwrap();
        assert!(!stale.exists());
        assert_eq!(master_node(&paths).unwrap(), "node1.example.com");
        assert_eq!(
            fs::mode_of(&paths.ssconf_file("node_list")).unwrap(),
            SS_FILE_MODE
        );
        assert!(matches!(
            read(&paths, "bogus"),
            Err(SsconfError::UnknownKey { .. })
        ));
        // A second write with the same data leaves everything as is.
        write_all(&paths, &d).unwrap();
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }
}
