//! Instance LUs against a fake RPC: the RPC sequence, the config after
//! success, and cleanup after failures injected at each node step.

use crate::cmdlib::fake_rpc::{exec_err, prereq, TestCluster};
use crate::cmdlib::OpOutcome;
use crate::config::objects::AdminState;
use crate::error::ErrorKind;
use crate::opcodes::params::{DiskTemplate, InstanceCreateMode, RebootType};
use crate::opcodes::*;
use crate::rpc::proto;
use serde_json::{json, Value};

const NEW: &str = "new1.example.com";

fn dict(v: Value) -> Dict {
    v.as_object().unwrap().clone()
}

fn create_op() -> OpInstanceCreate {
    OpInstanceCreate {
        instance_name: NEW.into(),
        mode: InstanceCreateMode::Create,
        disk_template: Some(DiskTemplate::Plain),
        disks: vec![
            dict(json!({"size": "1G"})),
            dict(json!({"size": 512, "mode": "ro"})),
        ],
        nics: vec![dict(json!({}))],
        os_type: Some("debootstrap+default".into()),
        pnode: Some("node2".into()),
        beparams: dict(json!({"maxmem": 256, "minmem": 256})),
        name_check: false,
        ip_check: false,
        ..Default::default()
    }
}

fn script_node(c: &TestCluster, node: &str, free_mib: u64) {
    c.rpc.answer_fake_host(node, free_mib);
    c.rpc.answer_assembled(node, "x", "/dev/xenvg/x");
}

fn cluster(tag: &str) -> TestCluster {
    let c = TestCluster::new(tag, 3, 1);
    for n in [
        "node1.example.com",
        "node2.example.com",
        "node3.example.com",
    ] {
        script_node(&c, n, 2048);
    }
    c
}

fn procs(c: &TestCluster) -> Vec<String> {
    c.rpc
        .calls()
        .into_iter()
        .map(|c| c.procedure)
        .filter(|p| proto::INSTANCE_PROCEDURES.contains(&p.as_str()))
        .collect()
}

#[test]
fn create_runs_disks_config_install_start() {
    let c = cluster("create-ok");
    let (out, log) = c.run(create_op());
    assert_eq!(
        out,
        OpOutcome::Success(json!(["node2.example.com"])),
        "{log:?}"
    );
    assert_eq!(
        procs(&c),
        vec![
            proto::OS_VALIDATE,
            proto::NODE_HV_INFO,
            proto::BLOCKDEV_CREATE,
            proto::BLOCKDEV_CREATE,
            proto::BLOCKDEV_ASSEMBLE,
            proto::BLOCKDEV_ASSEMBLE,
            proto::INSTANCE_OS_ADD,
            proto::INSTANCE_START,
        ]
    );
    assert!(c
        .rpc
        .calls()
        .iter()
        .filter(|x| x.procedure.starts_with("blockdev") || x.procedure.starts_with("instance"))
        .all(|x| x.node == "node2.example.com"));
    let cfg = c.config();
    let (_, inst) = cfg.instance_by_name(NEW).unwrap();
    assert_eq!(inst.admin_state, AdminState::Up);
    assert!(inst.disks_active);
    assert_eq!(inst.disks.len(), 2);
    let d0 = &cfg.disks[&inst.disks[0]];
    assert_eq!(d0.size, 1024);
    assert_eq!(d0.iv_name, "disk/0");
    let id = serde_json::to_value(&d0.logical_id).unwrap();
    assert_eq!(id[0], "xenvg");
    assert!(id[1].as_str().unwrap().ends_with(".disk0"), "{id}");
    assert_eq!(
        cfg.disks[&inst.disks[1]].mode,
        crate::config::objects::DiskMode::ReadOnly
    );
    assert!(inst.nics[0].mac.starts_with(&cfg.cluster.mac_prefix));
    assert!(c.has_instance_lock(NEW));
    // The node got the resolved spec.
    let start = c.rpc.calls_of(proto::INSTANCE_START);
    let args: proto::InstanceStartArgs = serde_json::from_value(start[0].1.clone()).unwrap();
    assert_eq!(args.instance.beparams["maxmem"], json!(256));
    assert_eq!(args.disks.len(), 2);
    // A second create of the same name is refused and changes nothing.
    let serial = c.config().serial_no;
    let (kind, msg) = prereq(c.run(create_op()).0);
    assert_eq!(kind, ErrorKind::Exists);
    assert_eq!(msg, format!("Instance '{NEW}' is already in the cluster"));
    assert_eq!(c.config().serial_no, serial);
}

#[test]
fn create_failure_at_each_node_step_leaves_nothing() {
    for (step, node_msg) in [
        (proto::BLOCKDEV_CREATE, "lvcreate failed"),
        (
            proto::INSTANCE_OS_ADD,
            "create script failed: log says no space",
        ),
        (proto::INSTANCE_START, "qemu exited"),
    ] {
        let c = cluster(&format!("create-fail-{step}"));
        let before = c.config();
        c.rpc
            .answer(step, "node2.example.com", Err(node_msg.into()));
        let m = exec_err(c.run(create_op()).0);
        assert!(m.contains(node_msg), "{step}: {m}");
        let cfg = c.config();
        assert!(cfg.instance_by_name(NEW).is_none(), "{step}");
        assert_eq!(cfg.disks.len(), before.disks.len(), "{step}");
        assert!(!c.has_instance_lock(NEW), "{step}: lock left behind");
        let created = c.rpc.calls_of(proto::BLOCKDEV_CREATE).len();
        let removed = c.rpc.calls_of(proto::BLOCKDEV_REMOVE).len();
        let expected = if step == proto::BLOCKDEV_CREATE { 0 } else { 2 };
        assert_eq!(removed, expected, "{step}: created {created}");
        // Re-runnable once the node is fixed.
        c.rpc.answer(step, "node2.example.com", Ok(Value::Null));
        assert!(
            matches!(c.run(create_op()).0, OpOutcome::Success(_)),
            "{step}"
        );
    }
}

#[test]
fn create_prerequisites_refuse_with_ganeti_messages() {
    let c = cluster("create-prereq");
    let cases: Vec<(OpInstanceCreate, &str)> = vec![
        (
            OpInstanceCreate {
                disk_template: Some(DiskTemplate::File),
                ..create_op()
            },
            "Disk template 'file' is not enabled in cluster",
        ),
        (
            OpInstanceCreate {
                disks: vec![dict(json!({"size": "big"}))],
                ..create_op()
            },
            "Invalid disk size 'big'",
        ),
        (
            OpInstanceCreate {
                disks: vec![dict(json!({"size": 1, "mode": "rx"}))],
                ..create_op()
            },
            "Invalid disk access mode 'rx'",
        ),
        (
            OpInstanceCreate {
                nics: vec![dict(json!({"mode": "routed"}))],
                ..create_op()
            },
            "Routed nic mode requires an ip address",
        ),
        (
            OpInstanceCreate {
                nics: vec![dict(json!({"mac": "aa:00:00:00:00:01"}))],
                ..create_op()
            },
            "MAC address aa:00:00:00:00:01 already in use in cluster",
        ),
        (
            OpInstanceCreate {
                hvparams: dict(json!({"no_such": 1})),
                ..create_op()
            },
            "no_such",
        ),
        (
            OpInstanceCreate {
                pnode: None,
                ..create_op()
            },
            "--iallocator",
        ),
        (
            OpInstanceCreate {
                os_type: None,
                ..create_op()
            },
            "No guest OS or OS image specified",
        ),
        (
            OpInstanceCreate {
                hypervisor: Some(params::Hypervisor::Kvm),
                ..create_op()
            },
            "Selected hypervisor (kvm) not enabled in the cluster (fake)",
        ),
        (
            OpInstanceCreate {
                nics: vec![dict(json!({"ip": "10.0.0.2"}))],
                ip_check: false,
                conflicts_check: true,
                ..create_op()
            },
            "IP address 10.0.0.2 already in use by instance inst1.example.com",
        ),
    ];
    for (op, want) in cases {
        let (_, msg) = prereq(c.run(op).0);
        assert!(msg.contains(want), "want {want:?}, got {msg:?}");
    }
    // Node answers: OS refused, not enough memory.
    c.rpc.answer(
        proto::OS_VALIDATE,
        "node2.example.com",
        Err("OS 'debootstrap' not found".into()),
    );
    let (_, msg) = prereq(c.run(create_op()).0);
    assert!(msg.contains("OS 'debootstrap' not found"), "{msg}");
    c.rpc
        .answer(proto::OS_VALIDATE, "node2.example.com", Ok(Value::Null));
    script_node(&c, "node2.example.com", 100);
    let (kind, msg) = prereq(c.run(create_op()).0);
    assert_eq!(kind, ErrorKind::NoRes);
    assert_eq!(msg, "Not enough memory on node node2.example.com for creating instance new1.example.com: needed 256 MiB, available 100 MiB");
    assert!(c.rpc.calls_of(proto::BLOCKDEV_CREATE).is_empty());
    assert!(c.config().instance_by_name(NEW).is_none());
    assert!(!c.has_instance_lock(NEW));
}

#[test]
fn create_with_name_check_resolves_through_virtual_hosts() {
    let c = cluster("create-names");
    c.add_host("192.0.2.77", NEW);
    let op = OpInstanceCreate {
        name_check: true,
        nics: vec![dict(json!({"ip": "auto"}))],
        no_install: Some(true),
        start: false,
        ..create_op()
    };
    let (out, log) = c.run(op);
    assert!(matches!(out, OpOutcome::Success(_)), "{out:?} {log:?}");
    let cfg = c.config();
    let inst = cfg.instance_by_name(NEW).unwrap().1;
    assert_eq!(inst.nics[0].ip.as_deref(), Some("192.0.2.77"));
    assert_eq!(inst.admin_state, AdminState::Down);
    assert!(!inst.disks_active);
    assert!(c.rpc.calls_of(proto::INSTANCE_OS_ADD).is_empty());
    assert!(c.rpc.calls_of(proto::INSTANCE_START).is_empty());
}

#[test]
fn remove_shutdown_startup_reboot_cycle() {
    let c = cluster("cycle");
    assert!(matches!(c.run(create_op()).0, OpOutcome::Success(_)));
    c.rpc.clear();
    let (out, log) = c.run(OpInstanceShutdown {
        instance_name: "new1".into(),
        ..Default::default()
    });
    assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
    assert_eq!(
        procs(&c),
        vec![
            proto::INSTANCE_SHUTDOWN,
            proto::BLOCKDEV_SHUTDOWN,
            proto::BLOCKDEV_SHUTDOWN
        ]
    );
    let inst = c.config().instance_by_name(NEW).unwrap().1.clone();
    assert_eq!(inst.admin_state, AdminState::Down);
    assert!(!inst.disks_active);

    // Startup refuses without memory, then starts.
    script_node(&c, "node2.example.com", 10);
    let (kind, _) = prereq(
        c.run(OpInstanceStartup {
            instance_name: NEW.into(),
            ..Default::default()
        })
        .0,
    );
    assert_eq!(kind, ErrorKind::NoRes);
    assert_eq!(
        c.config().instance_by_name(NEW).unwrap().1.admin_state,
        AdminState::Down
    );
    script_node(&c, "node2.example.com", 4000);
    c.rpc.clear();
    let (out, _) = c.run(OpInstanceStartup {
        instance_name: NEW.into(),
        ..Default::default()
    });
    assert_eq!(out, OpOutcome::Success(Value::Null));
    assert_eq!(
        procs(&c),
        vec![
            proto::INSTANCE_INFO,
            proto::NODE_HV_INFO,
            proto::BLOCKDEV_ASSEMBLE,
            proto::BLOCKDEV_ASSEMBLE,
            proto::INSTANCE_START
        ]
    );
    assert_eq!(
        c.config().instance_by_name(NEW).unwrap().1.admin_state,
        AdminState::Up
    );

    // Hard reboot of a running instance is one call.
    c.rpc.answer(proto::INSTANCE_INFO, "node2.example.com", Ok(json!({"name": NEW, "state": "running", "memory_mib": 256, "vcpus": 1, "cpu_time_secs": null})));
    c.rpc.clear();
    let (out, _) = c.run(OpInstanceReboot {
        instance_name: NEW.into(),
        reboot_type: RebootType::Hard,
        ..Default::default()
    });
    assert_eq!(out, OpOutcome::Success(Value::Null));
    assert_eq!(
        procs(&c),
        vec![proto::INSTANCE_INFO, proto::INSTANCE_REBOOT]
    );

    // Remove: failure of the shutdown stops it unless ignore_failures.
    c.rpc.answer(
        proto::INSTANCE_SHUTDOWN,
        "node2.example.com",
        Err("hv stuck".into()),
    );
    let m = exec_err(
        c.run(OpInstanceRemove {
            instance_name: NEW.into(),
            ..Default::default()
        })
        .0,
    );
    assert!(
        m.contains("Could not shutdown instance new1.example.com on node node2.example.com: "),
        "{m}"
    );
    assert!(c.config().instance_by_name(NEW).is_some());
    c.rpc.clear();
    let (out, log) = c.run(OpInstanceRemove {
        instance_name: NEW.into(),
        ignore_failures: true,
        ..Default::default()
    });
    assert_eq!(out, OpOutcome::Success(Value::Null), "{log:?}");
    assert_eq!(c.rpc.calls_of(proto::BLOCKDEV_REMOVE).len(), 2);
    let cfg = c.config();
    assert!(cfg.instance_by_name(NEW).is_none());
    assert_eq!(cfg.disks.len(), 1);
    assert!(!c.has_instance_lock(NEW));
    let (kind, msg) = prereq(
        c.run(OpInstanceRemove {
            instance_name: NEW.into(),
            ..Default::default()
        })
        .0,
    );
    assert_eq!(
        (kind, msg.as_str()),
        (ErrorKind::NoEnt, "Instance 'new1.example.com' not known")
    );
}

#[test]
fn disks_grow_console_and_query_data() {
    let c = cluster("disks");
    assert!(matches!(c.run(create_op()).0, OpOutcome::Success(_)));
    let (out, _) = c.run(OpInstanceGrowDisk {
        instance_name: NEW.into(),
        disk: 0,
        amount: 2048,
        absolute: true,
        ..Default::default()
    });
    assert_eq!(out, OpOutcome::Success(Value::Null));
    let cfg = c.config();
    let inst = cfg.instance_by_name(NEW).unwrap().1;
    assert_eq!(cfg.disks[&inst.disks[0]].size, 2048);
    let grows = c.rpc.calls_of(proto::BLOCKDEV_GROW);
    // Dry run of the backing storage, the backing storage, the device.
    assert_eq!(grows.len(), 3);
    assert_eq!(grows[0].1["dry_run"], true);
    assert_eq!(grows[0].1["backing_only"], true);
    assert_eq!(grows[1].1["amount_mib"], 1024);
    assert_eq!(
        (
            grows[1].1["dry_run"].clone(),
            grows[1].1["backing_only"].clone()
        ),
        (Value::Bool(false), Value::Bool(true))
    );
    assert_eq!(grows[2].1["backing_only"], false);
    let (_, msg) = prereq(
        c.run(OpInstanceGrowDisk {
            instance_name: NEW.into(),
            disk: 0,
            amount: 10,
            absolute: true,
            ..Default::default()
        })
        .0,
    );
    assert!(
        msg.starts_with("Requested size (10M) is smaller than current disk size (2.0G)"),
        "{msg}"
    );

    // Deactivating under a running instance is refused.
    c.rpc.answer(proto::INSTANCE_INFO, "node2.example.com", Ok(json!({"name": NEW, "state": "running", "memory_mib": 256, "vcpus": 1, "cpu_time_secs": null})));
    let m = exec_err(
        c.run(OpInstanceDeactivateDisks {
            instance_name: NEW.into(),
            ..Default::default()
        })
        .0,
    );
    assert!(
        m.contains("is running, can't shutdown block devices"),
        "{m}"
    );
    let (out, _) = c.run(OpInstanceActivateDisks {
        instance_name: NEW.into(),
        ..Default::default()
    });
    assert_eq!(
        out,
        OpOutcome::Success(json!([
            ["node2.example.com", "disk/0", "/dev/xenvg/x"],
            ["node2.example.com", "disk/1", "/dev/xenvg/x"]
        ]))
    );

    c.rpc.answer(
        proto::INSTANCE_CONSOLE,
        "node2.example.com",
        Ok(json!(proto::ConsoleInfo {
            instance: NEW.into(),
            kind: "vnc".into(),
            command: vec![],
            host: Some("node2.example.com".into()),
            user: None,
            port: Some(5901),
            message: None
        })),
    );
    let (out, _) = c.run(OpInstanceConsole {
        instance_name: NEW.into(),
        ..Default::default()
    });
    assert_eq!(
        out,
        OpOutcome::Success(
            json!({"instance": NEW, "kind": "vnc", "host": "node2.example.com", "port": 5901})
        )
    );

    let uuid0 = c.config().instance_by_name(NEW).unwrap().1.disks[0].to_string();
    c.rpc.answer(
        proto::BLOCKDEV_STATUS,
        "node2.example.com",
        Ok(json!([proto::DiskStatus {
            uuid: uuid0,
            present: true,
            path: Some("/dev/xenvg/x".into()),
            sync_percent: None,
            estimated_time_secs: None,
            is_degraded: false,
            ldisk_status: "ok".into()
        }])),
    );
    let (out, _) = c.run(OpInstanceQueryData {
        instances: vec!["new1".into()],
        ..Default::default()
    });
    let OpOutcome::Success(v) = out else {
        panic!("{out:?}")
    };
    let i = &v[NEW];
    assert_eq!(i["config_state"], "up");
    assert_eq!(i["run_state"], "up");
    assert_eq!(i["pnode"], "node2.example.com");
    assert_eq!(i["disk_template"], "plain");
    assert_eq!(i["disks"][0]["pstatus"][0], "/dev/xenvg/x");
    assert_eq!(i["disks"][0]["pstatus"][6], "ok");
    assert_eq!(i["disks"][1]["pstatus"], Value::Null);
    assert_eq!(i["be_actual"]["maxmem"], 256);
    assert_eq!(i["nics"][0][4], "bridged");
    // Ganeti's order: name, uuid, ip, mac.
    assert!(
        i["nics"][0][3]
            .as_str()
            .is_some_and(|m| m.starts_with("aa:00:00:")),
        "{}",
        i["nics"][0]
    );
}
