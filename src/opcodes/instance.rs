//! Instance operations: life cycle, disks, migration, modification.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::{
    AdminStateSource, Dict, DiskTemplate, FileDriver, Hypervisor, InstanceCreateMode,
    MigrationMode, RebootType, ReplaceDisksMode,
};
use serde_json::Value;

opcode! {
    /// Creates (or imports) an instance.
    OpInstanceCreate = "OP_INSTANCE_CREATE", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// Accept an OS variant that the OS does not list. Default: `false`.
        force_variant: bool = (false);
        /// Wait until disks are in sync. Default: `true`.
        wait_for_sync: bool = (true);
        /// Check that the name resolves. Default: `true`.
        name_check: bool = (true);
        /// Ignore instance policy violations. Default: `false`.
        ignore_ipolicy: bool = (false);
        /// Lock only the nodes that are free. Default: `false`.
        opportunistic_locking: bool = (false);
        /// Backend parameters (memory, vcpus, ...) to set. Default: empty object.
        beparams: Dict = (Dict::new());
        /// Disk specifications (size, mode, ...). Required.
        disks: Vec<Dict> = required, check disk_params;
        /// Disk layout of the instance. Default: none.
        disk_template: Option<DiskTemplate> = (None);
        /// Name of the node group. Default: none.
        group_name: Option<String> = (None), check non_empty;
        /// Loop driver for file-based disks. Default: none.
        file_driver: Option<FileDriver> = (None);
        /// Directory for file-based disks. Default: none.
        file_storage_dir: Option<String> = (None), check non_empty;
        /// Hypervisor parameters to set. Default: empty object.
        hvparams: Dict = (Dict::new());
        /// Hypervisor to use. Default: none.
        hypervisor: Option<Hypervisor> = (None);
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// Drop parameters that equal the cluster defaults. Default: `false`.
        identify_defaults: bool = (false);
        /// Check that the instance IP is not already in use. Default: `true`.
        ip_check: bool = (true);
        /// Check for IP address conflicts with the network. Default: `true`.
        conflicts_check: bool = (true);
        /// Create, import or remote-import. Required.
        mode: InstanceCreateMode = required;
        /// NIC specifications. Required.
        nics: Vec<Dict> = required, check nic_params;
        /// Do not run the OS create scripts. Default: none.
        no_install: Option<bool> = (None);
        /// OS parameters. Default: empty object.
        osparams: Dict = (Dict::new());
        /// Private OS parameters (hidden in logs and listings). Default: none.
        osparams_private: Option<Dict> = (None);
        /// Secret OS parameters (never written to disk). Default: none.
        osparams_secret: Option<Dict> = (None);
        /// Operating system to install. Default: none.
        os_type: Option<String> = (None), check non_empty;
        /// Primary node name. Default: none.
        pnode: Option<String> = (None), check non_empty;
        /// Primary node UUID (filled in by the master). Default: none.
        pnode_uuid: Option<String> = (None), check non_empty;
        /// Secondary node name. Default: none.
        snode: Option<String> = (None), check non_empty;
        /// Secondary node UUID (filled in by the master). Default: none.
        snode_uuid: Option<String> = (None), check non_empty;
        /// Handshake from the source cluster (remote import). Default: none.
        source_handshake: Option<Vec<Value>> = (None);
        /// Instance name on the source cluster (remote import). Default: none.
        source_instance_name: Option<String> = (None), check non_empty;
        /// How long the source instance had to shut down, in seconds (remote import). Default: `120`.
        source_shutdown_timeout: u64 = (120);
        /// Source cluster's X509 CA (remote import). Default: none.
        source_x509_ca: Option<String> = (None), check non_empty;
        /// Node holding the export to import. Default: none.
        src_node: Option<String> = (None), check non_empty;
        /// UUID of the node holding the export (filled in by the master). Default: none.
        src_node_uuid: Option<String> = (None), check non_empty;
        /// Path of the export to import. Default: none.
        src_path: Option<String> = (None), check non_empty;
        /// Compression tool used for the data transfer. Default: `"none"`.
        compress: String = (String::from("none"));
        /// Start the instance after creating it. Default: `true`.
        start: bool = (true);
        /// Only reserve the resources; do not create the instance yet. Default: `false`.
        forthcoming: bool = (false);
        /// Commit a forthcoming instance (turn the reservation into a real one). Default: `false`.
        commit: bool = (false);
        /// Tags of the new instance. Default: empty list.
        tags: Vec<String> = (Vec::new()), check non_empty;
        /// Enable the instance communication NIC. Default: `false`.
        instance_communication: bool = (false);
        /// Startup timeout of the helper VM, in seconds. Default: none.
        helper_startup_timeout: Option<i64> = (None);
        /// Shutdown timeout of the helper VM, in seconds. Default: none.
        helper_shutdown_timeout: Option<i64> = (None);
    }
}

opcode! {
    /// Allocates and creates several instances in one go.
    OpInstanceMultiAlloc = "OP_INSTANCE_MULTI_ALLOC", summary: - {
        /// Lock only the nodes that are free. Default: `false`.
        opportunistic_locking: bool = (false);
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// The `OP_INSTANCE_CREATE` opcodes to allocate together. Default: empty list.
        instances: Vec<Value> = (Vec::new()), check instance_creates;
    }
}

opcode! {
    /// Reinstalls the OS of an instance.
    OpInstanceReinstall = "OP_INSTANCE_REINSTALL", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Accept an OS variant that the OS does not list. Default: `false`.
        force_variant: bool = (false);
        /// Operating system to install. Default: none.
        os_type: Option<String> = (None), check non_empty;
        /// OS parameters. Default: none.
        osparams: Option<Dict> = (None);
        /// Private OS parameters (hidden in logs and listings). Default: none.
        osparams_private: Option<Dict> = (None);
        /// Secret OS parameters (never written to disk). Default: none.
        osparams_secret: Option<Dict> = (None);
    }
}

opcode! {
    /// Removes an instance and its disks.
    OpInstanceRemove = "OP_INSTANCE_REMOVE", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// How long to wait for the instance to shut down, in seconds. Default: `120`.
        shutdown_timeout: u64 = (120);
        /// Continue despite errors during removal. Default: `false`.
        ignore_failures: bool = (false);
    }
}

opcode! {
    /// Renames an instance.
    OpInstanceRename = "OP_INSTANCE_RENAME", summary: - {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// New name. Required.
        new_name: String = required, check non_empty;
        /// Check that the name resolves. Default: `true`.
        name_check: bool = (true);
        /// Check that the instance IP is not already in use. Default: `true`.
        ip_check: bool = (true);
    }
}

opcode! {
    /// Starts an instance.
    OpInstanceStartup = "OP_INSTANCE_STARTUP", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
        /// Do not fail because of offline nodes. Default: `false`.
        ignore_offline_nodes: bool = (false);
        /// Hypervisor parameters to set. Default: empty object.
        hvparams: Dict = (Dict::new());
        /// Backend parameters (memory, vcpus, ...) to set. Default: empty object.
        beparams: Dict = (Dict::new());
        /// Do not record the new state in the config. Default: `false`.
        no_remember: bool = (false);
        /// Start the instance paused. Default: `false`.
        startup_paused: bool = (false);
        /// How long to wait for the instance to shut down, in seconds. Default: `120`.
        shutdown_timeout: u64 = (120);
    }
}

opcode! {
    /// Stops an instance.
    OpInstanceShutdown = "OP_INSTANCE_SHUTDOWN", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
        /// Do not fail because of offline nodes. Default: `false`.
        ignore_offline_nodes: bool = (false);
        /// How long to wait for the instance to shut down, in seconds. Default: `120`.
        timeout: u64 = (120);
        /// Do not record the new state in the config. Default: `false`.
        no_remember: bool = (false);
        /// Who asked for the shutdown: the admin or the instance user. Default: none.
        admin_state_source: Option<AdminStateSource> = (None);
    }
}

opcode! {
    /// Reboots an instance.
    OpInstanceReboot = "OP_INSTANCE_REBOOT", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// How long to wait for the instance to shut down, in seconds. Default: `120`.
        shutdown_timeout: u64 = (120);
        /// Do not fail because of secondary node problems. Default: `false`.
        ignore_secondaries: bool = (false);
        /// How to reboot. Required.
        reboot_type: RebootType = required;
    }
}

opcode! {
    /// Replaces the disks of a mirrored instance.
    OpInstanceReplaceDisks = "OP_INSTANCE_REPLACE_DISKS", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Release locks early to let other jobs proceed. Default: `false`.
        early_release: bool = (false);
        /// Ignore instance policy violations. Default: `false`.
        ignore_ipolicy: bool = (false);
        /// Which disks to replace. Required.
        mode: ReplaceDisksMode = required;
        /// Indices of the disks to replace; empty for all. Default: empty list.
        disks: Vec<u64> = (Vec::new()), check disk_index;
        /// New secondary node name. Default: none.
        remote_node: Option<String> = (None), check non_empty;
        /// New secondary node UUID (filled in by the master). Default: none.
        remote_node_uuid: Option<String> = (None), check non_empty;
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Fails an instance over to another node (with a restart).
    OpInstanceFailover = "OP_INSTANCE_FAILOVER", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// How long to wait for the instance to shut down, in seconds. Default: `120`.
        shutdown_timeout: u64 = (120);
        /// Proceed even if disks are not in sync. Default: `false`.
        ignore_consistency: bool = (false);
        /// Target node name. Default: none.
        target_node: Option<String> = (None), check non_empty;
        /// Target node UUID (filled in by the master). Default: none.
        target_node_uuid: Option<String> = (None), check non_empty;
        /// Ignore instance policy violations. Default: `false`.
        ignore_ipolicy: bool = (false);
        /// Clean up after a failed migration instead of migrating. Default: `false`.
        cleanup: bool = (false);
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Live-migrates an instance (or cleans up after a failed migration).
    OpInstanceMigrate = "OP_INSTANCE_MIGRATE", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Migration mode. Default: none.
        mode: Option<MigrationMode> = (None);
        /// Use live migration (obsolete; prefer `mode`). Default: none.
        live: Option<bool> = (None);
        /// Target node name. Default: none.
        target_node: Option<String> = (None), check non_empty;
        /// Target node UUID (filled in by the master). Default: none.
        target_node_uuid: Option<String> = (None), check non_empty;
        /// Whether the memory may be ballooned to make the migration fit. Default: `true`.
        allow_runtime_changes: bool = (true);
        /// Ignore instance policy violations. Default: `false`.
        ignore_ipolicy: bool = (false);
        /// Clean up after a failed migration instead of migrating. Default: `false`.
        cleanup: bool = (false);
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// Fall back to failover if live migration is impossible. Default: `false`.
        allow_failover: bool = (false);
        /// Ignore hypervisor version mismatches between nodes. Default: `false`.
        ignore_hvversions: bool = (false);
    }
}

opcode! {
    /// Moves an instance by copying its disks to another node.
    OpInstanceMove = "OP_INSTANCE_MOVE", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// How long to wait for the instance to shut down, in seconds. Default: `120`.
        shutdown_timeout: u64 = (120);
        /// Ignore instance policy violations. Default: `false`.
        ignore_ipolicy: bool = (false);
        /// Target node name. Required.
        target_node: String = required, check non_empty;
        /// Target node UUID (filled in by the master). Default: none.
        target_node_uuid: Option<String> = (None), check non_empty;
        /// Compression tool used for the data transfer. Default: `"none"`.
        compress: String = (String::from("none"));
        /// Proceed even if disks are not in sync. Default: `false`.
        ignore_consistency: bool = (false);
    }
}

opcode! {
    /// Returns how to connect to an instance's console.
    OpInstanceConsole = "OP_INSTANCE_CONSOLE", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Activates an instance's disks on its nodes.
    OpInstanceActivateDisks = "OP_INSTANCE_ACTIVATE_DISKS", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Do not check the recorded disk sizes. Default: `false`.
        ignore_size: bool = (false);
        /// Wait until disks are in sync. Default: `false`.
        wait_for_sync: bool = (false);
    }
}

opcode! {
    /// Deactivates an instance's disks.
    OpInstanceDeactivateDisks = "OP_INSTANCE_DEACTIVATE_DISKS", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
    }
}

opcode! {
    /// Recreates an instance's disks (possibly on new nodes).
    OpInstanceRecreateDisks = "OP_INSTANCE_RECREATE_DISKS", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Disks to recreate: indices, or `[index, params]` pairs; empty for all. Default: empty list.
        disks: Vec<Value> = (Vec::new()), check recreate_disks;
        /// New nodes for the instance. Default: empty list.
        nodes: Vec<String> = (Vec::new()), check non_empty;
        /// UUIDs of the nodes (filled in by the master). Default: none.
        node_uuids: Option<Vec<String>> = (None), check non_empty;
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Returns detailed data on instances (`gnt-instance info`).
    OpInstanceQueryData = "OP_INSTANCE_QUERY_DATA", summary: - {
        /// Take locks for a consistent answer. Default: `false`.
        use_locking: bool = (false);
        /// Instances to report on; empty for all. Default: empty list.
        instances: Vec<String> = (Vec::new()), check non_empty;
        /// Only report configuration data, do not ask the nodes. Default: `false`.
        static_ ["static"]: bool = (false);
    }
}

opcode! {
    /// Changes an instance's parameters, disks and NICs (`gnt-instance modify`).
    OpInstanceSetParams = "OP_INSTANCE_SET_PARAMS", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
        /// Accept an OS variant that the OS does not list. Default: `false`.
        force_variant: bool = (false);
        /// Ignore instance policy violations. Default: `false`.
        ignore_ipolicy: bool = (false);
        /// NIC changes: `[action, index, params]` entries. Default: empty list.
        nics: Vec<Value> = (Vec::new()), check device_mods;
        /// Disk changes: `[action, index, params]` entries. Default: empty list.
        disks: Vec<Value> = (Vec::new()), check device_mods;
        /// Backend parameters (memory, vcpus, ...) to set. Default: empty object.
        beparams: Dict = (Dict::new());
        /// New runtime memory (balloon), in MiB. Default: none.
        runtime_mem: Option<u64> = (None), check positive;
        /// Hypervisor parameters to set. Default: empty object.
        hvparams: Dict = (Dict::new());
        /// Disk layout of the instance. Default: none.
        disk_template: Option<DiskTemplate> = (None);
        /// ExtStorage provider parameters. Default: empty object.
        ext_params: Dict = (Dict::new());
        /// Loop driver for file-based disks. Default: none.
        file_driver: Option<FileDriver> = (None);
        /// Directory for file-based disks. Default: none.
        file_storage_dir: Option<String> = (None), check non_empty;
        /// New primary node (for non-mirrored instances). Default: none.
        pnode: Option<String> = (None), check non_empty;
        /// Primary node UUID (filled in by the master). Default: none.
        pnode_uuid: Option<String> = (None), check non_empty;
        /// Secondary node for a conversion to DRBD. Default: none.
        remote_node: Option<String> = (None), check non_empty;
        /// New secondary node UUID (filled in by the master). Default: none.
        remote_node_uuid: Option<String> = (None), check non_empty;
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// New operating system name. Default: none.
        os_name: Option<String> = (None), check non_empty;
        /// OS parameters. Default: empty object.
        osparams: Dict = (Dict::new());
        /// Private OS parameters (hidden in logs and listings). Default: none.
        osparams_private: Option<Dict> = (None);
        /// Wait until disks are in sync. Default: `true`.
        wait_for_sync: bool = (true);
        /// Mark (or unmark) the instance as offline. Default: none.
        offline: Option<bool> = (None);
        /// Check for IP address conflicts with the network. Default: `true`.
        conflicts_check: bool = (true);
        /// Hotplug device changes into the running instance. Default: `false`.
        hotplug: bool = (false);
        /// Hotplug if supported, otherwise apply at next restart. Default: `false`.
        hotplug_if_possible: bool = (false);
        /// Enable the instance communication NIC. Default: none.
        instance_communication: Option<bool> = (None);
    }
}

opcode! {
    /// Grows one disk of an instance.
    OpInstanceGrowDisk = "OP_INSTANCE_GROW_DISK", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Wait until disks are in sync. Default: `true`.
        wait_for_sync: bool = (true);
        /// Index of the disk to change. Required.
        disk: u64 = required, check disk_index;
        /// Disk growth (or new size with `absolute`), in MiB. Required.
        amount: u64 = required;
        /// Whether `amount` is the final disk size rather than the growth. Default: `false`.
        absolute: bool = (false);
        /// Ignore instance policy violations. Default: `false`.
        ignore_ipolicy: bool = (false);
    }
}

opcode! {
    /// Moves an instance to another node group.
    OpInstanceChangeGroup = "OP_INSTANCE_CHANGE_GROUP", summary: instance_name {
        /// Name of the instance. Required.
        instance_name: String = required;
        /// UUID of the instance (filled in by the master). Default: none.
        instance_uuid: Option<String> = (None), check non_empty;
        /// Release locks early to let other jobs proceed. Default: `false`.
        early_release: bool = (false);
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// Node groups to move instances to. Default: none.
        target_groups: Option<Vec<String>> = (None), check non_empty;
    }
}
