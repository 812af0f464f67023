//! `ext` disks: volumes of an ExtStorage provider (Ganeti's
//! `storage/extstorage.py`; the ExtStorage interface design document).
//!
//! `logical_id` is `[provider, volume name]`. A provider is a directory
//! named after it in the first of the search path directories that has one
//! (under the node root): `/srv/ganeti/extstorage`,
//! `/usr/local/lib/ganeti/extstorage`, `/usr/lib/ganeti/extstorage`,
//! `/usr/share/ganeti/extstorage`. It must hold the executable scripts
//! `create`, `remove`, `grow`, `attach`, `detach`, `setinfo`, `verify` and
//! the file `parameters.list`; `snapshot`, `open` and `close` are optional.
//!
//! Scripts run with the provider directory as working directory and
//! Ganeti's environment: `VOL_NAME`, `VOL_CNAME` (the disk's name),
//! `VOL_UUID`, `EXTP_<PARAM>` for every disk parameter, and per action
//! `VOL_SIZE` (MiB; create, grow), `VOL_NEW_SIZE` (MiB; grow) and
//! `VOL_METADATA` (setinfo). `attach` prints the block device path on its
//! first line (possibly empty) and userspace URIs (`kvm:…`) on the next
//! ones. Ganeti also tees each script's output to a log file under
//! `/var/log/ganeti/extstorage`; here a failing script's output travels in
//! the error instead.

use super::{
    id_list, id_str, run_tool, Access, BlockDevice, DeviceStatus, GrowLayer, GrowMode, StorageError,
};
use crate::paths::Paths;
use crate::rpc::proto::DiskSpec;
use crate::sys::cmd::{Command, Runner};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where providers are looked for, in order (as on a real node;
/// Ganeti's `ES_SEARCH_PATH`).
pub const ES_SEARCH_PATH: &[&str] = &[
    "/srv/ganeti/extstorage",
    "/usr/local/lib/ganeti/extstorage",
    "/usr/lib/ganeti/extstorage",
    "/usr/share/ganeti/extstorage",
];
/// Scripts every provider must have.
pub const REQUIRED_SCRIPTS: &[&str] = &[
    "create", "remove", "grow", "attach", "detach", "setinfo", "verify",
];
/// Scripts a provider may have.
pub const OPTIONAL_SCRIPTS: &[&str] = &["snapshot", "open", "close"];
/// The provider's list of parameters (name and description a line).
pub const PARAMETERS_FILE: &str = "parameters.list";
/// Longest `VOL_METADATA` Ganeti passes.
pub const METADATA_MAX_CHARS: usize = 128;

/// A provider found on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Its name (directory name).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// `parameters.list`: name and description.
    pub parameters: Vec<(String, String)>,
}

impl Provider {
    fn script(&self, action: &str) -> Option<PathBuf> {
        let p = self.dir.join(action);
        p.is_file().then_some(p)
    }
}

/// Finds and checks provider `name` on the search path under the node root
/// (Ganeti's `ExtStorageFromDisk`).
pub fn find_provider(paths: &Paths, name: &str) -> Result<Provider, StorageError> {
    let fail = |reason: String| StorageError::Device {
        device: format!("ExtStorage provider {name:?}"),
        reason,
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(fail("is not a valid provider name".into()));
    }
    let dir = ES_SEARCH_PATH
        .iter()
        .map(|d| paths.under_root(d).join(name))
        .find(|d| d.is_dir())
        .ok_or_else(|| {
            fail(format!(
                "not found in the search path ({})",
                ES_SEARCH_PATH.join(", ")
            ))
        })?;
    for script in REQUIRED_SCRIPTS.iter().chain(OPTIONAL_SCRIPTS) {
        let p = dir.join(script);
        let md = match std::fs::metadata(&p) {
            Ok(md) => md,
            Err(_) if OPTIONAL_SCRIPTS.contains(script) => continue,
            Err(e) => {
                return Err(fail(format!(
                    "script {script:?} missing under {} ({e})",
                    dir.display()
                )))
            }
        };
        if !md.file_type().is_file() {
            return Err(fail(format!("{} is not a regular file", p.display())));
        }
        if md.permissions().mode() & 0o100 == 0 {
            return Err(fail(format!("{} is not executable", p.display())));
        }
    }
    let params_file = dir.join(PARAMETERS_FILE);
    let text = std::fs::read_to_string(&params_file)
        .map_err(|e| fail(format!("cannot read {} ({e})", params_file.display())))?;
    let parameters = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.trim();
            match l.split_once(char::is_whitespace) {
                Some((n, d)) => (n.to_string(), d.trim().to_string()),
                None => (l.to_string(), String::new()),
            }
        })
        .collect();
    Ok(Provider {
        name: name.to_string(),
        dir,
        parameters,
    })
}

/// Ganeti's cleaning of `setinfo` text: a first character outside
/// `[A-Za-z0-9_+.]` and any other outside `[-A-Za-z0-9_+.]` become `_`;
/// at most 128 characters.
pub fn sanitize_metadata(text: &str) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            let ok = c.is_ascii_alphanumeric() || "_+.".contains(c) || (i > 0 && c == '-');
            if ok {
                c
            } else {
                '_'
            }
        })
        .take(METADATA_MAX_CHARS)
        .collect()
}

/// An ExtStorage volume.
pub struct ExtDevice<'a> {
    provider_name: String,
    vol_name: String,
    cname: Option<String>,
    uuid: String,
    params: Vec<(String, String)>,
    paths: Paths,
    runner: &'a dyn Runner,
}

/// Per-action environment additions.
#[derive(Default)]
struct ActionEnv {
    size_mib: Option<u64>,
    new_size_mib: Option<u64>,
    metadata: Option<String>,
}

impl<'a> ExtDevice<'a> {
    /// Decodes `disk`; the provider is looked up when a script runs.
    pub fn new(
        disk: &DiskSpec,
        paths: &Paths,
        runner: &'a dyn Runner,
    ) -> Result<Self, StorageError> {
        let items = id_list(disk, 2)?;
        let provider_name = id_str(disk, items, 0)?;
        let vol_name = id_str(disk, items, 1)?;
        let params = disk
            .params
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (format!("EXTP_{}", k.to_uppercase()), text)
            })
            .collect();
        Ok(ExtDevice {
            provider_name,
            vol_name,
            cname: disk.name.clone(),
            uuid: disk.uuid.clone(),
            params,
            paths: paths.clone(),
            runner,
        })
    }

    fn label(&self) -> String {
        format!("ExtStorage volume {}/{}", self.provider_name, self.vol_name)
    }

    /// Runs the provider's `action` script; `None` if an optional script
    /// is absent.
    fn action(&self, action: &str, extra: ActionEnv) -> Result<Option<String>, StorageError> {
        let provider = find_provider(&self.paths, &self.provider_name)?;
        let Some(script) = provider.script(action) else {
            return Ok(None);
        };
        let mut cmd = Command::new([script.display().to_string()]);
        cmd.cwd = Some(provider.dir.clone());
        cmd = cmd.env("VOL_NAME", &self.vol_name);
        for (k, v) in &self.params {
            cmd = cmd.env(k, v);
        }
        if let Some(s) = extra.size_mib {
            cmd = cmd.env("VOL_SIZE", s.to_string());
        }
        if let Some(s) = extra.new_size_mib {
            cmd = cmd.env("VOL_NEW_SIZE", s.to_string());
        }
        if let Some(m) = extra.metadata {
            cmd = cmd.env("VOL_METADATA", m);
        }
        if let Some(n) = &self.cname {
            cmd = cmd.env("VOL_CNAME", n);
        }
        cmd = cmd.env("VOL_UUID", &self.uuid);
        let out = run_tool(self.runner, &cmd, || {
            format!("{}: {action} script failed", self.label())
        })?;
        Ok(Some(out.stdout))
    }

    /// Runs `attach`: the device path (checked to be a block device) or
    /// the URIs.
    fn attach(&self) -> Result<Access, StorageError> {
        let out = self
            .action("attach", ActionEnv::default())?
            .unwrap_or_default();
        let mut lines = out.lines();
        let path = lines.next().unwrap_or("").trim().to_string();
        let uris: Vec<String> = lines
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if path.is_empty() {
            if uris.is_empty() {
                return Err(StorageError::Device {
                    device: self.label(),
                    reason: "attach printed neither a block device nor a userspace URI".into(),
                });
            }
        } else {
            let is_block = std::fs::metadata(Path::new(&path))
                .map(|m| m.file_type().is_block_device())
                .unwrap_or(false);
            if !is_block {
                return Err(StorageError::Device {
                    device: self.label(),
                    reason: format!("attach printed {path:?}, which is not a block device"),
                });
            }
        }
        Ok(Access { path, uris })
    }
}

impl BlockDevice for ExtDevice<'_> {
    fn dev_type(&self) -> &'static str {
        "ext"
    }

    fn create(&self, size_mib: u64) -> Result<(), StorageError> {
        self.action(
            "create",
            ActionEnv {
                size_mib: Some(size_mib),
                ..ActionEnv::default()
            },
        )?;
        Ok(())
    }

    fn remove(&self) -> Result<(), StorageError> {
        // Ganeti: a volume that cannot be attached is not there; else
        // detach (remove mappings), then remove.
        if !self.exists()? {
            return Ok(());
        }
        self.action("detach", ActionEnv::default())?;
        self.action("remove", ActionEnv::default())?;
        Ok(())
    }

    fn exists(&self) -> Result<bool, StorageError> {
        match self.attach() {
            Ok(_) => Ok(true),
            Err(StorageError::Command { .. }) | Err(StorageError::Device { .. })
                if find_provider(&self.paths, &self.provider_name).is_ok() =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn assemble(&self) -> Result<Access, StorageError> {
        self.attach()
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        self.action("detach", ActionEnv::default())?;
        Ok(())
    }

    fn grow(
        &self,
        current_size_mib: u64,
        amount_mib: u64,
        mode: GrowMode,
        layer: GrowLayer,
    ) -> Result<(), StorageError> {
        if layer == GrowLayer::Device {
            return Ok(());
        }
        self.attach()?;
        if mode == GrowMode::DryRun {
            return Ok(());
        }
        self.action(
            "grow",
            ActionEnv {
                size_mib: Some(current_size_mib),
                new_size_mib: Some(current_size_mib + amount_mib),
                ..ActionEnv::default()
            },
        )?;
        Ok(())
    }

    fn size_bytes(&self) -> Result<u64, StorageError> {
        let access = self.attach()?;
        if access.path.is_empty() {
            return Err(StorageError::Device {
                device: self.label(),
                reason: "has no local block device to measure (userspace access only)".into(),
            });
        }
        let md = std::fs::metadata(&access.path).map_err(|source| StorageError::Io {
            action: "examining block device",
            path: PathBuf::from(&access.path),
            source,
        })?;
        use std::os::unix::fs::MetadataExt;
        let rdev = md.rdev();
        super::blockdev::sysfs_size_bytes(
            Path::new("/sys"),
            super::blockdev::dev_major(rdev),
            super::blockdev::dev_minor(rdev),
        )
    }

    fn status(&self) -> Result<DeviceStatus, StorageError> {
        let access = self.attach()?;
        let mut st = DeviceStatus::healthy(access.path);
        if st.path.as_deref() == Some("") {
            st.path = None;
        }
        Ok(st)
    }

    fn set_info(&self, text: &str) -> Result<(), StorageError> {
        self.action(
            "setinfo",
            ActionEnv {
                metadata: Some(sanitize_metadata(text)),
                ..ActionEnv::default()
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{disk, temp_dir};
    use super::*;
    use crate::storage::for_disk;
    use crate::sys::cmd::RealRunner;
    use serde_json::json;

    /// A virtual node with provider `fakeext` under /srv/ganeti/extstorage:
    /// every script appends its name and environment to `log`; volumes are
    /// files in `vols/`; attach prints an empty path and a kvm URI.
    fn node_with_provider(tag: &str) -> (Paths, PathBuf) {
        let base = temp_dir(tag);
        let root = base.join("node1");
        let p = Paths::virtual_node(&root, "node1").unwrap();
        let dir = p.under_root("/srv/ganeti/extstorage/fakeext");
        std::fs::create_dir_all(dir.join("vols")).unwrap();
        let log = dir.join("log");
        let common = r#"#!/bin/sh
echo "$(basename $0) VOL_NAME=$VOL_NAME VOL_CNAME=$VOL_CNAME VOL_UUID=$VOL_UUID VOL_SIZE=$VOL_SIZE VOL_NEW_SIZE=$VOL_NEW_SIZE VOL_METADATA=$VOL_METADATA EXTP_POOL=$EXTP_POOL EXTP_ACCESS=$EXTP_ACCESS pwd=$(pwd)" >> log
"#;
        let scripts = [
            ("create", "echo \"$VOL_SIZE\" > \"vols/$VOL_NAME\""),
            ("remove", "rm -f \"vols/$VOL_NAME\""),
            ("grow", "echo \"$VOL_NEW_SIZE\" > \"vols/$VOL_NAME\""),
            (
                "attach",
                "[ -f \"vols/$VOL_NAME\" ] || { echo \"no volume $VOL_NAME\" >&2; exit 1; }\necho\necho \"kvm:fake://$VOL_NAME\"",
            ),
            ("detach", "true"),
            ("setinfo", "true"),
            ("verify", "true"),
        ];
        for (name, body) in scripts {
            crate::sys::fs::atomic_write(
                &dir.join(name),
                format!("{common}{body}\n").as_bytes(),
                0o755,
            )
            .unwrap();
        }
        crate::sys::fs::atomic_write(
            &dir.join(PARAMETERS_FILE),
            b"pool the pool to use\nfast\n",
            0o644,
        )
        .unwrap();
        (p, log)
    }

    fn ext_disk() -> DiskSpec {
        let mut d = disk("ext", json!(["fakeext", "vol-1"]));
        d.params.insert("access".into(), json!("userspace"));
        d.params.insert("pool".into(), json!("gold"));
        d
    }

    #[test]
    fn provider_discovery_and_checks() {
        let (p, _log) = node_with_provider("ext-find");
        let prov = find_provider(&p, "fakeext").unwrap();
        assert_eq!(
            prov.parameters,
            vec![
                ("pool".to_string(), "the pool to use".to_string()),
                ("fast".to_string(), String::new())
            ]
        );
        let err = find_provider(&p, "nope").unwrap_err();
        assert!(
            err.to_string().contains("not found in the search path"),
            "{err}"
        );
        assert!(find_provider(&p, "../x").is_err());
        let grow = prov.dir.join("grow");
        std::fs::set_permissions(&grow, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = find_provider(&p, "fakeext").unwrap_err();
        assert!(err.to_string().contains("not executable"), "{err}");
        std::fs::remove_file(&grow).unwrap();
        let err = find_provider(&p, "fakeext").unwrap_err();
        assert!(err.to_string().contains("\"grow\" missing"), "{err}");
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn volume_lifecycle_runs_the_scripts_with_ganetis_environment() {
        let (p, log) = node_with_provider("ext-life");
        let r = RealRunner;
        let d = ext_disk();
        let dev = for_disk(&d, &p, &r).unwrap();
        assert!(!dev.exists().unwrap());
        dev.remove().unwrap();
        dev.create(256).unwrap();
        assert!(dev.exists().unwrap());
        let acc = dev.assemble().unwrap();
        assert_eq!(acc.path, "");
        assert_eq!(acc.uris, vec!["kvm:fake://vol-1".to_string()]);
        assert_eq!(dev.status().unwrap().path, None);
        dev.grow(256, 128, GrowMode::DryRun, GrowLayer::BackingStore)
            .unwrap();
        dev.grow(256, 128, GrowMode::Apply, GrowLayer::Device)
            .unwrap();
        dev.grow(256, 128, GrowMode::Apply, GrowLayer::BackingStore)
            .unwrap();
        dev.set_info("originstname+inst1.example.com").unwrap();
        dev.shutdown().unwrap();
        dev.remove().unwrap();
        assert!(!dev.exists().unwrap());

        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(
            names,
            [
                "attach", "attach", "create", "attach", "attach", "attach", "attach", "attach",
                "grow", "setinfo", "detach", "attach", "detach", "remove", "attach"
            ]
        );
        let create = lines[2];
        let dir = p.under_root("/srv/ganeti/extstorage/fakeext");
        for want in [
            "VOL_NAME=vol-1 ",
            "VOL_CNAME=data ",
            "VOL_UUID=d1-uuid ",
            "VOL_SIZE=256 ",
            "EXTP_POOL=gold ",
            "EXTP_ACCESS=userspace ",
            &format!("pwd={}", dir.display()),
        ] {
            assert!(create.contains(want), "{want} in {create}");
        }
        assert!(
            lines[8].contains("VOL_SIZE=256 VOL_NEW_SIZE=384 "),
            "{}",
            lines[8]
        );
        assert!(
            lines[9].contains("VOL_METADATA=originstname+inst1.example.com "),
            "{}",
            lines[9]
        );
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn attach_output_must_name_a_block_device() {
        let (p, _log) = node_with_provider("ext-attach");
        let dir = p.under_root("/srv/ganeti/extstorage/fakeext");
        crate::sys::fs::atomic_write(&dir.join("attach"), b"#!/bin/sh\necho /etc/passwd\n", 0o755)
            .unwrap();
        let r = RealRunner;
        let dev = for_disk(&ext_disk(), &p, &r).unwrap();
        let err = dev.assemble().unwrap_err();
        assert!(err.to_string().contains("not a block device"), "{err}");
        crate::sys::fs::atomic_write(&dir.join("attach"), b"#!/bin/sh\nexit 0\n", 0o755).unwrap();
        let err = dev.assemble().unwrap_err();
        assert!(err.to_string().contains("neither a block device"), "{err}");
        // A failing script's stderr reaches the error chain.
        crate::sys::fs::atomic_write(
            &dir.join("create"),
            b"#!/bin/sh\necho pool full >&2\nexit 2\n",
            0o755,
        )
        .unwrap();
        let err = dev.create(1).unwrap_err();
        let chain = crate::error::chain(&err);
        assert!(
            chain.contains("create script failed") && chain.contains("pool full"),
            "{chain}"
        );
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn metadata_is_sanitized_like_ganeti() {
        assert_eq!(sanitize_metadata("-a b/c-d"), "_a_b_c-d");
        assert_eq!(sanitize_metadata(&"x".repeat(200)).len(), 128);
    }
}
