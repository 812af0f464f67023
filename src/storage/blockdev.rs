//! `blockdev` disks: existing block devices adopted by an instance
//! (Ganeti's `PersistentBlockDevice` in `storage/bdev.py`).
//!
//! `logical_id` is `["manual", path]`; the path (after following symlinks)
//! must lie under `/dev`. Ganeti never creates, removes, grows or
//! deactivates such a device: "create" and "remove" only check and forget,
//! grow is refused. The size comes from sysfs
//! (`/sys/dev/block/MAJOR:MINOR/size`, in 512-byte sectors), so no ioctl is
//! needed. Devices are host objects: `/dev` and `/sys` are the real ones
//! even on a virtual-cluster node.

use super::{
    id_list, id_str, Access, BlockDevice, DeviceStatus, GrowLayer, GrowMode, StorageError,
};
use crate::rpc::proto::DiskSpec;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The only driver of a `blockdev` disk (`BLOCKDEV_DRIVER_MANUAL`).
pub const BLOCKDEV_DRIVER_MANUAL: &str = "manual";

/// An adopted block device.
pub struct AdoptedDevice {
    path: PathBuf,
}

impl AdoptedDevice {
    /// Decodes `disk`; the path must resolve under `/dev` (when it exists:
    /// a missing device is reported by the operations, as Ganeti's `Attach`).
    pub fn new(disk: &DiskSpec) -> Result<Self, StorageError> {
        let items = id_list(disk, 2)?;
        let driver = id_str(disk, items, 0)?;
        if driver != BLOCKDEV_DRIVER_MANUAL {
            return Err(super::bad_id(
                disk,
                format!("driver {driver:?} is not {BLOCKDEV_DRIVER_MANUAL:?}"),
            ));
        }
        let path = PathBuf::from(id_str(disk, items, 1)?);
        let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !resolved.starts_with("/dev/") {
            return Err(super::bad_id(
                disk,
                format!("{} lies outside /dev", resolved.display()),
            ));
        }
        Ok(AdoptedDevice { path })
    }

    /// The device path as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn display(&self) -> String {
        self.path.display().to_string()
    }

    /// The device number, checking that the path is a block device.
    fn rdev(&self) -> Result<u64, StorageError> {
        let md = std::fs::metadata(&self.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StorageError::Missing {
                    device: self.display(),
                }
            } else {
                StorageError::Io {
                    action: "examining block device",
                    path: self.path.clone(),
                    source: e,
                }
            }
        })?;
        if !md.file_type().is_block_device() {
            return Err(StorageError::Device {
                device: self.display(),
                reason: "is not a block device".into(),
            });
        }
        Ok(md.rdev())
    }
}

/// Linux's `major()` of a `dev_t` (glibc's encoding).
pub fn dev_major(rdev: u64) -> u64 {
    ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)
}

/// Linux's `minor()` of a `dev_t` (glibc's encoding).
pub fn dev_minor(rdev: u64) -> u64 {
    (rdev & 0xff) | ((rdev >> 12) & !0xff)
}

/// Size in bytes of the block device `major:minor`, from sysfs under
/// `sys_root` (`/sys` in production).
pub fn sysfs_size_bytes(sys_root: &Path, major: u64, minor: u64) -> Result<u64, StorageError> {
    let file = sys_root.join(format!("dev/block/{major}:{minor}/size"));
    let text = std::fs::read_to_string(&file).map_err(|source| StorageError::Io {
        action: "reading block device size from",
        path: file.clone(),
        source,
    })?;
    let sectors: u64 = text.trim().parse().map_err(|_| StorageError::Parse {
        what: file.display().to_string(),
        reason: format!("{:?} is not a sector count", text.trim()),
    })?;
    Ok(sectors * 512)
}

impl BlockDevice for AdoptedDevice {
    fn dev_type(&self) -> &'static str {
        "blockdev"
    }

    fn create(&self, _size_mib: u64) -> Result<(), StorageError> {
        // Adoption: the device must already be there.
        self.rdev().map(|_| ())
    }

    fn remove(&self) -> Result<(), StorageError> {
        // Never destroy an adopted device: Ganeti only forgets it.
        Ok(())
    }

    fn exists(&self) -> Result<bool, StorageError> {
        match self.rdev() {
            Ok(_) => Ok(true),
            Err(StorageError::Missing { .. }) | Err(StorageError::Device { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn assemble(&self) -> Result<Access, StorageError> {
        self.rdev()?;
        Ok(Access {
            path: self.display(),
            uris: Vec::new(),
        })
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn grow(
        &self,
        _current_size_mib: u64,
        _amount_mib: u64,
        _mode: GrowMode,
        _layer: GrowLayer,
    ) -> Result<(), StorageError> {
        Err(StorageError::NotSupported {
            device: self.display(),
            operation: "grow",
            dev_type: "blockdev",
        })
    }

    fn size_bytes(&self) -> Result<u64, StorageError> {
        let rdev = self.rdev()?;
        sysfs_size_bytes(Path::new("/sys"), dev_major(rdev), dev_minor(rdev))
    }

    fn status(&self) -> Result<DeviceStatus, StorageError> {
        self.rdev()?;
        Ok(DeviceStatus::healthy(self.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{disk, temp_dir};
    use super::*;
    use crate::paths::Paths;
    use crate::storage::{for_disk, MIB};
    use crate::sys::cmd::{Command, RealRunner, RecordingRunner, Runner};
    use serde_json::json;

    fn dev(path: &str) -> Result<AdoptedDevice, StorageError> {
        AdoptedDevice::new(&disk("blockdev", json!(["manual", path])))
    }

    #[test]
    fn paths_must_resolve_under_dev() {
        let dir = temp_dir("bd-outside");
        let f = dir.join("img");
        crate::sys::fs::atomic_write(&f, b"x", 0o600).unwrap();
        let err = dev(&f.display().to_string()).err().unwrap();
        assert!(err.to_string().contains("outside /dev"), "{err}");
        // A symlink in /dev-looking clothes is resolved first.
        assert!(dev("/dev/../etc/passwd").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn non_block_devices_and_missing_ones_are_refused() {
        let null = dev("/dev/null").unwrap();
        assert!(!null.exists().unwrap());
        let err = null.assemble().unwrap_err();
        assert!(err.to_string().contains("not a block device"), "{err}");
        assert!(null.create(1).is_err(), "adoption needs a block device");
        let gone = dev("/dev/ganeti-test-no-such-device").unwrap();
        assert!(!gone.exists().unwrap());
        assert!(matches!(gone.status(), Err(StorageError::Missing { .. })));
        // Never removed, never grown.
        gone.remove().unwrap();
        let err = gone
            .grow(1, 1, GrowMode::Apply, GrowLayer::BackingStore)
            .unwrap_err();
        assert!(err.to_string().contains("grow is not supported"), "{err}");
    }

    #[test]
    fn device_numbers_and_sysfs_sizes() {
        // 259:65536 as glibc encodes it.
        let (major, minor) = (259u64, 65536u64);
        let rdev = (major << 8) | (minor & 0xff) | ((minor & !0xff) << 12);
        assert_eq!((dev_major(rdev), dev_minor(rdev)), (259, 65536));
        let sys = temp_dir("bd-sysfs");
        std::fs::create_dir_all(sys.join("dev/block/7:3")).unwrap();
        crate::sys::fs::atomic_write(&sys.join("dev/block/7:3/size"), b"204800\n", 0o644).unwrap();
        assert_eq!(sysfs_size_bytes(&sys, 7, 3).unwrap(), 100 * MIB);
        crate::sys::fs::atomic_write(&sys.join("dev/block/7:3/size"), b"lots\n", 0o644).unwrap();
        assert!(matches!(
            sysfs_size_bytes(&sys, 7, 3),
            Err(StorageError::Parse { .. })
        ));
        assert!(sysfs_size_bytes(&sys, 7, 4).is_err());
        let _ = std::fs::remove_dir_all(sys);
    }

    /// A real loop device; skipped (with a message) where `losetup` cannot
    /// attach one (not root, no loop support).
    #[test]
    fn loop_device_is_adopted() {
        let dir = temp_dir("bd-loop");
        let img = dir.join("img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(8 * MIB).unwrap();
        drop(f);
        let attach = Command::new(["losetup", "--find", "--show", &img.display().to_string()]);
        let loopdev = match RealRunner.run(&attach) {
            Ok(out) => out.stdout.trim().to_string(),
            Err(e) => {
                eprintln!("skipping loop_device_is_adopted: losetup unavailable: {e}");
                let _ = std::fs::remove_dir_all(dir);
                return;
            }
        };
        let result = std::panic::catch_unwind(|| {
            let r = RecordingRunner::new();
            let d = disk("blockdev", json!(["manual", loopdev]));
            let dev = for_disk(&d, &Paths::production(), &r).unwrap();
            dev.create(8).unwrap();
            assert!(dev.exists().unwrap());
            assert_eq!(dev.assemble().unwrap().path, loopdev);
            assert_eq!(dev.size_bytes().unwrap(), 8 * MIB);
            assert!(!dev.status().unwrap().is_degraded);
            dev.shutdown().unwrap();
            dev.remove().unwrap();
            assert!(Path::new(&loopdev).exists(), "remove must not touch it");
            assert!(r.calls().is_empty());
        });
        let _ = RealRunner.run(&Command::new(["losetup", "-d", &loopdev]));
        let _ = std::fs::remove_dir_all(dir);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}
