//! Node side of the block-device procedures (`blockdev_*`): decodes the
//! `rpc::proto` arguments, calls [`crate::storage`], and answers in the
//! `rpc::proto` types. Never reads the cluster config.
//!
//! - `blockdev_create` ([`BlockdevArgs`] → [`AssembledDisk`]): creates the
//!   disk, tags it with its owner (`originstname+<instance>`, Ganeti's
//!   `SetInfo` text), assembles it and, on the primary, opens it.
//! - `blockdev_remove` (→ null): removes it; a missing disk is not an error.
//! - `blockdev_assemble` (→ [`AssembledDisk`]): assembles, opens on the
//!   primary. `uri` is the provider's `kvm:` userspace URI, if any.
//! - `blockdev_shutdown` (→ null).
//! - `blockdev_grow` ([`BlockdevGrowArgs`] → null): Ganeti's two passes:
//!   `backing_only: true` grows the backing storage (call it on every node
//!   of the disk), `backing_only: false` the device layer on top (only DRBD
//!   has one: call it on the primary after the first pass). `disk.size_mib`
//!   is the size before growing.
//! - `blockdev_status` ([`BlockdevsArgs`] → list of [`DiskStatus`], in
//!   order): a missing disk is `present: false`. `ldisk_status` uses
//!   Ganeti's names: `ok`, `syncing`, `unknown`, `faulty`.
//! - `blockdev_getsize` ([`BlockdevsArgs`] → list of MiB or null, rounded
//!   down): null where the disk is missing or cannot be measured.

use super::{decode, to_value};
use crate::error::chain;
use crate::paths::Paths;
use crate::rpc::proto::{
    AssembledDisk, BlockdevArgs, BlockdevGrowArgs, BlockdevsArgs, DiskSpec, DiskStatus,
    BLOCKDEV_ASSEMBLE, BLOCKDEV_CREATE, BLOCKDEV_GETSIZE, BLOCKDEV_GROW, BLOCKDEV_REMOVE,
    BLOCKDEV_SHUTDOWN, BLOCKDEV_STATUS,
};
use crate::storage::{self, Access, GrowLayer, GrowMode, StorageError, MIB};
use crate::sys::cmd::{RealRunner, Runner};
use serde_json::Value;

/// Prefix of the owner text recorded with a disk (Ganeti's
/// `_GetInstanceInfoText`).
pub const OWNER_INFO_PREFIX: &str = "originstname+";

/// Runs `procedure` if it is one of this module's; `None` otherwise.
/// Errors are the message for the RPC error reply.
pub fn handle(paths: &Paths, procedure: &str, args: Value) -> Option<Result<Value, String>> {
    handle_with(paths, &RealRunner, procedure, args)
}

/// [`handle`] with the runner for external programs (tests record them).
pub fn handle_with(
    paths: &Paths,
    runner: &dyn Runner,
    procedure: &str,
    args: Value,
) -> Option<Result<Value, String>> {
    let result = match procedure {
        BLOCKDEV_CREATE => decode(procedure, args).and_then(|a| create(paths, runner, &a)),
        BLOCKDEV_REMOVE => decode(procedure, args).and_then(|a: BlockdevArgs| {
            with_device(paths, runner, &a.disk, |d| d.remove()).map(|()| Value::Null)
        }),
        BLOCKDEV_ASSEMBLE => decode(procedure, args).and_then(|a| assemble(paths, runner, &a)),
        BLOCKDEV_SHUTDOWN => decode(procedure, args).and_then(|a: BlockdevArgs| {
            with_device(paths, runner, &a.disk, |d| d.shutdown()).map(|()| Value::Null)
        }),
        BLOCKDEV_GROW => decode(procedure, args).and_then(|a| grow(paths, runner, &a)),
        BLOCKDEV_STATUS => decode(procedure, args).and_then(|a| status(paths, runner, &a)),
        BLOCKDEV_GETSIZE => decode(procedure, args).and_then(|a| getsize(paths, runner, &a)),
        _ => return None,
    };
    Some(result)
}

/// The error message for `disk`: what failed, on which disk, with causes.
fn fail(disk: &DiskSpec, what: &str, e: &StorageError) -> String {
    format!("{what} disk {}: {}", storage::disk_label(disk), chain(e))
}

fn with_device<T>(
    paths: &Paths,
    runner: &dyn Runner,
    disk: &DiskSpec,
    f: impl FnOnce(&dyn storage::BlockDevice) -> Result<T, StorageError>,
) -> Result<T, String> {
    let dev = storage::for_disk(disk, paths, runner).map_err(|e| chain(&e))?;
    f(dev.as_ref()).map_err(|e| fail(disk, "on", &e))
}

pub(super) fn assembled(disk: &DiskSpec, access: Access) -> AssembledDisk {
    let uri = access.uris.iter().find_map(|u| {
        u.get(..4)
            .filter(|p| p.eq_ignore_ascii_case("kvm:"))
            .map(|_| u[4..].to_string())
    });
    AssembledDisk {
        uuid: disk.uuid.clone(),
        path: access.path,
        uri,
    }
}

fn create(paths: &Paths, runner: &dyn Runner, a: &BlockdevArgs) -> Result<Value, String> {
    let dev = storage::for_disk(&a.disk, paths, runner).map_err(|e| chain(&e))?;
    dev.create(a.disk.size_mib)
        .map_err(|e| fail(&a.disk, "creating", &e))?;
    dev.set_info(&format!("{OWNER_INFO_PREFIX}{}", a.instance_name))
        .map_err(|e| fail(&a.disk, "recording the owner of", &e))?;
    let access = dev
        .assemble()
        .map_err(|e| fail(&a.disk, "assembling new", &e))?;
    if a.on_primary {
        dev.open().map_err(|e| fail(&a.disk, "opening", &e))?;
    }
    to_value(&assembled(&a.disk, access))
}

fn assemble(paths: &Paths, runner: &dyn Runner, a: &BlockdevArgs) -> Result<Value, String> {
    let dev = storage::for_disk(&a.disk, paths, runner).map_err(|e| chain(&e))?;
    let access = dev
        .assemble()
        .map_err(|e| fail(&a.disk, "assembling", &e))?;
    if a.on_primary {
        dev.open().map_err(|e| fail(&a.disk, "opening", &e))?;
    }
    to_value(&assembled(&a.disk, access))
}

fn grow(paths: &Paths, runner: &dyn Runner, a: &BlockdevGrowArgs) -> Result<Value, String> {
    let mode = if a.dry_run {
        GrowMode::DryRun
    } else {
        GrowMode::Apply
    };
    let layer = if a.backing_only {
        GrowLayer::BackingStore
    } else {
        GrowLayer::Device
    };
    let dev = storage::for_disk(&a.disk, paths, runner).map_err(|e| chain(&e))?;
    dev.grow(a.disk.size_mib, a.amount_mib, mode, layer)
        .map_err(|e| fail(&a.disk, "growing", &e))?;
    Ok(Value::Null)
}

fn status(paths: &Paths, runner: &dyn Runner, a: &BlockdevsArgs) -> Result<Value, String> {
    let mut out = Vec::with_capacity(a.disks.len());
    for disk in &a.disks {
        let dev = storage::for_disk(disk, paths, runner).map_err(|e| chain(&e))?;
        let st = match dev.status() {
            Ok(s) => DiskStatus {
                uuid: disk.uuid.clone(),
                present: true,
                path: s.path,
                sync_percent: s.sync_percent,
                estimated_time_secs: s.estimated_time_secs,
                is_degraded: s.is_degraded,
                ldisk_status: s.ldisk.as_str().to_string(),
            },
            Err(StorageError::Missing { .. }) => DiskStatus {
                uuid: disk.uuid.clone(),
                present: false,
                path: None,
                sync_percent: None,
                estimated_time_secs: None,
                is_degraded: true,
                ldisk_status: storage::LocalDiskStatus::Unknown.as_str().to_string(),
            },
            Err(e) => return Err(fail(disk, "reading the status of", &e)),
        };
        out.push(st);
    }
    to_value(&out)
}

fn getsize(paths: &Paths, runner: &dyn Runner, a: &BlockdevsArgs) -> Result<Value, String> {
    let mut out: Vec<Option<u64>> = Vec::with_capacity(a.disks.len());
    for disk in &a.disks {
        let dev = storage::for_disk(disk, paths, runner).map_err(|e| chain(&e))?;
        // Like Ganeti's BlockdevGetdimensions: a disk that cannot be
        // found or measured is null, not a failed call.
        out.push(dev.size_bytes().ok().map(|b| b / MIB));
    }
    to_value(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    fn node(tag: &str) -> Paths {
        let p = crate::paths::test_support::temp_node(
            &format!("backend-blockdev-{tag}"),
            "node1",
            &["/etc/ganeti"],
        );
        let dir = p.under_root("/srv/ganeti/file-storage");
        crate::sys::fs::atomic_write(
            &p.file_storage_paths_file(),
            format!("{}\n", dir.display()).as_bytes(),
            0o644,
        )
        .unwrap();
        p
    }

    fn file_disk(p: &Paths, n: u32, size_mib: u64) -> DiskSpec {
        DiskSpec {
            uuid: format!("uuid-{n}"),
            name: None,
            iv_name: format!("disk/{n}"),
            dev_type: "file".into(),
            logical_id: json!([
                "loop",
                p.under_root(&format!("/srv/ganeti/file-storage/inst1/disk{n}"))
                    .display()
                    .to_string()
            ]),
            size_mib,
            mode: "rw".into(),
            params: Default::default(),
            children: vec![],
        }
    }

    fn args(disk: &DiskSpec) -> Value {
        serde_json::to_value(BlockdevArgs {
            disk: disk.clone(),
            instance_name: "inst1".into(),
            on_primary: true,
            exclusive_storage: false,
        })
        .unwrap()
    }

    fn call(p: &Paths, proc_: &str, a: Value) -> Result<Value, String> {
        handle_with(p, &RecordingRunner::new(), proc_, a).expect("one of ours")
    }

    #[test]
    fn file_disk_lifecycle_through_handle() {
        let p = node("life");
        let d0 = file_disk(&p, 0, 4);
        let d1 = file_disk(&p, 1, 2);
        let img0 = p.under_root("/srv/ganeti/file-storage/inst1/disk0");

        let made: AssembledDisk =
            serde_json::from_value(call(&p, BLOCKDEV_CREATE, args(&d0)).unwrap()).unwrap();
        assert_eq!(made.uuid, "uuid-0");
        assert_eq!(made.path, img0.display().to_string());
        assert_eq!(made.uri, None);
        let again = call(&p, BLOCKDEV_CREATE, args(&d0)).unwrap_err();
        assert!(
            again.contains("creating disk disk/0") && again.contains("already exists"),
            "{again}"
        );

        let asm: AssembledDisk =
            serde_json::from_value(call(&p, BLOCKDEV_ASSEMBLE, args(&d0)).unwrap()).unwrap();
        assert_eq!(asm, made);

        let both = serde_json::to_value(BlockdevsArgs {
            disks: vec![d0.clone(), d1.clone()],
        })
        .unwrap();
        let st: Vec<DiskStatus> =
            serde_json::from_value(call(&p, BLOCKDEV_STATUS, both.clone()).unwrap()).unwrap();
        assert_eq!(st.len(), 2);
        assert!(st[0].present && !st[0].is_degraded && st[0].ldisk_status == "ok");
        assert_eq!(st[0].path.as_deref(), Some(made.path.as_str()));
        assert!(!st[1].present && st[1].path.is_none());
        let sizes: Vec<Option<u64>> =
            serde_json::from_value(call(&p, BLOCKDEV_GETSIZE, both.clone()).unwrap()).unwrap();
        assert_eq!(sizes, vec![Some(4), None]);

        let grow = |dry_run: bool, backing_only: bool| {
            serde_json::to_value(BlockdevGrowArgs {
                disk: d0.clone(),
                amount_mib: 3,
                dry_run,
                backing_only,
            })
            .unwrap()
        };
        assert_eq!(
            call(&p, BLOCKDEV_GROW, grow(true, true)).unwrap(),
            Value::Null
        );
        assert_eq!(std::fs::metadata(&img0).unwrap().len(), 4 * MIB);
        call(&p, BLOCKDEV_GROW, grow(false, true)).unwrap();
        call(&p, BLOCKDEV_GROW, grow(false, false)).unwrap();
        assert_eq!(std::fs::metadata(&img0).unwrap().len(), 7 * MIB);
        let sizes: Vec<Option<u64>> =
            serde_json::from_value(call(&p, BLOCKDEV_GETSIZE, both).unwrap()).unwrap();
        assert_eq!(sizes, vec![Some(7), None]);

        assert_eq!(call(&p, BLOCKDEV_SHUTDOWN, args(&d0)).unwrap(), Value::Null);
        assert_eq!(call(&p, BLOCKDEV_REMOVE, args(&d0)).unwrap(), Value::Null);
        assert!(!img0.exists());
        call(&p, BLOCKDEV_REMOVE, args(&d0)).unwrap();
        let err = call(&p, BLOCKDEV_ASSEMBLE, args(&d0)).unwrap_err();
        assert!(
            err.contains("assembling disk disk/0") && err.contains("does not exist"),
            "{err}"
        );
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let p = node("bad");
        assert!(handle_with(&p, &RecordingRunner::new(), "instance_start", json!({})).is_none());
        let err = call(&p, BLOCKDEV_CREATE, json!({"disk": 1})).unwrap_err();
        assert!(
            err.contains("invalid arguments for blockdev_create"),
            "{err}"
        );
        let mut d = file_disk(&p, 0, 1);
        d.logical_id = json!(["loop", "/srv/elsewhere/disk0"]);
        let err = call(&p, BLOCKDEV_CREATE, args(&d)).unwrap_err();
        assert!(err.contains("not acceptable for file storage"), "{err}");
        d.dev_type = "diskless".into();
        let err = call(&p, BLOCKDEV_STATUS, json!({"disks": [d]})).unwrap_err();
        assert!(err.contains("not supported"), "{err}");
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn plain_disks_are_created_tagged_and_activated() {
        let p = node("plain");
        let r = RecordingRunner::new();
        let d = DiskSpec {
            dev_type: "plain".into(),
            logical_id: json!(["xenvg", "u.disk0"]),
            ..file_disk(&p, 0, 1024)
        };
        let listed = "  U;u.disk0;-wi-a-;-1;-1;253;0;1073741824B;1;;;V;xenvg;linear;0B;0;1073741824B;;/dev/sda5:0-255;/dev/sda5(0)\n";
        // lvs (absent), lvcreate, lvs, addtag, lvs, lvchange -ay.
        for a in ["", "", listed, "", listed, ""] {
            r.push_answer(Ok(a));
        }
        let out = handle_with(&p, &r, BLOCKDEV_CREATE, args(&d))
            .unwrap()
            .unwrap();
        let made: AssembledDisk = serde_json::from_value(out).unwrap();
        assert_eq!(made.path, "/dev/xenvg/u.disk0");
        let argv: Vec<String> = r.calls().iter().map(|c| c.display()).collect();
        assert_eq!(argv[1], "lvcreate -Wn -L1024m -nu.disk0 -i1 xenvg");
        assert_eq!(
            argv[3],
            "lvchange --addtag originstname+inst1 /dev/xenvg/u.disk0"
        );
        assert_eq!(argv[5], "lvchange -ay /dev/xenvg/u.disk0");
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn userspace_uris_are_picked_for_kvm() {
        let d = DiskSpec {
            uuid: "u".into(),
            name: None,
            iv_name: "disk/0".into(),
            dev_type: "ext".into(),
            logical_id: json!(["p", "v"]),
            size_mib: 1,
            mode: "rw".into(),
            params: Default::default(),
            children: vec![],
        };
        let a = assembled(
            &d,
            Access {
                path: String::new(),
                uris: vec!["xen:foo".into(), "KVM:rbd:pool/vol".into()],
            },
        );
        assert_eq!(a.uri.as_deref(), Some("rbd:pool/vol"));
    }
}
