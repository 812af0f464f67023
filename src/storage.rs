//! Block devices (node side): one type per disk template behind the
//! [`BlockDevice`] trait (Ganeti's `storage/base.py` `BlockDev`).
//!
//! Called only by `backend::blockdev` on behalf of noded; never reads the
//! cluster config: everything comes in the [`DiskSpec`] of the RPC payload.
//! [`for_disk`] decodes the disk's `logical_id` (Ganeti's shape for each
//! `dev_type`) and returns the device:
//!
//! | `dev_type`   | `logical_id`                                         | module |
//! |--------------|------------------------------------------------------|--------|
//! | `file`       | `[driver, path]`, driver `loop`/`blktap`/`blktap2`   | [`mod@file`] |
//! | `sharedfile` | `[driver, path]`                                     | [`mod@file`] |
//! | `blockdev`   | `["manual", path under /dev]`                        | [`blockdev`] |
//! | `ext`        | `[provider, volume name]`                            | [`ext`] |
//! | `plain`      | `[vg, lv]`                                           | [`lvm`] |
//! | `drbd`       | `[node_a, node_b, port, minor_a, minor_b, secret]`, children `[data, meta]` | [`drbd`] |
//!
//! `diskless` has no disks, and `rbd`/`gluster` are not built: both are
//! refused by [`for_disk`] with [`StorageError::Unsupported`].
//!
//! What runs on these machines: `file`, `sharedfile`, `blockdev` (loop
//! devices) and `ext`. `plain` needs device-mapper and `drbd` a kernel
//! module, neither of which exists here: their command lines are tested
//! through the recording runner and their parsers on the real tool outputs
//! of Ganeti's test suite, but they are **not exercised** on a real volume
//! group or DRBD device on this machine.
//!
//! Operations are written as "ensure state": creating a disk that exists
//! with the right type is an error only where Ganeti says so (files), and
//! removing a missing disk succeeds.
//!
//! Devices are host objects: `/dev`, `/sys` and `/proc/drbd` are the real
//! ones even in a virtual cluster; configuration files (the file-storage
//! allow-list, ExtStorage providers) are read under the node root.

pub mod blockdev;
pub mod drbd;
pub mod ext;
pub mod file;
pub mod lvm;

use crate::paths::Paths;
use crate::rpc::proto::DiskSpec;
use crate::sys::cmd::{CmdError, Runner};
use std::path::PathBuf;

/// One MiB in bytes.
pub const MIB: u64 = 1024 * 1024;

/// A block-device operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The `logical_id` (or children) do not have the disk type's shape.
    #[error("disk {disk}: invalid logical_id for dev_type {dev_type:?}: {reason}")]
    BadLogicalId {
        /// The disk (UUID or iv_name).
        disk: String,
        /// Its `dev_type`.
        dev_type: String,
        /// What is wrong.
        reason: String,
    },
    /// The disk type is not built (or has no devices, like `diskless`).
    #[error("disk {disk}: dev_type {dev_type:?} is not supported on this node")]
    Unsupported {
        /// The disk.
        disk: String,
        /// Its `dev_type`.
        dev_type: String,
    },
    /// A disk parameter is unusable.
    #[error("disk {disk}: invalid disk parameter {param:?}: {reason}")]
    BadParam {
        /// The disk.
        disk: String,
        /// The parameter name.
        param: String,
        /// What is wrong.
        reason: String,
    },
    /// A file path is not allowed for file storage (Ganeti's
    /// `CheckFileStoragePathAcceptance`).
    #[error("{path}: not acceptable for file storage: {reason} (allowed directories are listed in {allow_file})")]
    PathNotAllowed {
        /// The disk file.
        path: PathBuf,
        /// Why.
        reason: String,
        /// The allow-list file.
        allow_file: PathBuf,
    },
    /// The device is missing where it must exist.
    #[error("{device}: does not exist")]
    Missing {
        /// The device (path or name).
        device: String,
    },
    /// The device exists where it must not (file create).
    #[error("{device}: already exists")]
    Exists {
        /// The device.
        device: String,
    },
    /// The operation makes no sense for this type (grow a blockdev, …).
    #[error("{device}: {operation} is not supported for {dev_type} disks")]
    NotSupported {
        /// The device.
        device: String,
        /// The operation.
        operation: &'static str,
        /// The disk type.
        dev_type: &'static str,
    },
    /// A file-system step failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An external program failed.
    #[error("{action}")]
    Command {
        /// What was being done, to which device.
        action: String,
        /// The command failure (command line, status, output).
        #[source]
        source: CmdError,
    },
    /// A tool answered something we cannot read.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// Which output.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Anything else about one device, said in words.
    #[error("{device}: {reason}")]
    Device {
        /// The device.
        device: String,
        /// What is wrong.
        reason: String,
    },
}

/// Whether a grow is applied or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowMode {
    /// Check that the grow can be done; change nothing.
    DryRun,
    /// Grow.
    Apply,
}

/// Which layer a grow touches (Ganeti's `backingstore` flag). Growing a
/// disk takes two passes, as in Ganeti's `LUInstanceGrowDisk`: first the
/// backing storage on every node of the disk, then the device layer on the
/// primary. Only DRBD has a device layer (`drbdsetup resize`); for every
/// other type the second pass changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowLayer {
    /// The backing storage: the file, LV or ExtStorage volume; DRBD's children.
    BackingStore,
    /// The device on top of the backing storage (DRBD only).
    Device,
}

/// Ganeti's local-disk status (`LDS_*`; names as in `LDS_NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalDiskStatus {
    /// `ok`.
    Okay,
    /// `syncing`: the local disk is being resynchronised.
    Syncing,
    /// `unknown`.
    Unknown,
    /// `faulty`: the local disk is missing or failed.
    Faulty,
}

impl LocalDiskStatus {
    /// Ganeti's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalDiskStatus::Okay => "ok",
            LocalDiskStatus::Syncing => "syncing",
            LocalDiskStatus::Unknown => "unknown",
            LocalDiskStatus::Faulty => "faulty",
        }
    }
}

/// The status of an attached device (Ganeti's `BlockDevStatus`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatus {
    /// Device path, when known.
    pub path: Option<String>,
    /// Resync progress in percent, when resyncing.
    pub sync_percent: Option<f64>,
    /// Estimated seconds until the resync ends.
    pub estimated_time_secs: Option<f64>,
    /// Whether redundancy is degraded.
    pub is_degraded: bool,
    /// The local disk's state.
    pub ldisk: LocalDiskStatus,
}

impl DeviceStatus {
    /// A healthy, non-mirrored device at `path`.
    pub fn healthy(path: impl Into<String>) -> Self {
        DeviceStatus {
            path: Some(path.into()),
            sync_percent: None,
            estimated_time_secs: None,
            is_degraded: false,
            ldisk: LocalDiskStatus::Okay,
        }
    }
}

/// How a hypervisor opens an assembled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Block device or file path (may be empty for userspace-only ExtStorage).
    pub path: String,
    /// Userspace URIs (`kvm:rbd:…`), ExtStorage only.
    pub uris: Vec<String>,
}

/// A block device of one disk template (Ganeti's `BlockDev`). Every call
/// looks at the real state; nothing is cached between calls.
pub trait BlockDevice {
    /// The `dev_type` this device implements.
    fn dev_type(&self) -> &'static str;

    /// Creates the device with `size_mib` MiB (children first, for DRBD).
    fn create(&self, size_mib: u64) -> Result<(), StorageError>;

    /// Removes the device; a device that does not exist is not an error.
    fn remove(&self) -> Result<(), StorageError>;

    /// Whether the device exists on this node (Ganeti's `Attach`).
    fn exists(&self) -> Result<bool, StorageError>;

    /// Makes the device usable and says how to open it.
    fn assemble(&self) -> Result<Access, StorageError>;

    /// Stops using the device (a no-op for most types).
    fn shutdown(&self) -> Result<(), StorageError>;

    /// Grows the device by `amount_mib`. `current_size_mib` is the size the
    /// master records (ExtStorage passes it to the provider).
    fn grow(
        &self,
        current_size_mib: u64,
        amount_mib: u64,
        mode: GrowMode,
        layer: GrowLayer,
    ) -> Result<(), StorageError>;

    /// The actual size in bytes.
    fn size_bytes(&self) -> Result<u64, StorageError>;

    /// The device's status; the device must exist.
    fn status(&self) -> Result<DeviceStatus, StorageError>;

    /// Makes the assembled device ready for I/O on the instance's primary
    /// node (Ganeti's `Open`: DRBD becomes primary); a no-op elsewhere.
    fn open(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Records `text` (the owning instance) with the device where the type
    /// can (LVM tags, ExtStorage `setinfo`); Ganeti's `SetInfo`.
    fn set_info(&self, text: &str) -> Result<(), StorageError> {
        let _ = text;
        Ok(())
    }
}

/// The device for `disk`, with its `logical_id` decoded. Nothing is
/// touched yet; external programs run through `runner`.
pub fn for_disk<'a>(
    disk: &DiskSpec,
    paths: &Paths,
    runner: &'a dyn Runner,
) -> Result<Box<dyn BlockDevice + 'a>, StorageError> {
    let dev: Box<dyn BlockDevice + 'a> = match disk.dev_type.as_str() {
        "file" => Box::new(file::FileDevice::new(
            disk,
            paths,
            runner,
            file::FileKind::Local,
        )?),
        "sharedfile" => Box::new(file::FileDevice::new(
            disk,
            paths,
            runner,
            file::FileKind::Shared,
        )?),
        "blockdev" => Box::new(blockdev::AdoptedDevice::new(disk)?),
        "ext" => Box::new(ext::ExtDevice::new(disk, paths, runner)?),
        "plain" => Box::new(lvm::LogicalVolume::new(disk, runner)?),
        "drbd" => Box::new(drbd::Drbd8::new(disk, paths, runner)?),
        other => {
            return Err(StorageError::Unsupported {
                disk: disk_label(disk),
                dev_type: other.to_string(),
            })
        }
    };
    Ok(dev)
}

/// How a disk is named in messages: its iv_name and UUID.
pub fn disk_label(disk: &DiskSpec) -> String {
    if disk.iv_name.is_empty() {
        disk.uuid.clone()
    } else {
        format!("{} ({})", disk.iv_name, disk.uuid)
    }
}

/// `logical_id` as a list of exactly `n` elements.
fn id_list(disk: &DiskSpec, n: usize) -> Result<&[serde_json::Value], StorageError> {
    match disk.logical_id.as_array() {
        Some(items) if items.len() == n => Ok(items),
        Some(items) => Err(bad_id(
            disk,
            format!("expected {n} elements, got {}", items.len()),
        )),
        None => Err(bad_id(
            disk,
            format!("expected a list, got {}", disk.logical_id),
        )),
    }
}

/// Element `i` of `logical_id` as a non-empty string.
fn id_str(disk: &DiskSpec, items: &[serde_json::Value], i: usize) -> Result<String, StorageError> {
    match items.get(i).and_then(|v| v.as_str()) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(bad_id(
            disk,
            format!("element {i} must be a non-empty string"),
        )),
    }
}

/// Element `i` of `logical_id` as an unsigned integer.
fn id_u64(disk: &DiskSpec, items: &[serde_json::Value], i: usize) -> Result<u64, StorageError> {
    items
        .get(i)
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad_id(disk, format!("element {i} must be a non-negative integer")))
}

fn bad_id(disk: &DiskSpec, reason: String) -> StorageError {
    StorageError::BadLogicalId {
        disk: disk_label(disk),
        dev_type: disk.dev_type.clone(),
        reason,
    }
}

/// A disk parameter as text (strings as they are, numbers and booleans
/// printed), or `None` when absent or null.
fn param_text(disk: &DiskSpec, name: &str) -> Option<String> {
    match disk.params.get(name)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn run_tool(
    runner: &dyn Runner,
    cmd: &crate::sys::cmd::Command,
    action: impl FnOnce() -> String,
) -> Result<crate::sys::cmd::Output, StorageError> {
    runner.run(cmd).map_err(|source| StorageError::Command {
        action: action(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Disk specs for the storage tests.
    use crate::rpc::proto::DiskSpec;

    /// A disk of `dev_type` with `logical_id`, 100 MiB, no params.
    pub fn disk(dev_type: &str, logical_id: serde_json::Value) -> DiskSpec {
        DiskSpec {
            uuid: "d1-uuid".into(),
            name: Some("data".into()),
            iv_name: "disk/0".into(),
            dev_type: dev_type.into(),
            logical_id,
            size_mib: 100,
            mode: "rw".into(),
            params: Default::default(),
            children: Vec::new(),
        }
    }

    /// A fresh temp directory for one test (removed first if left over).
    pub fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ganeti-storage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::disk;
    use super::*;
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    #[test]
    fn refuses_unknown_and_diskless_types() {
        let r = RecordingRunner::new();
        let p = Paths::production();
        for t in ["diskless", "rbd", "gluster", "nonsense"] {
            let err = for_disk(&disk(t, json!([])), &p, &r).err().unwrap();
            assert!(
                matches!(err, StorageError::Unsupported { ref dev_type, .. } if dev_type == t),
                "{err}"
            );
            assert!(err.to_string().contains("disk/0"), "{err}");
        }
    }

    #[test]
    fn logical_id_shapes_are_checked() {
        let r = RecordingRunner::new();
        let p = Paths::production();
        let cases = [
            ("file", json!(["loop"])),
            ("file", json!("loop")),
            ("sharedfile", json!(["loop", 3])),
            ("blockdev", json!(["auto", "/dev/sda"])),
            ("ext", json!(["prov"])),
            ("plain", json!(["xenvg", ""])),
            ("plain", json!(["xenvg", "a/b"])),
            ("drbd", json!(["a", "b", 11000, 0, 1])),
            ("drbd", json!(["a", "b", "port", 0, 1, "s"])),
        ];
        for (t, id) in cases {
            let err = for_disk(&disk(t, id.clone()), &p, &r).err();
            assert!(
                matches!(err, Some(StorageError::BadLogicalId { .. })),
                "{t} {id}: {err:?}"
            );
        }
        assert!(r.calls().is_empty(), "decoding runs nothing");
    }
}
