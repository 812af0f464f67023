//! `file` and `sharedfile` disks: a file in a file-storage directory
//! (Ganeti's `storage/filestorage.py`).
//!
//! `logical_id` is `[driver, path]`; the driver (`loop`, `blktap`,
//! `blktap2`) only matters to Xen, so it is checked and kept. The path must
//! lie below one of the directories listed in `/etc/ganeti/file-storage-paths`
//! (read under the node root, one absolute path a line, `#` comments), and
//! not below a system directory (`/boot`, `/etc`, `/usr/lib`, …): Ganeti's
//! `CheckFileStoragePathAcceptance`, checked before anything is touched.
//!
//! Images are raw sparse files (`set_len`), as in Ganeti. ganeti-rs adds one
//! disk parameter Ganeti 3.0 does not have: `format=qcow2` makes the image
//! with `qemu-img create -f qcow2` and grows it with `qemu-img resize`
//! (`format=raw`, the default, is Ganeti's behaviour).
//!
//! In a virtual cluster the master may send a path with another node's
//! root in front (Ganeti stores the storage directory with the master's
//! prefix); the path is moved under this node's root, as Ganeti's
//! `vcluster.ExchangeNodeRoot` does.

use super::{
    disk_label, id_list, id_str, param_text, run_tool, Access, BlockDevice, DeviceStatus,
    GrowLayer, GrowMode, StorageError, MIB,
};
use crate::paths::Paths;
use crate::rpc::proto::DiskSpec;
use crate::sys::cmd::{Command, Runner};
use std::path::{Component, Path, PathBuf};

/// File drivers Ganeti accepts in a file disk's `logical_id` (`FD_*`).
pub const FILE_DRIVERS: &[&str] = &["loop", "blktap", "blktap2"];
/// The disk parameter choosing the image format (a ganeti-rs addition).
pub const FORMAT_PARAM: &str = "format";
/// The program making and resizing qcow2 images.
pub const QEMU_IMG: &str = "qemu-img";

/// Which file template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `file`: local to the node.
    Local,
    /// `sharedfile`: on a file system every node mounts.
    Shared,
}

/// The image format of a file disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A sparse raw file.
    Raw,
    /// A qcow2 image made by `qemu-img`.
    Qcow2,
}

/// A `file` or `sharedfile` disk.
pub struct FileDevice<'a> {
    kind: FileKind,
    path: PathBuf,
    format: ImageFormat,
    runner: &'a dyn Runner,
}

impl<'a> FileDevice<'a> {
    /// Decodes `disk` and checks its path against the node's allow-list.
    pub fn new(
        disk: &DiskSpec,
        paths: &Paths,
        runner: &'a dyn Runner,
        kind: FileKind,
    ) -> Result<Self, StorageError> {
        let items = id_list(disk, 2)?;
        let driver = id_str(disk, items, 0)?;
        if !FILE_DRIVERS.contains(&driver.as_str()) {
            return Err(super::bad_id(
                disk,
                format!(
                    "unknown file driver {driver:?} (expected one of {})",
                    FILE_DRIVERS.join(", ")
                ),
            ));
        }
        let raw_path = id_str(disk, items, 1)?;
        if !raw_path.starts_with('/') {
            return Err(super::bad_id(
                disk,
                format!("file path {raw_path:?} is not absolute"),
            ));
        }
        let path = localize(paths, Path::new(&raw_path));
        check_acceptance(&path, &paths.file_storage_paths_file())?;
        let format = match param_text(disk, FORMAT_PARAM).as_deref() {
            None | Some("raw") => ImageFormat::Raw,
            Some("qcow2") => ImageFormat::Qcow2,
            Some(other) => {
                return Err(StorageError::BadParam {
                    disk: disk_label(disk),
                    param: FORMAT_PARAM.into(),
                    reason: format!("{other:?} is not raw or qcow2"),
                })
            }
        };
        Ok(FileDevice {
            kind,
            path,
            format,
            runner,
        })
    }

    /// The image file on this node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image format.
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
        move |source| StorageError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }

    fn require(&self) -> Result<(), StorageError> {
        if self.path.is_file() {
            Ok(())
        } else {
            Err(StorageError::Missing {
                device: self.path.display().to_string(),
            })
        }
    }

    fn display(&self) -> String {
        self.path.display().to_string()
    }
}

impl BlockDevice for FileDevice<'_> {
    fn dev_type(&self) -> &'static str {
        match self.kind {
            FileKind::Local => "file",
            FileKind::Shared => "sharedfile",
        }
    }

    fn create(&self, size_mib: u64) -> Result<(), StorageError> {
        // Ganeti refuses to reuse an existing file (O_EXCL): it may hold
        // another disk's data.
        if std::fs::symlink_metadata(&self.path).is_ok() {
            return Err(StorageError::Exists {
                device: self.display(),
            });
        }
        if let Some(dir) = self.path.parent() {
            crate::sys::fs::ensure_dir(dir, 0o750).map_err(|e| StorageError::Device {
                device: self.display(),
                reason: format!("cannot create its directory: {}", crate::error::chain(&e)),
            })?;
        }
        match self.format {
            ImageFormat::Raw => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&self.path)
                    .map_err(self.io("creating disk file"))?;
                let grown = f.set_len(size_mib * MIB).and_then(|_| f.sync_all());
                if let Err(source) = grown {
                    let _ = std::fs::remove_file(&self.path);
                    return Err(StorageError::Io {
                        action: "setting the size of disk file",
                        path: self.path.clone(),
                        source,
                    });
                }
                Ok(())
            }
            ImageFormat::Qcow2 => {
                let cmd = Command::new([
                    QEMU_IMG.to_string(),
                    "create".into(),
                    "-f".into(),
                    "qcow2".into(),
                    self.display(),
                    format!("{size_mib}M"),
                ]);
                run_tool(self.runner, &cmd, || {
                    format!("creating qcow2 image {}", self.display())
                })?;
                Ok(())
            }
        }
    }

    fn remove(&self) -> Result<(), StorageError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StorageError::Io {
                action: "removing disk file",
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn exists(&self) -> Result<bool, StorageError> {
        Ok(self.path.is_file())
    }

    fn assemble(&self) -> Result<Access, StorageError> {
        self.require()?;
        Ok(Access {
            path: self.display(),
            uris: Vec::new(),
        })
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        // Files are not deactivated (Ganeti: Shutdown is a no-op).
        Ok(())
    }

    fn grow(
        &self,
        _current_size_mib: u64,
        amount_mib: u64,
        mode: GrowMode,
        layer: GrowLayer,
    ) -> Result<(), StorageError> {
        self.require()?;
        if mode == GrowMode::DryRun || layer == GrowLayer::Device {
            return Ok(());
        }
        match self.format {
            ImageFormat::Raw => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .map_err(self.io("opening disk file to grow"))?;
                let now = f
                    .metadata()
                    .map_err(self.io("reading the size of disk file"))?
                    .len();
                f.set_len(now + amount_mib * MIB)
                    .and_then(|_| f.sync_all())
                    .map_err(self.io("growing disk file"))
            }
            ImageFormat::Qcow2 => {
                let cmd = Command::new([
                    QEMU_IMG.to_string(),
                    "resize".into(),
                    "-f".into(),
                    "qcow2".into(),
                    self.display(),
                    format!("+{amount_mib}M"),
                ]);
                run_tool(self.runner, &cmd, || {
                    format!("growing qcow2 image {}", self.display())
                })?;
                Ok(())
            }
        }
    }

    fn size_bytes(&self) -> Result<u64, StorageError> {
        self.require()?;
        match self.format {
            ImageFormat::Raw => Ok(std::fs::metadata(&self.path)
                .map_err(self.io("reading the size of disk file"))?
                .len()),
            ImageFormat::Qcow2 => {
                let cmd = Command::new([
                    QEMU_IMG.to_string(),
                    "info".into(),
                    "-f".into(),
                    "qcow2".into(),
                    "--output=json".into(),
                    self.display(),
                ]);
                let out = run_tool(self.runner, &cmd, || {
                    format!("reading the size of qcow2 image {}", self.display())
                })?;
                qcow2_virtual_size(&out.stdout)
            }
        }
    }

    fn status(&self) -> Result<DeviceStatus, StorageError> {
        self.require()?;
        Ok(DeviceStatus::healthy(self.display()))
    }
}

/// `virtual-size` out of `qemu-img info --output=json`.
pub fn qcow2_virtual_size(json: &str) -> Result<u64, StorageError> {
    let parse = |reason: String| StorageError::Parse {
        what: "qemu-img info output".into(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| parse(e.to_string()))?;
    v.get("virtual-size")
        .and_then(|s| s.as_u64())
        .ok_or_else(|| parse("no numeric \"virtual-size\"".into()))
}

/// The path on this node: in a virtual cluster, a path under another
/// node's root (`BASE/<other>/…`) moves under ours, and a production path
/// (`/srv/…`) goes under our root; a real node uses paths as they are.
pub fn localize(paths: &Paths, path: &Path) -> PathBuf {
    let path = normalize(path);
    if !paths.is_virtual() || path.starts_with(paths.root()) {
        return path;
    }
    if let Some(base) = paths.root().parent() {
        if let Ok(rest) = path.strip_prefix(base) {
            let mut comps = rest.components();
            if comps.next().is_some() {
                return paths.root().join(comps.as_path());
            }
        }
    }
    paths.under_root(&path.display().to_string())
}

/// Lexical normalisation (Python's `os.path.normpath` on absolute paths).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// System directories Ganeti never lets file storage use
/// (`_GetForbiddenFileStoragePaths`).
fn forbidden_prefixes() -> Vec<String> {
    let mut bad: Vec<String> = ["/boot", "/dev", "/etc", "/home", "/proc", "/root", "/sys"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for prefix in ["", "/usr", "/usr/local"] {
        for s in ["bin", "lib", "lib32", "lib64", "sbin"] {
            bad.push(format!("{prefix}/{s}"));
        }
    }
    bad
}

/// The allowed directories listed in `allow_file` (empty when unreadable,
/// as Ganeti's `_LoadAllowedFileStoragePaths`).
pub fn allowed_dirs(allow_file: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(allow_file)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Ganeti's `CheckFileStoragePathAcceptance`: `path` (normalised, absolute)
/// must be strictly below one of the absolute directories in `allow_file`
/// and not below a system directory.
pub fn check_acceptance(path: &Path, allow_file: &Path) -> Result<(), StorageError> {
    let refuse = |reason: String| StorageError::PathNotAllowed {
        path: path.to_path_buf(),
        reason,
        allow_file: allow_file.to_path_buf(),
    };
    let allowed = allowed_dirs(allow_file);
    if allowed.is_empty() {
        return Err(refuse(
            "no directories are allowed (the file is missing, unreadable or empty)".into(),
        ));
    }
    if forbidden_prefixes().iter().any(|b| path.starts_with(b)) {
        return Err(refuse("it uses a forbidden system prefix".into()));
    }
    let below = allowed
        .iter()
        .filter(|a| a.is_absolute())
        .map(|a| normalize(a))
        .any(|a| path != a && path.starts_with(&a));
    if below {
        Ok(())
    } else {
        Err(refuse("it is not below any allowed directory".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{disk, temp_dir};
    use super::*;
    use crate::storage::for_disk;
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    /// A virtual node under a temp base with `allowed` in file-storage-paths.
    fn node(tag: &str, allowed: &[&str]) -> Paths {
        let base = temp_dir(tag);
        let root = base.join("node1");
        std::fs::create_dir_all(root.join("etc/ganeti")).unwrap();
        let p = Paths::virtual_node(&root, "node1").unwrap();
        let lines: Vec<String> = allowed
            .iter()
            .map(|a| p.under_root(a).display().to_string())
            .collect();
        crate::sys::fs::atomic_write(
            &p.file_storage_paths_file(),
            format!("# allowed\n\n{}\n", lines.join("\n")).as_bytes(),
            0o644,
        )
        .unwrap();
        p
    }

    fn file_disk(p: &Paths, rel: &str) -> DiskSpec {
        disk(
            "file",
            json!(["loop", p.under_root(rel).display().to_string()]),
        )
    }

    #[test]
    fn raw_file_lifecycle() {
        let p = node("raw", &["/srv/ganeti/file-storage"]);
        let r = RecordingRunner::new();
        let d = file_disk(&p, "/srv/ganeti/file-storage/inst1/disk0");
        let dev = for_disk(&d, &p, &r).unwrap();
        assert!(!dev.exists().unwrap());
        assert!(matches!(dev.assemble(), Err(StorageError::Missing { .. })));
        dev.create(10).unwrap();
        assert!(dev.exists().unwrap());
        assert_eq!(dev.size_bytes().unwrap(), 10 * MIB);
        let img = p.under_root("/srv/ganeti/file-storage/inst1/disk0");
        // Sparse: nothing allocated for 10 MiB of zeros.
        use std::os::unix::fs::MetadataExt;
        assert!(std::fs::metadata(&img).unwrap().blocks() * 512 < MIB);
        assert!(matches!(dev.create(10), Err(StorageError::Exists { .. })));
        let acc = dev.assemble().unwrap();
        assert_eq!(acc.path, img.display().to_string());
        assert_eq!(
            dev.status().unwrap().path.as_deref(),
            Some(acc.path.as_str())
        );
        dev.grow(10, 5, GrowMode::DryRun, GrowLayer::BackingStore)
            .unwrap();
        assert_eq!(dev.size_bytes().unwrap(), 10 * MIB);
        dev.grow(10, 5, GrowMode::Apply, GrowLayer::BackingStore)
            .unwrap();
        assert_eq!(dev.size_bytes().unwrap(), 15 * MIB);
        dev.grow(10, 5, GrowMode::Apply, GrowLayer::Device).unwrap();
        assert_eq!(dev.size_bytes().unwrap(), 15 * MIB, "no device layer");
        dev.shutdown().unwrap();
        dev.remove().unwrap();
        assert!(!img.exists());
        dev.remove().unwrap();
        assert!(matches!(
            dev.grow(15, 1, GrowMode::Apply, GrowLayer::BackingStore),
            Err(StorageError::Missing { .. })
        ));
        assert!(r.calls().is_empty());
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn paths_outside_the_allow_list_are_refused() {
        let p = node("allow", &["/srv/ganeti/file-storage"]);
        let r = RecordingRunner::new();
        for rel in [
            "/srv/ganeti/other/disk0",
            "/srv/ganeti/file-storage",
            "/srv/ganeti/file-storage/../escape/disk0",
        ] {
            let err = for_disk(&file_disk(&p, rel), &p, &r).err().unwrap();
            let msg = err.to_string();
            assert!(matches!(err, StorageError::PathNotAllowed { .. }), "{msg}");
            assert!(msg.contains("file-storage-paths"), "{msg}");
        }
        // No allow-list at all.
        std::fs::remove_file(p.file_storage_paths_file()).unwrap();
        let err = for_disk(&file_disk(&p, "/srv/ganeti/file-storage/x"), &p, &r)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("no directories are allowed"),
            "{err}"
        );
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn forbidden_prefixes_win_over_the_allow_list() {
        let dir = temp_dir("forbid");
        let allow = dir.join("file-storage-paths");
        crate::sys::fs::atomic_write(&allow, b"/etc\n/usr/lib/x\n", 0o644).unwrap();
        for p in ["/etc/ganeti/disk", "/usr/lib/x/disk"] {
            let err = check_acceptance(Path::new(p), &allow).unwrap_err();
            assert!(err.to_string().contains("forbidden"), "{err}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn virtual_paths_move_under_this_nodes_root() {
        let base = temp_dir("vpath");
        let p = Paths::virtual_node(&base.join("node2"), "node2").unwrap();
        let other = base.join("node1/srv/ganeti/file-storage/i/disk0");
        assert_eq!(
            localize(&p, &other),
            base.join("node2/srv/ganeti/file-storage/i/disk0")
        );
        assert_eq!(
            localize(&p, Path::new("/srv/ganeti/file-storage/i/disk0")),
            base.join("node2/srv/ganeti/file-storage/i/disk0")
        );
        let own = base.join("node2/srv/x");
        assert_eq!(localize(&p, &own), own);
        assert_eq!(
            localize(&Paths::production(), Path::new("/srv/a/../b")),
            PathBuf::from("/srv/b")
        );
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn qcow2_goes_through_qemu_img() {
        let p = node("qcow", &["/srv/ganeti/shared-file-storage"]);
        let r = RecordingRunner::new();
        let mut d = disk(
            "sharedfile",
            json!([
                "loop",
                p.under_root("/srv/ganeti/shared-file-storage/i/disk0")
                    .display()
                    .to_string()
            ]),
        );
        d.params.insert(FORMAT_PARAM.into(), json!("qcow2"));
        let dev = for_disk(&d, &p, &r).unwrap();
        assert_eq!(dev.dev_type(), "sharedfile");
        let img = p
            .under_root("/srv/ganeti/shared-file-storage/i/disk0")
            .display()
            .to_string();
        dev.create(1024).unwrap();
        // The recording runner made no file; pretend qemu-img did.
        crate::sys::fs::atomic_write(Path::new(&img), b"QFI\xfb", 0o600).unwrap();
        dev.grow(1024, 512, GrowMode::Apply, GrowLayer::BackingStore)
            .unwrap();
        r.push_answer(Ok(r#"{"virtual-size": 1610612736, "format": "qcow2"}"#));
        assert_eq!(dev.size_bytes().unwrap(), 1536 * MIB);
        let argv: Vec<String> = r.calls().iter().map(|c| c.display()).collect();
        assert_eq!(
            argv,
            vec![
                format!("qemu-img create -f qcow2 {img} 1024M"),
                format!("qemu-img resize -f qcow2 {img} +512M"),
                format!("qemu-img info -f qcow2 --output=json {img}"),
            ]
        );
        d.params.insert(FORMAT_PARAM.into(), json!("vmdk"));
        let err = for_disk(&d, &p, &r).err().unwrap();
        assert!(err.to_string().contains("vmdk"), "{err}");
        crate::paths::test_support::remove_temp_node(&p);
    }

    #[test]
    fn bad_drivers_are_refused() {
        let p = node("driver", &["/srv/ganeti/file-storage"]);
        let r = RecordingRunner::new();
        let d = disk("file", json!(["qcow", "/srv/ganeti/file-storage/x"]));
        let err = for_disk(&d, &p, &r).err().unwrap();
        assert!(err.to_string().contains("unknown file driver"), "{err}");
        let d = disk("file", json!(["loop", "relative/x"]));
        assert!(for_disk(&d, &p, &r).is_err());
        crate::paths::test_support::remove_temp_node(&p);
    }
}
