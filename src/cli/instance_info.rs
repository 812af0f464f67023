//! `gnt-instance info` output: the result of `OP_INSTANCE_QUERY_DATA`
//! (one object per instance, the shape of Ganeti's `LUInstanceQueryData`)
//! turned into the generic-info tree Ganeti prints
//! (`_FormatInstanceInfo`, `_FormatBlockDevInfo`, `_FormatInstanceNicInfo`).

use super::output::{format_unit, params_info, python_repr, Info, Units};
use serde_json::Value;

/// First VNC port; the display number is the port minus this.
const VNC_BASE_PORT: i64 = 5900;
/// Ganeti's "listen on all IPv4 addresses".
const IP4_ADDRESS_ANY: &str = "0.0.0.0";
/// `LDS_FAULTY` and `LDS_UNKNOWN` local-disk states.
const LDS_FAULTY: i64 = 4;
const LDS_UNKNOWN: i64 = 3;

fn text(v: &Value) -> Info {
    Info::Text(python_repr(v))
}

fn str_of(v: &Value) -> String {
    python_repr(v)
}

/// One `on primary`/`on secondary` status line (Ganeti's nested `helper`).
fn dev_status(dev_type: &str, status: &Value) -> String {
    let Some(s) = status.as_array().filter(|a| !a.is_empty()) else {
        return "not active".into();
    };
    let at = |i: usize| s.get(i).cloned().unwrap_or(Value::Null);
    let num = |v: Value| {
        if v.is_null() {
            "N/A".to_string()
        } else {
            str_of(&v)
        }
    };
    let mut txt = format!("{} ({}:{})", str_of(&at(0)), num(at(1)), num(at(2)));
    let ldisk = at(6).as_i64();
    match dev_type {
        "drbd" => {
            let sync = match at(3).as_f64() {
                Some(p) => {
                    let mut t = format!("*RECOVERING* {p:5.2}%,");
                    match at(4) {
                        Value::Null => t.push_str(" ETA unknown"),
                        Value::Number(n) if n.as_f64() == Some(0.0) => t.push_str(" ETA unknown"),
                        e => t.push_str(&format!(" ETA {}s", str_of(&e))),
                    }
                    t
                }
                None => "in sync".into(),
            };
            let degr = if at(5).as_bool().unwrap_or(false) {
                "*DEGRADED*"
            } else {
                "ok"
            };
            let ldisk_text = match ldisk {
                Some(LDS_FAULTY) => " *MISSING DISK*",
                Some(LDS_UNKNOWN) => " *UNCERTAIN STATE*",
                _ => "",
            };
            txt.push_str(&format!(" {sync}, status {degr}{ldisk_text}"));
        }
        "plain" if ldisk == Some(LDS_FAULTY) => txt.push_str(" *FAILED* (failed drive?)"),
        _ => {}
    }
    txt
}

/// The logical-id lines of a disk (Ganeti's `_FormatDiskDetails`).
fn disk_details(dev: &Value) -> Vec<(String, Info)> {
    let dev_type = dev["dev_type"].as_str().unwrap_or_default();
    let lid = &dev["logical_id"];
    match dev_type {
        "drbd" if dev["drbd_info"].is_object() => {
            let d = &dev["drbd_info"];
            vec![
                (
                    "nodeA".into(),
                    Info::Text(format!(
                        "{}, minor={}",
                        str_of(&d["primary_node"]),
                        str_of(&d["primary_minor"])
                    )),
                ),
                (
                    "nodeB".into(),
                    Info::Text(format!(
                        "{}, minor={}",
                        str_of(&d["secondary_node"]),
                        str_of(&d["secondary_minor"])
                    )),
                ),
                ("port".into(), text(&d["port"])),
            ]
        }
        "plain" if lid.as_array().is_some_and(|a| a.len() == 2) => vec![(
            "logical_id".into(),
            Info::Text(format!("{}/{}", str_of(&lid[0]), str_of(&lid[1]))),
        )],
        _ => vec![("logical_id".into(), Info::Text(python_value(lid)))],
    }
}

/// `str()` of a Python value as Ganeti would show a logical id: lists and
/// tuples with quoted strings.
fn python_value(v: &Value) -> String {
    match v {
        Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| match x {
                    Value::String(s) => format!("'{s}'"),
                    other => python_value(other),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        other => python_repr(other),
    }
}

/// One disk (or child device) of `info`.
fn block_dev_info(idx: usize, top_level: bool, dev: &Value) -> Info {
    let header = if !top_level {
        format!("child {idx}")
    } else if let Some(iv) = dev["iv_name"].as_str() {
        iv.to_string()
    } else {
        format!("disk {idx}")
    };
    let size = match dev["size"].as_u64() {
        #[allow(clippy::cast_precision_loss)] // sizes in MiB are far below 2^52
        Some(mib) => format_unit(mib as f64, Units::Human),
        None => str_of(&dev["size"]),
    };
    let dev_type = dev["dev_type"].as_str().unwrap_or_default();
    let mut data: Vec<(String, Info)> =
        vec![(header, Info::Text(format!("{dev_type}, size {size}")))];
    if top_level {
        if !dev["spindles"].is_null() {
            data.push(("spindles".into(), text(&dev["spindles"])));
        }
        data.push(("access mode".into(), text(&dev["mode"])));
    }
    if !dev["logical_id"].is_null() {
        data.extend(disk_details(dev));
    }
    let truthy = |v: &Value| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty));
    if truthy(&dev["pstatus"]) {
        data.push((
            "on primary".into(),
            Info::Text(dev_status(dev_type, &dev["pstatus"])),
        ));
    }
    if truthy(&dev["sstatus"]) {
        data.push((
            "on secondary".into(),
            Info::Text(dev_status(dev_type, &dev["sstatus"])),
        ));
    }
    data.push(("name".into(), text(&dev["name"])));
    data.push(("UUID".into(), text(&dev["uuid"])));
    if let Some(children) = dev["children"].as_array().filter(|c| !c.is_empty()) {
        data.push((
            "child devices".into(),
            Info::List(
                children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| block_dev_info(i, false, c))
                    .collect(),
            ),
        ));
    }
    Info::Section(data)
}

/// One NIC: `(name, uuid, ip, mac, mode, link, vlan, network, netinfo)`.
fn nic_info(idx: usize, nic: &Value) -> Info {
    let f = |i: usize| nic.get(i).cloned().unwrap_or(Value::Null);
    let network = f(8).get("name").cloned().unwrap_or(Value::Null);
    Info::Section(vec![
        (format!("nic/{idx}"), Info::Text(String::new())),
        ("MAC".into(), text(&f(3))),
        ("IP".into(), text(&f(2))),
        ("mode".into(), text(&f(4))),
        ("link".into(), text(&f(5))),
        ("vlan".into(), text(&f(6))),
        ("network".into(), text(&network)),
        ("UUID".into(), text(&f(1))),
        ("name".into(), text(&f(0))),
    ])
}

fn nodes_info(inst: &Value) -> Info {
    let names = inst["snodes"].as_array().cloned().unwrap_or_default();
    let gnames = inst["snodes_group_names"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let guuids = inst["snodes_group_uuids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let secs: Vec<String> = names
        .iter()
        .zip(gnames.iter())
        .zip(guuids.iter())
        .map(|((n, g), u)| {
            format!(
                "{} (group {}, group UUID {})",
                str_of(n),
                str_of(g),
                str_of(u)
            )
        })
        .collect();
    Info::List(vec![
        Info::Section(vec![
            ("primary".into(), text(&inst["pnode"])),
            (
                "group".into(),
                Info::Text(format!(
                    "{} (UUID {})",
                    str_of(&inst["pnode_group_name"]),
                    str_of(&inst["pnode_group_uuid"])
                )),
            ),
        ]),
        Info::Section(vec![("secondaries".into(), Info::Text(secs.join(", ")))]),
    ])
}

/// Ganeti's `_GetVncConsoleInfo`.
fn vnc_console(inst: &Value) -> Option<String> {
    let bind = inst["hv_actual"]
        .get("vnc_bind_address")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let port = &inst["network_port"];
    let display = port.as_i64().map_or(0, |p| p - VNC_BASE_PORT);
    let pnode = str_of(&inst["pnode"]);
    let port = str_of(port);
    let target = if display > 0 && bind == IP4_ADDRESS_ANY {
        format!("{pnode}:{port} (display {display})")
    } else if display > 0 && bind.parse::<std::net::Ipv4Addr>().is_ok() {
        format!("{bind}:{port} (node {pnode}) (display {display})")
    } else {
        format!("{pnode}:{bind}")
    };
    Some(format!("vnc to {target}"))
}

fn format_time(v: &Value) -> String {
    match v.as_f64() {
        Some(secs) => crate::sys::time::format_local(secs),
        None => "N/A".into(),
    }
}

/// The info tree of one instance.
pub fn instance_info(inst: &Value) -> Info {
    let mut state = format!("configured to be {}", str_of(&inst["config_state"]));
    match &inst["run_state"] {
        Value::Null | Value::Bool(false) => {}
        Value::String(s) if s.is_empty() => {}
        rs => state.push_str(&format!(", actual state is {}", str_of(rs))),
    }
    let mut info: Vec<(String, Info)> = vec![
        ("Instance name".into(), text(&inst["name"])),
        ("UUID".into(), text(&inst["uuid"])),
        ("Serial number".into(), text(&inst["serial_no"])),
        (
            "Creation time".into(),
            Info::Text(format_time(&inst["ctime"])),
        ),
        (
            "Modification time".into(),
            Info::Text(format_time(&inst["mtime"])),
        ),
        ("State".into(), Info::Text(state)),
        ("Nodes".into(), nodes_info(inst)),
        ("Operating system".into(), text(&inst["os"])),
        (
            "Operating system parameters".into(),
            params_info(&inst["os_instance"], &inst["os_actual"]),
        ),
    ];
    if inst.get("network_port").is_some() {
        info.push(("Allocated network port".into(), text(&inst["network_port"])));
    }
    info.push(("Hypervisor".into(), text(&inst["hypervisor"])));
    if let Some(c) = vnc_console(inst) {
        info.push(("console connection".into(), Info::Text(c)));
    }
    // Ganeti still shows the pre-2.6 "memory" as a copy of maxmem.
    let mut be_actual = inst["be_actual"].clone();
    if let Some(m) = be_actual.as_object_mut() {
        let maxmem = m.get("maxmem").cloned().unwrap_or(Value::Null);
        m.insert("memory".into(), maxmem);
    }
    let nics = inst["nics"].as_array().cloned().unwrap_or_default();
    let disks = inst["disks"].as_array().cloned().unwrap_or_default();
    info.extend([
        (
            "Hypervisor parameters".into(),
            params_info(&inst["hv_instance"], &inst["hv_actual"]),
        ),
        (
            "Back-end parameters".into(),
            params_info(&inst["be_instance"], &be_actual),
        ),
        (
            "NICs".into(),
            Info::List(
                nics.iter()
                    .enumerate()
                    .map(|(i, n)| nic_info(i, n))
                    .collect(),
            ),
        ),
        ("Disk template".into(), text(&inst["disk_template"])),
        (
            "Disks".into(),
            Info::List(
                disks
                    .iter()
                    .enumerate()
                    .map(|(i, d)| block_dev_info(i, true, d))
                    .collect(),
            ),
        ),
    ]);
    Info::Section(info)
}

/// The whole `info` output for an `OP_INSTANCE_QUERY_DATA` result
/// (instances in the result's order).
pub fn info_tree(result: &Value) -> Info {
    let instances: Vec<Info> = result
        .as_object()
        .map(|m| m.values().map(instance_info).collect())
        .unwrap_or_default();
    Info::List(instances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture() -> Value {
        json!({"inst1.example.com": {
            "name": "inst1.example.com",
            "config_state": "up",
            "run_state": "up",
            "pnode": "node1.example.com",
            "pnode_group_uuid": "g-uuid",
            "pnode_group_name": "default",
            "snodes": ["node2.example.com"],
            "snodes_group_uuids": ["g-uuid"],
            "snodes_group_names": ["default"],
            "os": "debootstrap+default",
            "nics": [["eth0", "n-uuid", null, "aa:00:00:35:d0:1a", "bridged", "br0", "", null, null]],
            "disk_template": "drbd",
            "disks": [{
                "iv_name": "disk/0",
                "dev_type": "drbd",
                "logical_id": ["node1.example.com", "node2.example.com", 11000, 0, 0, "secret"],
                "drbd_info": {"primary_node": "node1.example.com", "primary_minor": 0,
                              "secondary_node": "node2.example.com", "secondary_minor": 0,
                              "port": 11000},
                "pstatus": ["/dev/drbd0", 147, 0, null, null, false, 1],
                "sstatus": ["/dev/drbd0", 147, 0, 45.5, 30, true, 1],
                "children": [{
                    "iv_name": null, "dev_type": "plain",
                    "logical_id": ["xenvg", "abc.disk0_data"], "drbd_info": null,
                    "pstatus": ["/dev/xenvg/abc.disk0_data", 253, 0, null, null, false, 1],
                    "sstatus": null, "children": [], "mode": "rw", "size": 10240,
                    "spindles": null, "name": null, "uuid": "c-uuid"
                }],
                "mode": "rw",
                "size": 10240,
                "spindles": null,
                "name": null,
                "uuid": "d-uuid"
            }],
            "hypervisor": "kvm",
            "network_port": 11001,
            "hv_instance": {"acpi": false},
            "hv_actual": {"acpi": false, "boot_order": "disk", "vnc_bind_address": "0.0.0.0"},
            "be_instance": {"vcpus": 2},
            "be_actual": {"vcpus": 2, "maxmem": 512, "minmem": 512},
            "os_instance": {},
            "os_actual": {"dhcp": "yes"},
            "serial_no": 3,
            "mtime": 1700000100.5,
            "ctime": 1700000000.0,
            "uuid": "i-uuid"
        }})
    }

    #[test]
    fn info_reads_like_ganeti() {
        let out = info_tree(&fixture()).render();
        let expected = "\
- Instance name: inst1.example.com
  UUID: i-uuid
  Serial number: 3
  Creation time: 2023-11-14 22:13:20
  Modification time: 2023-11-14 22:15:00
  State: configured to be up, actual state is up
  Nodes: 
    - primary: node1.example.com
      group: default (UUID g-uuid)
    - secondaries: node2.example.com (group default, group UUID g-uuid)
  Operating system: debootstrap+default
  Operating system parameters: 
    dhcp: default (yes)
  Allocated network port: 11001
  Hypervisor: kvm
  console connection: vnc to node1.example.com:11001 (display 5101)
  Hypervisor parameters: 
    acpi: False
    boot_order: default (disk)
    vnc_bind_address: default (0.0.0.0)
  Back-end parameters: 
    maxmem: default (512)
    memory: default (512)
    minmem: default (512)
    vcpus: 2
  NICs: 
    - nic/0: 
      MAC: aa:00:00:35:d0:1a
      IP: None
      mode: bridged
      link: br0
      vlan: 
      network: None
      UUID: n-uuid
      name: eth0
  Disk template: drbd
  Disks: 
    - disk/0: drbd, size 10.0G
      access mode: rw
      nodeA: node1.example.com, minor=0
      nodeB: node2.example.com, minor=0
      port: 11000
      on primary: /dev/drbd0 (147:0) in sync, status ok
      on secondary: /dev/drbd0 (147:0) *RECOVERING* 45.50%, ETA 30s, status *DEGRADED*
      name: None
      UUID: d-uuid
      child devices: 
        - child 0: plain, size 10.0G
          logical_id: xenvg/abc.disk0_data
          on primary: /dev/xenvg/abc.disk0_data (253:0)
          name: None
          UUID: c-uuid";
        assert_eq!(out, expected);
    }

    #[test]
    fn static_info_and_odd_values() {
        let mut f = fixture();
        let inst = &mut f["inst1.example.com"];
        inst["run_state"] = Value::Null;
        inst["disks"][0]["pstatus"] = Value::Null;
        inst["disks"][0]["sstatus"] = Value::Null;
        inst["hv_actual"]["vnc_bind_address"] = json!("/var/run/vnc.sock");
        inst["ctime"] = Value::Null;
        let out = info_tree(&f).render();
        assert!(out.contains("State: configured to be up\n"));
        assert!(out.contains("Creation time: N/A\n"));
        assert!(!out.contains("on primary: /dev/drbd0"));
        assert!(out.contains("console connection: vnc to node1.example.com:/var/run/vnc.sock"));
        assert_eq!(dev_status("plain", &json!([])), "not active");
        assert_eq!(
            dev_status(
                "plain",
                &json!(["/dev/x", null, null, null, null, false, 4])
            ),
            "/dev/x (N/A:N/A) *FAILED* (failed drive?)"
        );
        assert_eq!(
            dev_status("drbd", &json!(["/dev/drbd1", 147, 1, 3.0, null, false, 3])),
            "/dev/drbd1 (147:1) *RECOVERING*  3.00%, ETA unknown, status ok *UNCERTAIN STATE*"
        );
    }
}
