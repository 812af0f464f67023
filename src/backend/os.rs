//! Node side of the OS procedures (`os_diagnose`, `os_validate`,
//! `instance_os_add`, `instance_os_rename`, `instance_os_export`,
//! `instance_os_import`): decodes the `rpc::proto` arguments, calls
//! [`crate::os`], and answers in the `rpc::proto` types. The OS scripts
//! run through a [`Runner`]; noded uses the real one.
//!
//! Export and import (`gnt-backup` through the OS definition, Ganeti's
//! `IEIO_SCRIPT`) work on one disk at a time and a staging file in the
//! export directory: `export` writes its stdout into
//! `<export dir>/<stage>/<file>` (which the target node then pulls with
//! `transfer_pull`), `import` reads that file, pulled here before, on its
//! stdin. A failed export leaves no staging file; an import always removes
//! the file it read.

use super::export;
use super::{decode, to_value};
use crate::os::{self, DiskIo, LogName, Script, ScriptIo};
use crate::paths::Paths;
use crate::rpc::proto::{
    self, AssembledDisk, InstanceOsArgs, InstanceOsDumpArgs, InstanceSpec, OsValidateArgs,
    TransferDone,
};
use crate::sys::cmd::{RealRunner, Runner};
use serde_json::Value;

/// Runs `procedure` if it is one of this module's; `None` otherwise.
/// Errors are the message for the RPC error reply.
pub fn handle(paths: &Paths, procedure: &str, args: Value) -> Option<Result<Value, String>> {
    handle_with(&RealRunner, paths, procedure, args)
}

/// [`handle`] with the runner for the OS scripts given.
pub fn handle_with(
    runner: &dyn Runner,
    paths: &Paths,
    procedure: &str,
    args: Value,
) -> Option<Result<Value, String>> {
    let result = match procedure {
        proto::OS_DIAGNOSE => to_value(&os::diagnose(paths)),
        proto::OS_VALIDATE => decode::<OsValidateArgs>(procedure, args).and_then(|a| {
            os::validate(runner, paths, a.required, &a.name, &a.checks, &a.osparams)
                .map(Value::Bool)
                .map_err(|e| crate::error::chain(&e))
        }),
        proto::INSTANCE_OS_ADD => {
            decode::<InstanceOsArgs>(procedure, args).and_then(|a| os_add(runner, paths, &a))
        }
        proto::INSTANCE_OS_RENAME => {
            decode::<InstanceOsArgs>(procedure, args).and_then(|a| os_rename(runner, paths, &a))
        }
        proto::INSTANCE_OS_EXPORT => decode::<InstanceOsDumpArgs>(procedure, args)
            .and_then(|a| os_dump(runner, paths, DiskIo::Export, &a))
            .and_then(|d| to_value(&d)),
        proto::INSTANCE_OS_IMPORT => decode::<InstanceOsDumpArgs>(procedure, args)
            .and_then(|a| os_dump(runner, paths, DiskIo::Import, &a))
            .and_then(|d| to_value(&d)),
        _ => return None,
    };
    Some(result)
}

/// `instance_os_add`: runs `create` (Ganeti's `InstanceOsAdd`), with
/// `INSTANCE_REINSTALL=1` on a reinstall.
fn os_add(runner: &dyn Runner, paths: &Paths, a: &InstanceOsArgs) -> Result<Value, String> {
    let inst = &a.instance;
    let run = || -> Result<(), os::OsError> {
        let def = os::find(paths, &inst.os)?;
        let mut env = os::instance_env(&def, inst, &a.disks, &paths.hostname(), a.debug)?;
        if a.reinstall {
            env.insert("INSTANCE_REINSTALL".into(), "1".into());
        }
        let script = if def.scripts.contains_key(&Script::Create) {
            Script::Create
        } else {
            Script::CreateUntrusted
        };
        let log = LogName {
            kind: "add",
            os: &inst.os,
            instance: &inst.name,
        };
        os::run_instance_script(runner, paths, &def, script, log, &env)?;
        Ok(())
    };
    run()
        .map(|()| Value::Null)
        .map_err(|e| format!("instance {}: {}", inst.name, crate::error::chain(&e)))
}

/// `instance_os_rename`: runs `rename` with `OLD_INSTANCE_NAME` (Ganeti's
/// `RunRenameInstance`); the instance carries the new name.
fn os_rename(runner: &dyn Runner, paths: &Paths, a: &InstanceOsArgs) -> Result<Value, String> {
    let inst = &a.instance;
    let Some(old) = a.old_name.as_deref().filter(|o| !o.is_empty()) else {
        return Err(format!(
            "{}: old_name is required to rename instance {}",
            proto::INSTANCE_OS_RENAME,
            inst.name
        ));
    };
    let run = || -> Result<(), os::OsError> {
        let def = os::find(paths, &inst.os)?;
        let mut env = os::instance_env(&def, inst, &a.disks, &paths.hostname(), a.debug)?;
        env.insert("OLD_INSTANCE_NAME".into(), old.to_string());
        let both = format!("{old}-{}", inst.name);
        let log = LogName {
            kind: "rename",
            os: &inst.os,
            instance: &both,
        };
        os::run_instance_script(runner, paths, &def, Script::Rename, log, &env)?;
        Ok(())
    };
    run()
        .map(|()| Value::Null)
        .map_err(|e| format!("instance {}: {}", inst.name, crate::error::chain(&e)))
}

/// Assembles every disk of `inst` on this node, for the scripts'
/// `DISK_<n>_*` variables (the master has not assembled them for us).
fn assemble_all(
    runner: &dyn Runner,
    paths: &Paths,
    inst: &InstanceSpec,
) -> Result<Vec<AssembledDisk>, String> {
    inst.disks
        .iter()
        .map(|d| {
            let dev =
                crate::storage::for_disk(d, paths, runner).map_err(|e| crate::error::chain(&e))?;
            let access = dev.assemble().map_err(|e| {
                format!(
                    "assembling disk {}: {}",
                    crate::storage::disk_label(d),
                    crate::error::chain(&e)
                )
            })?;
            Ok(super::blockdev::assembled(d, access))
        })
        .collect()
}

/// `instance_os_export` / `instance_os_import`: runs the OS `export`
/// script with stdout into the staging file, or `import` with stdin from
/// it, for disk `a.disk_index` (Ganeti's `_GetImportExportIoCommand` with
/// `IEIO_SCRIPT`). Answers the dump's size and SHA-1.
fn os_dump(
    runner: &dyn Runner,
    paths: &Paths,
    io: DiskIo,
    a: &InstanceOsDumpArgs,
) -> Result<TransferDone, String> {
    let inst = &a.instance;
    export::check_name("export", &a.stage)?;
    export::check_name("export file", &a.file)?;
    if a.disk_index >= inst.disks.len() {
        return Err(format!(
            "instance {} has no disk {} (it has {})",
            inst.name,
            a.disk_index,
            inst.disks.len()
        ));
    }
    let dir = paths.export_dir().join(&a.stage);
    let dump = dir.join(&a.file);
    let result = (|| {
        let def = os::find(paths, &inst.os).map_err(|e| crate::error::chain(&e))?;
        let disks = assemble_all(runner, paths, inst)?;
        let mut env = os::instance_env(&def, inst, &disks, &paths.hostname(), a.debug)
            .map_err(|e| crate::error::chain(&e))?;
        os::add_disk_io_env(&mut env, io, a.disk_index);
        let script_io = match io {
            DiskIo::Export => {
                crate::sys::fs::ensure_dir(&dir, 0o750).map_err(|e| crate::error::chain(&e))?;
                // A stale dump of another run could keep a wider mode.
                remove_file(&dump)?;
                ScriptIo {
                    stdin: None,
                    stdout: Some(dump.clone()),
                }
            }
            DiskIo::Import => {
                if !dump.is_file() {
                    return Err(format!("the dump {} does not exist", dump.display()));
                }
                ScriptIo {
                    stdin: Some(dump.clone()),
                    stdout: None,
                }
            }
        };
        let what = match io {
            DiskIo::Export => "export",
            DiskIo::Import => "import",
        };
        let instance = format!("{}-{}", inst.name, a.disk_index);
        let log = LogName {
            kind: what,
            os: &inst.os,
            instance: &instance,
        };
        // The dump's digest is taken before import runs, so the master can
        // compare it with what was pulled.
        let read_before = match io {
            DiskIo::Import => Some(super::transfer::file_digest(&dump)?),
            DiskIo::Export => None,
        };
        os::run_instance_script_io(runner, paths, &def, io.script(), log, &env, &script_io)
            .map_err(|e| crate::error::chain(&e))?;
        match read_before {
            Some(done) => Ok(done),
            None => super::transfer::file_digest(&dump),
        }
    })();
    // Export keeps its dump only on success (the target pulls it next);
    // import never keeps what it read.
    if result.is_err() || io == DiskIo::Import {
        let _ = remove_file(&dump);
        let _ = std::fs::remove_dir(&dir);
    }
    result.map_err(|e| format!("instance {} disk {}: {e}", inst.name, a.disk_index))
}

fn remove_file(path: &std::path::Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::proto::{DiskSpec, OsInfo};
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    fn node(tag: &str) -> Paths {
        crate::paths::test_support::temp_node(&format!("bos-{tag}"), "node1", &[])
    }

    fn cleanup(p: &Paths) {
        crate::paths::test_support::remove_temp_node(p);
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        crate::sys::fs::atomic_write(path, text.as_bytes(), mode).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// An API 20 OS `rec` whose scripts record their environment (and, for
    /// verify, their arguments) into `<root>/<script>.env`; verify refuses
    /// `size=bad`.
    fn recording_os(p: &Paths) -> PathBuf {
        let d = p.under_root("/srv/ganeti/os/rec");
        let out = p.root().display().to_string();
        write(&d.join("ganeti_api_version"), "20\n", 0o644);
        write(&d.join("variants.list"), "small\nbig\n", 0o644);
        write(
            &d.join("parameters.list"),
            "size disk size\nfs file system\n",
            0o644,
        );
        for s in ["create", "export", "import", "rename"] {
            let body = format!("#!/bin/sh\nenv | sort > {out}/{s}.env\npwd > {out}/{s}.pwd\n");
            write(&d.join(s), &body, 0o755);
        }
        let verify = format!(
            "#!/bin/sh\necho \"$@\" > {out}/verify.args\nenv | sort > {out}/verify.env\n\
             if [ \"$OSP_SIZE\" = bad ]; then echo \"size 'bad' is not a size\" >&2; exit 1; fi\n"
        );
        write(&d.join("verify"), &verify, 0o755);
        d
    }

    fn env_of(p: &Paths, script: &str) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(p.root().join(format!("{script}.env"))).unwrap();
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn instance(os: &str, disk_path: &Path) -> (InstanceSpec, Vec<AssembledDisk>) {
        let spec = InstanceSpec {
            name: "inst1".into(),
            uuid: "u1".into(),
            hypervisor: "fake".into(),
            hvparams: Default::default(),
            beparams: [("vcpus".to_string(), json!(2))].into(),
            os: os.into(),
            osparams: [("size".to_string(), "10".to_string())].into(),
            osparams_private: Default::default(),
            nics: vec![],
            disks: vec![DiskSpec {
                uuid: "d0".into(),
                name: None,
                iv_name: "disk/0".into(),
                dev_type: "blockdev".into(),
                logical_id: json!(["manual", "/dev/loop0"]),
                size_mib: 16,
                mode: "rw".into(),
                params: Default::default(),
                children: vec![],
            }],
            network_port: None,
        };
        let disks = vec![AssembledDisk {
            uuid: "d0".into(),
            path: disk_path.display().to_string(),
            uri: None,
        }];
        (spec, disks)
    }

    fn call(p: &Paths, procedure: &str, args: Value) -> Result<Value, String> {
        handle(p, procedure, args).expect("an OS procedure")
    }

    #[test]
    fn other_procedures_are_not_ours() {
        let p = node("other");
        assert!(handle(&p, proto::INSTANCE_START, json!({})).is_none());
        cleanup(&p);
    }

    #[test]
    fn diagnose_lists_definitions() {
        let p = node("diag");
        let d = recording_os(&p);
        let v = call(&p, proto::OS_DIAGNOSE, json!([])).unwrap();
        let list: Vec<OsInfo> = serde_json::from_value(v).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "rec");
        assert_eq!(list[0].path, d.display().to_string());
        assert!(list[0].valid, "{}", list[0].diagnose);
        assert_eq!(list[0].variants, vec!["small", "big"]);
        assert_eq!(list[0].api_versions, vec![20]);
        cleanup(&p);
    }

    fn validate_args(name: &str, params: &[(&str, &str)]) -> Value {
        json!({
            "required": true,
            "name": name,
            "checks": ["parameters"],
            "osparams": params.iter().map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        })
    }

    #[test]
    fn validate_runs_verify_and_refuses_by_name() {
        let p = node("validate");
        recording_os(&p);
        let ok = call(
            &p,
            proto::OS_VALIDATE,
            validate_args("rec+big", &[("size", "1")]),
        );
        assert_eq!(ok, Ok(Value::Bool(true)));
        let args = std::fs::read_to_string(p.root().join("verify.args")).unwrap();
        assert_eq!(args.trim(), "parameters");
        let env = env_of(&p, "verify");
        assert_eq!(env["OSP_SIZE"], "1");
        assert_eq!(env["OS_VARIANT"], "big");

        let e = call(&p, proto::OS_VALIDATE, validate_args("rec+huge", &[])).unwrap_err();
        assert!(e.contains("'huge'") && e.contains("small, big"), "{e}");
        let e = call(
            &p,
            proto::OS_VALIDATE,
            validate_args("rec+big", &[("colour", "x")]),
        )
        .unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = call(
            &p,
            proto::OS_VALIDATE,
            validate_args("rec+big", &[("size", "bad")]),
        )
        .unwrap_err();
        assert!(e.contains("size 'bad' is not a size"), "{e}");
        let e = call(&p, proto::OS_VALIDATE, validate_args("nosuch", &[])).unwrap_err();
        assert!(e.contains("nosuch"), "{e}");
        // Not required: absence is an answer, not an error.
        let mut a = validate_args("nosuch", &[]);
        a["required"] = json!(false);
        assert_eq!(call(&p, proto::OS_VALIDATE, a), Ok(Value::Bool(false)));
        cleanup(&p);
    }

    #[test]
    fn os_add_and_rename_run_scripts_with_ganeti_env() {
        let p = node("add");
        let d = recording_os(&p);
        let disk = p.root().join("disk0.img");
        let (spec, disks) = instance("rec+small", &disk);
        let args = json!({
            "instance": spec, "disks": disks, "reinstall": false, "old_name": null, "debug": 1,
        });
        assert_eq!(
            call(&p, proto::INSTANCE_OS_ADD, args.clone()),
            Ok(Value::Null)
        );
        let env = env_of(&p, "create");
        assert_eq!(env["INSTANCE_NAME"], "inst1");
        assert_eq!(env["OS_VARIANT"], "small");
        assert_eq!(env["OSP_SIZE"], "10");
        assert_eq!(env["DISK_0_PATH"], disk.display().to_string());
        assert_eq!(env["DISK_0_BACKEND_TYPE"], "block");
        assert_eq!(env["INSTANCE_BE_vcpus"], "2");
        assert_eq!(env["DEBUG_LEVEL"], "1");
        assert!(!env.contains_key("INSTANCE_REINSTALL"));
        // The environment is clean: nothing of ours leaks in.
        assert!(!env.contains_key("CARGO_PKG_NAME"));
        let pwd = std::fs::read_to_string(p.root().join("create.pwd")).unwrap();
        assert_eq!(pwd.trim(), d.display().to_string());
        let logs: Vec<_> = std::fs::read_dir(p.log_dir().join("os")).unwrap().collect();
        assert_eq!(logs.len(), 1);

        let mut re = args.clone();
        re["reinstall"] = json!(true);
        call(&p, proto::INSTANCE_OS_ADD, re).unwrap();
        assert_eq!(env_of(&p, "create")["INSTANCE_REINSTALL"], "1");

        let mut rn = args;
        rn["old_name"] = json!("inst0");
        call(&p, proto::INSTANCE_OS_RENAME, rn.clone()).unwrap();
        let env = env_of(&p, "rename");
        assert_eq!(env["OLD_INSTANCE_NAME"], "inst0");
        assert_eq!(env["INSTANCE_NAME"], "inst1");
        rn["old_name"] = Value::Null;
        let e = call(&p, proto::INSTANCE_OS_RENAME, rn).unwrap_err();
        assert!(e.contains("old_name"), "{e}");
        cleanup(&p);
    }

    #[test]
    fn failing_create_shows_the_log_tail() {
        let p = node("fail");
        let d = recording_os(&p);
        let body = "#!/bin/sh\ni=1\nwhile [ $i -le 30 ]; do echo \"step $i\"; i=$((i+1)); done\n\
                    echo 'mkfs: no space left' >&2\nexit 3\n";
        write(&d.join("create"), body, 0o755);
        let (spec, disks) = instance("rec+small", &p.root().join("d"));
        let args = json!({
            "instance": spec, "disks": disks, "reinstall": false, "old_name": null, "debug": 0,
        });
        let e = call(&p, proto::INSTANCE_OS_ADD, args).unwrap_err();
        assert!(e.contains("inst1"), "{e}");
        assert!(e.contains("exit code 3"), "{e}");
        assert!(e.contains("mkfs: no space left"), "{e}");
        assert!(e.contains("step 30") && !e.contains("step 5\n"), "{e}");
        // The whole output stays in the log.
        let log = std::fs::read_dir(p.log_dir().join("os"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert!(std::fs::read_to_string(log).unwrap().contains("step 1\n"));
        // Unknown OS and bad arguments are errors naming them.
        let (spec, disks) = instance("ghost", &p.root().join("d"));
        let args = json!({
            "instance": spec, "disks": disks, "reinstall": false, "old_name": null, "debug": 0,
        });
        let e = call(&p, proto::INSTANCE_OS_ADD, args).unwrap_err();
        assert!(e.contains("ghost"), "{e}");
        let e = call(&p, proto::INSTANCE_OS_ADD, json!({"x": 1})).unwrap_err();
        assert!(e.contains("instance_os_add"), "{e}");
        cleanup(&p);
    }

    /// A node with file storage allowed under `/srv/ganeti/file-storage`,
    /// and instance `inst1` of OS `dump` with two `file` disks holding
    /// `disk0`/`disk1` contents. The `dump` OS's export writes `HDR\n`
    /// and the disk; its import checks and strips that header. Both record
    /// their environment.
    fn dump_node(tag: &str) -> (Paths, InstanceSpec, [PathBuf; 2]) {
        let p = crate::paths::test_support::temp_node(
            &format!("bos-{tag}"),
            "node1",
            &["/etc/ganeti", "/srv/ganeti/file-storage"],
        );
        let store = p.under_root("/srv/ganeti/file-storage");
        write(
            &p.file_storage_paths_file(),
            &format!("{}\n", store.display()),
            0o644,
        );
        let d = p.under_root("/srv/ganeti/os/dump");
        let out = p.root().display().to_string();
        write(&d.join("ganeti_api_version"), "20\n", 0o644);
        write(&d.join("parameters.list"), "", 0o644);
        for s in ["create", "rename", "verify"] {
            write(&d.join(s), "#!/bin/sh\nexit 0\n", 0o755);
        }
        let export = format!(
            "#!/bin/sh\nenv | sort > {out}/export.env\necho 'reading disk' >&2\n\
             printf 'HDR\\n'\nexec cat \"$EXPORT_DEVICE\"\n"
        );
        write(&d.join("export"), &export, 0o755);
        let import = format!(
            "#!/bin/sh\nenv | sort > {out}/import.env\n\
             [ \"$(head -c 4)\" = HDR ] || {{ echo 'not a dump' >&2; exit 4; }}\n\
             exec dd of=\"$IMPORT_DEVICE\" conv=notrunc status=none\n"
        );
        write(&d.join("import"), &import, 0o755);
        let (mut spec, _) = instance("dump", Path::new("/unused"));
        let mut files = Vec::new();
        spec.disks = (0..2)
            .map(|i| {
                let file = store.join(format!("inst1/disk{i}"));
                write(&file, &format!("disk{i} contents\n"), 0o600);
                files.push(file.clone());
                DiskSpec {
                    uuid: format!("d{i}"),
                    name: None,
                    iv_name: format!("disk/{i}"),
                    dev_type: "file".into(),
                    logical_id: json!(["loop", file.display().to_string()]),
                    size_mib: 1,
                    mode: "rw".into(),
                    params: Default::default(),
                    children: vec![],
                }
            })
            .collect();
        spec.osparams.clear();
        let files: [PathBuf; 2] = files.try_into().unwrap();
        (p, spec, files)
    }

    fn dump_args(spec: &InstanceSpec, index: usize, stage: &str) -> Value {
        json!({
            "instance": spec, "disk_index": index, "stage": stage, "file": "disk.dump",
        })
    }

    #[test]
    fn export_and_import_scripts_move_one_disk_through_a_staging_file() {
        use std::os::unix::fs::PermissionsExt;
        let (p, spec, files) = dump_node("dump");
        let done: TransferDone = serde_json::from_value(
            call(
                &p,
                proto::INSTANCE_OS_EXPORT,
                dump_args(&spec, 1, "inst1.stage"),
            )
            .unwrap(),
        )
        .unwrap();
        let dump = p.export_dir().join("inst1.stage/disk.dump");
        let bytes = std::fs::read(&dump).unwrap();
        assert_eq!(bytes, b"HDR\ndisk1 contents\n");
        assert_eq!(done.bytes, bytes.len() as u64);
        assert_eq!(done.sha1, crate::backend::sha1_hex(&bytes));
        let mode = std::fs::metadata(&dump).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let env = env_of(&p, "export");
        assert_eq!(env["EXPORT_DEVICE"], files[1].display().to_string());
        assert_eq!(env["EXPORT_DISK_PATH"], files[1].display().to_string());
        assert_eq!(env["EXPORT_INDEX"], "1");
        assert_eq!(env["DISK_COUNT"], "2");
        assert_eq!(env["DISK_0_PATH"], files[0].display().to_string());
        assert_eq!(env["INSTANCE_NAME"], "inst1");
        // stdout is the dump; the log keeps stderr.
        let log = std::fs::read_dir(p.log_dir().join("os"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(log
            .file_name()
            .to_str()
            .unwrap()
            .starts_with("export-dump-inst1-1-"));
        assert_eq!(
            std::fs::read_to_string(log.path()).unwrap(),
            "reading disk\n"
        );

        // Import that dump into disk 0; the staging file is consumed.
        let read: TransferDone = serde_json::from_value(
            call(
                &p,
                proto::INSTANCE_OS_IMPORT,
                dump_args(&spec, 0, "inst1.stage"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(read, done);
        assert_eq!(std::fs::read(&files[0]).unwrap(), b"disk1 contents\n");
        assert!(!dump.exists() && !p.export_dir().join("inst1.stage").exists());
        let env = env_of(&p, "import");
        assert_eq!(env["IMPORT_DEVICE"], files[0].display().to_string());
        assert_eq!(env["IMPORT_INDEX"], "0");
        assert!(!env.contains_key("EXPORT_DEVICE"));

        // Nothing to import: the error names the missing dump.
        let e = call(
            &p,
            proto::INSTANCE_OS_IMPORT,
            dump_args(&spec, 0, "inst1.stage"),
        )
        .unwrap_err();
        assert!(e.contains("disk.dump does not exist"), "{e}");
        cleanup(&p);
    }

    #[test]
    fn failed_dump_scripts_leave_no_staging_file_and_show_the_log() {
        let (p, spec, files) = dump_node("dumpfail");
        let d = p.under_root("/srv/ganeti/os/dump");
        write(
            &d.join("export"),
            "#!/bin/sh\nprintf partial\necho 'read error on disk' >&2\nexit 5\n",
            0o755,
        );
        let e = call(
            &p,
            proto::INSTANCE_OS_EXPORT,
            dump_args(&spec, 0, "inst1.stage"),
        )
        .unwrap_err();
        assert!(e.contains("inst1 disk 0"), "{e}");
        assert!(
            e.contains("exit code 5") && e.contains("read error on disk"),
            "{e}"
        );
        assert!(!p.export_dir().join("inst1.stage").exists());

        // A dump the import script refuses is removed too; the disk is
        // untouched.
        let stage = p.export_dir().join("inst1.stage");
        crate::sys::fs::ensure_dir(&stage, 0o750).unwrap();
        crate::sys::fs::atomic_write(&stage.join("disk.dump"), b"junk", 0o600).unwrap();
        let e = call(
            &p,
            proto::INSTANCE_OS_IMPORT,
            dump_args(&spec, 1, "inst1.stage"),
        )
        .unwrap_err();
        assert!(e.contains("exit code 4") && e.contains("not a dump"), "{e}");
        assert!(!stage.join("disk.dump").exists());
        assert_eq!(std::fs::read(&files[1]).unwrap(), b"disk1 contents\n");

        // Refused before anything runs: names, indexes, arguments.
        for stage in ["..", "a/b", ".x", ""] {
            let e = call(&p, proto::INSTANCE_OS_EXPORT, dump_args(&spec, 0, stage)).unwrap_err();
            assert!(e.contains("invalid export name"), "{stage}: {e}");
        }
        let e = call(
            &p,
            proto::INSTANCE_OS_EXPORT,
            dump_args(&spec, 2, "inst1.stage"),
        )
        .unwrap_err();
        assert!(e.contains("has no disk 2"), "{e}");
        let e = call(&p, proto::INSTANCE_OS_IMPORT, json!({"x": 1})).unwrap_err();
        assert!(e.contains("instance_os_import"), "{e}");
        assert!(!p.root().join("export.env").exists(), "no script ran");
        cleanup(&p);
    }

    /// Links an OS directory from outside into the node's search path.
    fn link_os(p: &Paths, name: &str, target: &Path) {
        let dir = p.under_root("/srv/ganeti/os");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    }

    fn os_add_args(os: &str, disk: &Path, osparams: &[(&str, &str)]) -> Value {
        let (mut spec, disks) = instance(os, disk);
        spec.osparams = osparams
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        json!({
            "instance": spec, "disks": disks, "reinstall": false, "old_name": null, "debug": 0,
        })
    }

    #[test]
    fn image_test_os_writes_a_file_system() {
        let p = node("image");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/os/image");
        link_os(&p, "image", &src);
        let list: Vec<OsInfo> =
            serde_json::from_value(call(&p, proto::OS_DIAGNOSE, Value::Null).unwrap()).unwrap();
        assert!(list[0].valid, "{}", list[0].diagnose);
        assert_eq!(list[0].variants, vec!["default"]);
        assert_eq!(list[0].parameters[0].0, "size");
        let e = call(
            &p,
            proto::OS_VALIDATE,
            validate_args("image+default", &[("size", "x")]),
        )
        .unwrap_err();
        assert!(
            e.contains("invalid value 'x' for the size parameter"),
            "{e}"
        );

        let disk = p.root().join("disk0.img");
        crate::sys::fs::atomic_write(&disk, b"", 0o600).unwrap();
        let args = os_add_args("image+default", &disk, &[("size", "8")]);
        call(&p, proto::INSTANCE_OS_ADD, args).unwrap();
        let image = std::fs::read(&disk).unwrap();
        if image.starts_with(b"GANETI-RS-TEST-IMAGE") {
            eprintln!("mkfs.ext4 absent: the image OS wrote its header only");
        } else {
            // ext2/3/4 superblock magic 0xEF53 at byte 1080, little-endian.
            assert_eq!(image.len(), 8 << 20);
            assert_eq!(&image[1080..1082], &[0x53, 0xEF]);
        }
        cleanup(&p);
    }

    #[test]
    fn debian_noop_os_exports_and_imports_raw_streams() {
        let noop = Path::new("/usr/share/ganeti/os/noop");
        if !noop.is_dir() {
            eprintln!("skipped: Debian's ganeti-os-noop is not installed ({noop:?} absent)");
            return;
        }
        let (p, mut spec, files) = dump_node("noopdump");
        link_os(&p, "noop", noop);
        spec.os = "noop".into();
        call(
            &p,
            proto::INSTANCE_OS_EXPORT,
            dump_args(&spec, 1, "inst1.stage"),
        )
        .unwrap();
        let dump = p.export_dir().join("inst1.stage/disk.dump");
        assert_eq!(std::fs::read(&dump).unwrap(), b"disk1 contents\n");
        call(
            &p,
            proto::INSTANCE_OS_IMPORT,
            dump_args(&spec, 0, "inst1.stage"),
        )
        .unwrap();
        assert_eq!(std::fs::read(&files[0]).unwrap(), b"disk1 contents\n");
        assert!(!dump.exists());
        cleanup(&p);
    }

    #[test]
    fn debian_noop_os_works() {
        let noop = Path::new("/usr/share/ganeti/os/noop");
        if !noop.is_dir() {
            eprintln!("skipped: Debian's ganeti-os-noop is not installed ({noop:?} absent)");
            return;
        }
        let p = node("noop");
        link_os(&p, "noop", noop);
        let list: Vec<OsInfo> =
            serde_json::from_value(call(&p, proto::OS_DIAGNOSE, Value::Null).unwrap()).unwrap();
        let info = list.iter().find(|o| o.name == "noop").unwrap();
        assert!(info.valid, "{}", info.diagnose);
        assert!(info.variants.is_empty());
        let ok = call(&p, proto::OS_VALIDATE, validate_args("noop", &[]));
        assert_eq!(ok, Ok(Value::Bool(true)));
        let args = os_add_args("noop", &p.root().join("d"), &[]);
        assert_eq!(call(&p, proto::INSTANCE_OS_ADD, args), Ok(Value::Null));
        cleanup(&p);
    }
}
