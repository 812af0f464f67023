//! Instance exports (`gnt-backup`).
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::ExportMode;
use serde_json::Value;

opcode! {
    /// Prepares an instance export (remote exports need keys first).
    OpBackupPrepare = "OP_BACKUP_PREPARE", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Export mode. Required.
        mode: ExportMode = required;
    }
}

opcode! {
    /// Exports an instance to a node or to a remote cluster.
    OpBackupExport = "OP_BACKUP_EXPORT", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Compression tool used for the data transfer. Default: `"none"`.
        compress: String = (String::from("none"));
        /// How long to wait for the instance to shut down, in seconds. Default: `120`.
        shutdown_timeout: u64 = (120);
        /// Target node, or the remote export destination. Required.
        target_node: Value = required, check export_target;
        /// Target node UUID (filled in by the master). Default: none.
        target_node_uuid: Option<String> = (None), check non_empty;
        /// Shut the instance down before exporting. Default: `true`.
        shutdown: bool = (true);
        /// Remove the instance after exporting. Default: `false`.
        remove_instance: bool = (false);
        /// Do not fail if removing the instance afterwards fails. Default: `false`.
        ignore_remove_failures: bool = (false);
        /// Export mode. Default: `"local"`.
        mode: ExportMode = (ExportMode::Local);
        /// Name of the X509 key (remote export). Default: none.
        x509_key_name: Option<Vec<Value>> = (None);
        /// Destination cluster's X509 CA (remote export). Default: none.
        destination_x509_ca: Option<String> = (None), check non_empty;
        /// Zero the free space of the disks before exporting. Default: `false`.
        zero_free_space: bool = (false);
        /// Fixed part of the zeroing timeout, in seconds. Default: none.
        zeroing_timeout_fixed: Option<i64> = (None);
        /// Zeroing timeout per MiB of disk, in seconds. Default: none.
        zeroing_timeout_per_mib: Option<f64> = (None);
        /// Sleep long to test interruption, for testing. Default: `false`.
        long_sleep: bool = (false);
    }
}

opcode! {
    /// Removes the exports of an instance.
    OpBackupRemove = "OP_BACKUP_REMOVE", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
    }
}
