//! Node side of the hypervisor procedures (`instance_start`, …, migration):
//! parses each procedure's arguments into its `rpc::proto` struct, calls
//! [`crate::hv`] for the instance's hypervisor, and answers in the
//! `rpc::proto` types. Never reads the cluster config.
//!
//! Results: the state-changing calls answer `null`; `instance_info` an
//! [`HvInstanceInfo`] or `null`; `all_instances_info` a list of
//! [`HvInstanceInfo`] over the requested hypervisors; `node_hv_info` a list
//! of [`NodeHvInfo`] in the order of the request's (sorted) hypervisor
//! names; `instance_console` a [`ConsoleInfo`]; `migration_info` the
//! hypervisor's opaque value; `migration_status` a [`MigrationStatus`].
//!
//! Reboot follows Ganeti's backend: `soft` asks the hypervisor, `hard` and
//! `full` stop and start the instance here (a `full` reboot's disk cycle is
//! the master's business).

use crate::hv::{self, HvError, MigrationMode, MigrationOutcome, StartMode};
use crate::paths::Paths;
use crate::rpc::proto::{
    self, BalloonArgs, HvInstanceInfo, HypervisorsArgs, InstanceInfoArgs, InstanceRebootArgs,
    InstanceShutdownArgs, InstanceStartArgs, MigrationArgs, NodeHvInfo,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

#[cfg(doc)]
use crate::rpc::proto::{ConsoleInfo, MigrationStatus};

/// Runs `procedure` if it is one of this module's; `None` otherwise.
/// Errors are the message for the RPC error reply (the full error chain).
pub fn handle(paths: &Paths, procedure: &str, args: Value) -> Option<Result<Value, String>> {
    let result = match procedure {
        proto::INSTANCE_START => run(procedure, args, |a| start(paths, a)),
        proto::INSTANCE_SHUTDOWN => run(procedure, args, |a| shutdown(paths, a)),
        proto::INSTANCE_REBOOT => run(procedure, args, |a| reboot(paths, a)),
        proto::INSTANCE_INFO => run(procedure, args, |a| instance_info(paths, a)),
        proto::ALL_INSTANCES_INFO => run(procedure, args, |a| all_instances_info(paths, a)),
        proto::NODE_HV_INFO => run(procedure, args, |a| node_hv_info(paths, a)),
        proto::INSTANCE_CONSOLE => run(procedure, args, |a| console(paths, a)),
        proto::INSTANCE_BALLOON_MEMORY => run(procedure, args, |a| balloon(paths, a)),
        proto::MIGRATION_INFO
        | proto::ACCEPT_INSTANCE
        | proto::INSTANCE_MIGRATE
        | proto::MIGRATION_STATUS
        | proto::FINALIZE_MIGRATION_DST
        | proto::FINALIZE_MIGRATION_SRC => run(procedure, args, |a| migration(paths, procedure, a)),
        _ => return None,
    };
    Some(result)
}

/// Parses `args` as `A` (naming the procedure on failure), runs `f`, and
/// serialises its answer; hypervisor errors become their full chain.
fn run<A, R>(
    procedure: &str,
    args: Value,
    f: impl FnOnce(A) -> Result<R, HvError>,
) -> Result<Value, String>
where
    A: DeserializeOwned,
    R: serde::Serialize,
{
    let parsed: A =
        serde_json::from_value(args).map_err(|e| format!("{procedure}: invalid arguments: {e}"))?;
    let answer = f(parsed).map_err(|e| format!("{procedure}: {}", crate::error::chain(&e)))?;
    serde_json::to_value(answer).map_err(|e| format!("{procedure}: cannot encode the result: {e}"))
}

fn start(paths: &Paths, a: InstanceStartArgs) -> Result<(), HvError> {
    let hv = hv::get(&a.instance.hypervisor, paths)?;
    hv.start(
        &a.instance,
        &a.disks,
        StartMode::from_paused_flag(a.startup_paused),
    )
}

fn shutdown(paths: &Paths, a: InstanceShutdownArgs) -> Result<(), HvError> {
    let hv = hv::get(&a.instance.hypervisor, paths)?;
    hv.stop(&a.instance, Duration::from_secs(a.timeout_secs))
}

fn reboot(paths: &Paths, a: InstanceRebootArgs) -> Result<(), HvError> {
    let hv = hv::get(&a.instance.hypervisor, paths)?;
    match a.reboot_type.as_str() {
        "soft" => hv.reboot(&a.instance),
        "hard" | "full" => {
            if hv
                .instance_info(&a.instance.name, &a.instance.hvparams)?
                .is_none()
            {
                return Err(HvError::NotRunning {
                    instance: a.instance.name.clone(),
                });
            }
            hv.stop(&a.instance, Duration::from_secs(a.shutdown_timeout_secs))?;
            hv.start(&a.instance, &a.disks, StartMode::Running)
        }
        other => Err(HvError::BadParameter {
            instance: a.instance.name.clone(),
            param: "reboot_type".into(),
            value: other.into(),
            reason: "must be soft, hard or full".into(),
        }),
    }
}

fn instance_info(paths: &Paths, a: InstanceInfoArgs) -> Result<Option<HvInstanceInfo>, HvError> {
    hv::get(&a.hypervisor, paths)?.instance_info(&a.name, &a.hvparams)
}

fn all_instances_info(paths: &Paths, a: HypervisorsArgs) -> Result<Vec<HvInstanceInfo>, HvError> {
    let mut out = Vec::new();
    for (name, params) in &a.hypervisors {
        out.extend(hv::get(name, paths)?.all_instances_info(params)?);
    }
    Ok(out)
}

fn node_hv_info(paths: &Paths, a: HypervisorsArgs) -> Result<Vec<NodeHvInfo>, HvError> {
    a.hypervisors
        .iter()
        .map(|(name, params)| hv::get(name, paths)?.node_info(params))
        .collect()
}

/// The console of the instance, reached through the primary node's name
/// as the master knows it.
fn console(paths: &Paths, a: proto::InstanceConsoleArgs) -> Result<proto::ConsoleInfo, HvError> {
    hv::get(&a.instance.hypervisor, paths)?.console(&a.instance, &a.node_name)
}

fn balloon(paths: &Paths, a: BalloonArgs) -> Result<(), HvError> {
    hv::get(&a.instance.hypervisor, paths)?.balloon_memory(&a.instance, a.memory_mib)
}

fn migration(paths: &Paths, procedure: &str, a: MigrationArgs) -> Result<Value, HvError> {
    let hv = hv::get(&a.instance.hypervisor, paths)?;
    let mode = if a.live {
        MigrationMode::Live
    } else {
        MigrationMode::NonLive
    };
    let outcome = if a.success {
        MigrationOutcome::Success
    } else {
        MigrationOutcome::Abort
    };
    let null = |r: Result<(), HvError>| r.map(|()| Value::Null);
    match procedure {
        proto::MIGRATION_INFO => hv.migration_info(&a.instance),
        proto::ACCEPT_INSTANCE => {
            null(hv.accept_instance(&a.instance, &a.info, &a.target_address, &a.disks))
        }
        proto::INSTANCE_MIGRATE => null(hv.migrate(&a.instance, &a.info, &a.target_address, mode)),
        proto::MIGRATION_STATUS => hv.migration_status(&a.instance).map(|s| {
            serde_json::to_value(s).expect("a migration status of strings and integers encodes")
        }),
        proto::FINALIZE_MIGRATION_DST => {
            null(hv.finalize_migration_dst(&a.instance, &a.info, outcome))
        }
        _ => null(hv.finalize_migration_src(&a.instance, outcome, mode)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hv::fake::test_support::{cleanup, instance, node};
    use serde_json::json;

    fn call(p: &Paths, procedure: &str, args: Value) -> Result<Value, String> {
        handle(p, procedure, args).expect("one of this module's procedures")
    }

    fn start_args(name: &str, maxmem: u64) -> Value {
        json!({ "instance": instance(name, "fake", maxmem), "disks": [], "startup_paused": false })
    }

    fn info(p: &Paths, name: &str) -> Value {
        call(
            p,
            proto::INSTANCE_INFO,
            json!({"name": name, "hypervisor": "fake", "hvparams": {}}),
        )
        .unwrap()
    }

    #[test]
    fn other_procedures_are_not_ours() {
        let p = node("be-none");
        assert!(handle(&p, proto::BLOCKDEV_CREATE, json!({})).is_none());
        cleanup(&p);
    }

    #[test]
    fn start_info_shutdown_through_handle() {
        let p = node("be-life");
        assert_eq!(
            call(&p, proto::INSTANCE_START, start_args("i1", 512)).unwrap(),
            Value::Null
        );
        let i = info(&p, "i1");
        assert_eq!(i["state"], "running");
        assert_eq!(i["memory_mib"], 512);
        let all = call(
            &p,
            proto::ALL_INSTANCES_INFO,
            json!({"hypervisors": {"fake": {}}}),
        )
        .unwrap();
        assert_eq!(all.as_array().unwrap().len(), 1);
        assert_eq!(all[0]["name"], "i1");
        let shut = json!({"instance": instance("i1", "fake", 512), "timeout_secs": 5});
        call(&p, proto::INSTANCE_SHUTDOWN, shut.clone()).unwrap();
        assert_eq!(info(&p, "i1"), Value::Null);
        // Stopping again is fine (ensure-state).
        call(&p, proto::INSTANCE_SHUTDOWN, shut).unwrap();
        cleanup(&p);
    }

    #[test]
    fn start_refusal_carries_the_numbers() {
        let p = node("be-mem");
        let err = call(&p, proto::INSTANCE_START, start_args("big", 5000)).unwrap_err();
        assert!(
            err.contains("instance_start")
                && err.contains("not enough memory on node: needed 5000 MiB, free 3072 MiB"),
            "{err}"
        );
        cleanup(&p);
    }

    #[test]
    fn bad_arguments_name_the_procedure() {
        let p = node("be-bad");
        let err = call(&p, proto::INSTANCE_START, json!({"instance": 3})).unwrap_err();
        assert!(
            err.starts_with("instance_start: invalid arguments"),
            "{err}"
        );
        let mut a = start_args("x", 1);
        a["instance"]["hypervisor"] = json!("xen-hvm");
        let err = call(&p, proto::INSTANCE_START, a).unwrap_err();
        assert!(err.contains("unknown hypervisor \"xen-hvm\""), "{err}");
        let err = call(
            &p,
            proto::NODE_HV_INFO,
            json!({"hypervisors": {"fake": {}}, "extra": 1}),
        )
        .unwrap_err();
        assert!(err.starts_with("node_hv_info: invalid arguments"), "{err}");
        cleanup(&p);
    }

    #[test]
    fn reboot_kinds() {
        let p = node("be-reboot");
        let args = |kind: &str| {
            json!({"instance": instance("r1", "fake", 128), "reboot_type": kind,
                   "shutdown_timeout_secs": 1, "disks": []})
        };
        let err = call(&p, proto::INSTANCE_REBOOT, args("hard")).unwrap_err();
        assert!(err.contains("r1 is not running"), "{err}");
        let mut paused = start_args("r1", 128);
        paused["startup_paused"] = json!(true);
        call(&p, proto::INSTANCE_START, paused).unwrap();
        assert_eq!(info(&p, "r1")["state"], "paused");
        call(&p, proto::INSTANCE_REBOOT, args("hard")).unwrap();
        assert_eq!(info(&p, "r1")["state"], "running");
        call(&p, proto::INSTANCE_REBOOT, args("soft")).unwrap();
        call(&p, proto::INSTANCE_REBOOT, args("full")).unwrap();
        let err = call(&p, proto::INSTANCE_REBOOT, args("gentle")).unwrap_err();
        assert!(err.contains("reboot_type=gentle"), "{err}");
        cleanup(&p);
    }

    #[test]
    fn node_info_console_and_balloon() {
        let p = node("be-node");
        let ni = call(
            &p,
            proto::NODE_HV_INFO,
            json!({"hypervisors": {"fake": {}}}),
        )
        .unwrap();
        assert_eq!(
            ni,
            json!([{"hypervisor": "fake", "memory_total_mib": 4096, "memory_free_mib": 3072,
                    "memory_dom0_mib": 1024, "cpu_total": 4, "cpu_nodes": 1, "cpu_sockets": 1}])
        );
        let c = call(
            &p,
            proto::INSTANCE_CONSOLE,
            json!({"instance": instance("c1", "fake", 1), "node_name": "n1",
                   "node_address": "127.0.0.1"}),
        )
        .unwrap();
        assert_eq!(c["kind"], "msg");
        let missing = call(
            &p,
            proto::INSTANCE_CONSOLE,
            json!({"instance": instance("c1", "fake", 1)}),
        )
        .unwrap_err();
        assert!(missing.contains("node_name"), "{missing}");
        call(&p, proto::INSTANCE_START, start_args("c1", 256)).unwrap();
        call(
            &p,
            proto::INSTANCE_BALLOON_MEMORY,
            json!({"instance": instance("c1", "fake", 256), "memory_mib": 128}),
        )
        .unwrap();
        assert_eq!(info(&p, "c1")["memory_mib"], 128);
        cleanup(&p);
    }

    #[test]
    fn migration_procedures_between_two_nodes() {
        let src = node("be-mig-src");
        let dst = node("be-mig-dst");
        call(&src, proto::INSTANCE_START, start_args("m1", 256)).unwrap();
        let args = |info: Value, success: bool| {
            json!({"instance": instance("m1", "fake", 256), "info": info,
                   "target_address": "127.0.0.2", "live": true, "success": success, "disks": []})
        };
        let mi = call(&src, proto::MIGRATION_INFO, args(Value::Null, false)).unwrap();
        assert_eq!(mi["memory"], 256);
        call(&dst, proto::ACCEPT_INSTANCE, args(mi.clone(), false)).unwrap();
        call(&src, proto::INSTANCE_MIGRATE, args(mi.clone(), false)).unwrap();
        let st = call(&src, proto::MIGRATION_STATUS, args(mi.clone(), false)).unwrap();
        assert_eq!(st["status"], "completed");
        call(&dst, proto::FINALIZE_MIGRATION_DST, args(mi.clone(), true)).unwrap();
        call(&src, proto::FINALIZE_MIGRATION_SRC, args(mi, true)).unwrap();
        assert_eq!(info(&src, "m1"), Value::Null);
        assert_eq!(info(&dst, "m1")["state"], "running");
        cleanup(&src);
        cleanup(&dst);
    }
}
