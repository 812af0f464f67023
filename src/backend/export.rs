//! Node side of the export procedures (`gnt-backup`): listing, reading,
//! finalizing and removing the exports in the node's export directory
//! ([`Paths::export_dir`], `/srv/ganeti/export`).
//!
//! An export is a directory named after the instance holding one dump
//! file per disk (named by the disk's UUID, as Ganeti does) and
//! `config.ini` (Ganeti's export format; the master builds its text). It
//! is filled under `<name>.new` by `transfer_pull` and renamed into place
//! by `export_finalize`, so a half-written export never shows under its
//! final name. Names are single path components; nothing outside the
//! export directory can be named. Never reads the cluster config.

use crate::paths::Paths;
use crate::rpc::proto::{
    ExportArgs, ExportFinalizeArgs, EXPORT_FINALIZE, EXPORT_INFO, EXPORT_LIST, EXPORT_REMOVE,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

/// Ganeti's `EXPORT_CONF_FILE`.
pub const EXPORT_CONF_FILE: &str = "config.ini";
/// Suffix of an export being written (Ganeti's `<name>.new`).
pub const NEW_SUFFIX: &str = ".new";
/// Suffix of the directory holding the dumps an OS `export` script wrote
/// and the target has yet to pull, or that an `import` script has yet to
/// read (`<instance>.stage`, ours).
pub const STAGE_SUFFIX: &str = crate::rpc::proto::EXPORT_STAGE_SUFFIX;
/// Largest `config.ini` read back (an export's config is a few KiB).
const CONF_MAX_BYTES: u64 = 1024 * 1024;

/// Runs `procedure` if it is one of the export procedures; `None` otherwise.
pub fn handle(paths: &Paths, procedure: &str, args: Value) -> Option<Result<Value, String>> {
    let result = match procedure {
        EXPORT_LIST => decode::<NoArgs>(procedure, args)
            .and_then(|_| list(paths))
            .map(Value::from),
        EXPORT_INFO => decode::<ExportArgs>(procedure, args)
            .and_then(|a| info(paths, &a.export))
            .map(Value::String),
        EXPORT_FINALIZE => decode::<ExportFinalizeArgs>(procedure, args)
            .and_then(|a| finalize(paths, &a.export, &a.config))
            .map(|()| Value::Null),
        EXPORT_REMOVE => decode::<ExportArgs>(procedure, args)
            .and_then(|a| remove(paths, &a.export))
            .map(Value::Bool),
        _ => return None,
    };
    Some(result)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// [`super::decode`], with `null` arguments taken as `{}`.
fn decode<T: DeserializeOwned>(procedure: &str, args: Value) -> Result<T, String> {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args
    };
    super::decode(procedure, args)
}

/// Checks that `name` is one plain path component: not empty, no `/`, no
/// NUL, not starting with a dot (which also refuses `.` and `..`).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.contains('/')
        || name.contains('\0')
        || name.len() > 255;
    if bad {
        return Err(format!(
            "invalid {what} name {name:?}: must be one path component not starting with '.'"
        ));
    }
    Ok(())
}

fn io_msg(what: &str, path: &Path, e: &std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// `export_list`: the finished exports (directories not ending in
/// `.new` or `.stage`), sorted; none when the export directory does not
/// exist.
pub fn list(paths: &Paths) -> Result<Vec<String>, String> {
    let dir = paths.export_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_msg("listing", &dir, &e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_msg("listing", &dir, &e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let unfinished = name.ends_with(NEW_SUFFIX) || name.ends_with(STAGE_SUFFIX);
        if is_dir && !name.starts_with('.') && !unfinished {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// `export_info`: the text of `<export>/config.ini`, refused unless it
/// has the `[export]` and `[instance]` sections (Ganeti's `ExportInfo`).
pub fn info(paths: &Paths, export: &str) -> Result<String, String> {
    check_name("export", export)?;
    let file = paths.export_dir().join(export).join(EXPORT_CONF_FILE);
    let f = std::fs::File::open(&file).map_err(|e| io_msg("reading", &file, &e))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(f, CONF_MAX_BYTES), &mut text)
        .map_err(|e| io_msg("reading", &file, &e))?;
    let has = |s: &str| text.lines().any(|l| l.trim() == format!("[{s}]"));
    if !has("export") || !has("instance") {
        return Err(format!(
            "Export info file {} doesn't have the required fields",
            file.display()
        ));
    }
    Ok(text)
}

/// `export_finalize`: writes `config.ini` into `<export>.new`, then
/// replaces `<export>` with it.
pub fn finalize(paths: &Paths, export: &str, config: &str) -> Result<(), String> {
    check_name("export", export)?;
    let base = paths.export_dir();
    let staging = base.join(format!("{export}{NEW_SUFFIX}"));
    if !staging.is_dir() {
        return Err(format!(
            "export {export}: {} does not exist (no disk was copied)",
            staging.display()
        ));
    }
    crate::sys::fs::atomic_write(&staging.join(EXPORT_CONF_FILE), config.as_bytes(), 0o600)
        .map_err(|e| crate::error::chain(&e))?;
    let fin = base.join(export);
    remove_tree(&fin)?;
    std::fs::rename(&staging, &fin).map_err(|e| io_msg("renaming", &staging, &e))?;
    crate::sys::fs::fsync_dir(&base).map_err(|e| crate::error::chain(&e))
}

fn remove_tree(dir: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_msg("stat", dir, &e)),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(dir)
            .map(|()| true)
            .map_err(|e| io_msg("removing", dir, &e)),
        Ok(_) => std::fs::remove_file(dir)
            .map(|()| true)
            .map_err(|e| io_msg("removing", dir, &e)),
    }
}

/// `export_remove`: removes `<export>` (also a `<name>.new` left by a
/// failed export); answers whether there was one.
pub fn remove(paths: &Paths, export: &str) -> Result<bool, String> {
    check_name("export", export)?;
    remove_tree(&paths.export_dir().join(export))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(tag: &str) -> Paths {
        crate::paths::test_support::temp_node(&format!("backend-export-{tag}"), "node1", &[])
    }

    fn call(p: &Paths, procedure: &str, args: Value) -> Result<Value, String> {
        handle(p, procedure, args).expect("an export procedure")
    }

    const CONF: &str = "[export]\nversion = 0\n\n[instance]\nname = inst1\n";

    #[test]
    fn exports_are_finalized_listed_read_and_removed() {
        let p = node("life");
        assert_eq!(call(&p, EXPORT_LIST, json!({})), Ok(json!([])));
        let e = call(
            &p,
            EXPORT_FINALIZE,
            json!({"export": "inst1", "config": CONF}),
        )
        .unwrap_err();
        assert!(e.contains("no disk was copied"), "{e}");

        let staging = p.export_dir().join("inst1.new");
        crate::sys::fs::ensure_dir(&staging, 0o750).unwrap();
        crate::sys::fs::atomic_write(&staging.join("d0"), b"dump", 0o600).unwrap();
        // A finished older export of the same name is replaced.
        crate::sys::fs::ensure_dir(&p.export_dir().join("inst1"), 0o750).unwrap();
        crate::sys::fs::atomic_write(&p.export_dir().join("inst1/old"), b"x", 0o600).unwrap();
        assert_eq!(call(&p, EXPORT_LIST, Value::Null), Ok(json!(["inst1"])));
        call(
            &p,
            EXPORT_FINALIZE,
            json!({"export": "inst1", "config": CONF}),
        )
        .unwrap();
        assert!(!staging.exists());
        assert!(!p.export_dir().join("inst1/old").exists());
        assert_eq!(
            std::fs::read(p.export_dir().join("inst1/d0")).unwrap(),
            b"dump"
        );
        assert_eq!(
            call(&p, EXPORT_INFO, json!({"export": "inst1"})),
            Ok(json!(CONF))
        );

        // Unfinished exports and staged dumps are not listed.
        crate::sys::fs::ensure_dir(&p.export_dir().join("inst2.new"), 0o750).unwrap();
        crate::sys::fs::ensure_dir(&p.export_dir().join("inst2.stage"), 0o750).unwrap();
        assert_eq!(call(&p, EXPORT_LIST, json!({})), Ok(json!(["inst1"])));
        assert_eq!(
            call(&p, EXPORT_REMOVE, json!({"export": "inst2.new"})),
            Ok(json!(true))
        );
        assert_eq!(
            call(&p, EXPORT_REMOVE, json!({"export": "inst2.stage"})),
            Ok(json!(true))
        );
        assert_eq!(
            call(&p, EXPORT_REMOVE, json!({"export": "inst1"})),
            Ok(json!(true))
        );
        assert_eq!(
            call(&p, EXPORT_REMOVE, json!({"export": "inst1"})),
            Ok(json!(false))
        );
        assert_eq!(call(&p, EXPORT_LIST, json!({})), Ok(json!([])));
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn bad_names_and_bad_configs_are_refused() {
        let p = node("bad");
        for name in ["..", ".", "", "a/b", "../x", ".hidden"] {
            let e = call(&p, EXPORT_REMOVE, json!({ "export": name })).unwrap_err();
            assert!(e.contains("invalid export name"), "{name}: {e}");
            let e = call(&p, EXPORT_INFO, json!({ "export": name })).unwrap_err();
            assert!(e.contains("invalid export name"), "{name}: {e}");
        }
        let dir = p.export_dir().join("junk");
        crate::sys::fs::ensure_dir(&dir, 0o750).unwrap();
        crate::sys::fs::atomic_write(&dir.join(EXPORT_CONF_FILE), b"[export]\n", 0o600).unwrap();
        let e = call(&p, EXPORT_INFO, json!({"export": "junk"})).unwrap_err();
        assert!(e.contains("doesn't have the required fields"), "{e}");
        let e = call(&p, EXPORT_INFO, json!({"export": "none"})).unwrap_err();
        assert!(e.contains("reading"), "{e}");
        let e = call(&p, EXPORT_LIST, json!({"x": 1})).unwrap_err();
        assert!(e.contains("invalid arguments for export_list"), "{e}");
        assert!(handle(&p, "instance_start", json!({})).is_none());
        crate::paths::test_support::remove_temp_node(&p);
    }
}
