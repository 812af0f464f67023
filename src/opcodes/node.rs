//! Node operations: add, remove, modify, storage, evacuation, out-of-band commands.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::{Dict, MigrationMode, NodeEvacMode, OobCommand, StorageType};

opcode! {
    /// Runs an out-of-band command (power, health) on nodes.
    OpOobCommand = "OP_OOB_COMMAND", summary: - {
        /// Names of the nodes. Default: empty list.
        node_names: Vec<String> = (Vec::new()), check non_empty;
        /// UUIDs of the nodes (filled in by the master). Default: none.
        node_uuids: Option<Vec<String>> = (None), check non_empty;
        /// Out-of-band command to run. Required.
        command: OobCommand = required;
        /// Timeout for the out-of-band helper, in seconds. Default: `60`.
        timeout: i64 = (60);
        /// Do not check the node's OOB status. Default: `false`.
        ignore_status: bool = (false);
        /// Delay between powering nodes, in seconds. Default: `2.0`.
        power_delay: f64 = (2.0);
    }
}

opcode! {
    /// Runs a whitelisted restricted command on nodes.
    OpRestrictedCommand = "OP_RESTRICTED_COMMAND", summary: - {
        /// Take locks for a consistent answer. Default: `false`.
        use_locking: bool = (false);
        /// Names of the nodes. Required.
        nodes: Vec<String> = required, check non_empty;
        /// UUIDs of the nodes (filled in by the master). Default: none.
        node_uuids: Option<Vec<String>> = (None), check non_empty;
        /// Name of the restricted command. Required.
        command: String = required, check non_empty;
    }
}

opcode! {
    /// Removes a node from the cluster.
    OpNodeRemove = "OP_NODE_REMOVE", summary: node_name {
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// UUID of the node (filled in by the master). Default: none.
        node_uuid: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Adds (or re-adds) a node to the cluster.
    OpNodeAdd = "OP_NODE_ADD", summary: node_name {
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// Hypervisor state overrides. Default: none.
        hv_state: Option<Dict> = (None);
        /// Disk state overrides, per storage type. Default: none.
        disk_state: Option<Dict> = (None);
        /// Primary IP address of the node. Default: none.
        primary_ip: Option<String> = (None), check non_empty;
        /// Secondary (replication) IP address. Default: none.
        secondary_ip: Option<String> = (None), check non_empty;
        /// Re-add a node that was in the cluster before. Default: `false`.
        readd: bool = (false);
        /// Node group to add the node to. Default: none.
        group: Option<String> = (None), check non_empty;
        /// Whether the node may become master. Default: none.
        master_capable: Option<bool> = (None);
        /// Whether the node may host instances. Default: none.
        vm_capable: Option<bool> = (None);
        /// Node parameters. Default: none.
        ndparams: Option<Dict> = (None);
        /// Set up SSH keys and daemons on the node. Default: `false`.
        node_setup: bool = (false);
    }
}

opcode! {
    /// Lists logical volumes on nodes.
    OpNodeQueryvols = "OP_NODE_QUERYVOLS", summary: - {
        /// Field names requested. Required.
        output_fields: Vec<String> = required, check non_empty;
        /// Names of the nodes. Default: empty list.
        nodes: Vec<String> = (Vec::new()), check non_empty;
    }
}

opcode! {
    /// Lists storage units on nodes.
    OpNodeQueryStorage = "OP_NODE_QUERY_STORAGE", summary: - {
        /// Field names requested. Required.
        output_fields: Vec<String> = required, check non_empty;
        /// Type of storage. Default: none.
        storage_type: Option<StorageType> = (None);
        /// Names of the nodes. Default: empty list.
        nodes: Vec<String> = (Vec::new()), check non_empty;
        /// Storage unit to query. Default: none.
        name: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Changes the parameters of a storage unit on a node.
    OpNodeModifyStorage = "OP_NODE_MODIFY_STORAGE", summary: node_name {
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// UUID of the node (filled in by the master). Default: none.
        node_uuid: Option<String> = (None), check non_empty;
        /// Type of storage. Required.
        storage_type: StorageType = required;
        /// Storage unit to modify. Default: none.
        name: Option<String> = (None), check non_empty;
        /// Storage unit fields to change. Required.
        changes: Dict = required;
    }
}

opcode! {
    /// Repairs a storage unit on a node.
    OpRepairNodeStorage = "OP_REPAIR_NODE_STORAGE", summary: node_name {
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// UUID of the node (filled in by the master). Default: none.
        node_uuid: Option<String> = (None), check non_empty;
        /// Type of storage. Required.
        storage_type: StorageType = required;
        /// Storage unit to repair. Default: none.
        name: Option<String> = (None), check non_empty;
        /// Proceed even if disks are not in sync. Default: `false`.
        ignore_consistency: bool = (false);
    }
}

opcode! {
    /// Changes a node's flags and parameters (`gnt-node modify`).
    OpNodeSetParams = "OP_NODE_SET_PARAMS", summary: node_name {
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// UUID of the node (filled in by the master). Default: none.
        node_uuid: Option<String> = (None), check non_empty;
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
        /// Hypervisor state overrides. Default: none.
        hv_state: Option<Dict> = (None);
        /// Disk state overrides, per storage type. Default: none.
        disk_state: Option<Dict> = (None);
        /// Make (or unmake) the node a master candidate. Default: none.
        master_candidate: Option<bool> = (None);
        /// Mark (or unmark) the node as offline. Default: none.
        offline: Option<bool> = (None);
        /// Mark (or unmark) the node as drained. Default: none.
        drained: Option<bool> = (None);
        /// Promote other nodes to master candidate if needed. Default: `false`.
        auto_promote: bool = (false);
        /// Whether the node may become master. Default: none.
        master_capable: Option<bool> = (None);
        /// Whether the node may host instances. Default: none.
        vm_capable: Option<bool> = (None);
        /// Secondary (replication) IP address. Default: none.
        secondary_ip: Option<String> = (None), check non_empty;
        /// Node parameters. Default: none.
        ndparams: Option<Dict> = (None);
        /// Record whether the node is powered. Default: none.
        powered: Option<bool> = (None);
    }
}

opcode! {
    /// Power-cycles a node.
    OpNodePowercycle = "OP_NODE_POWERCYCLE", summary: node_name {
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// UUID of the node (filled in by the master). Default: none.
        node_uuid: Option<String> = (None), check non_empty;
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
    }
}

opcode! {
    /// Migrates all primary instances off a node.
    OpNodeMigrate = "OP_NODE_MIGRATE", summary: node_name {
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// UUID of the node (filled in by the master). Default: none.
        node_uuid: Option<String> = (None), check non_empty;
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
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Moves instances off a node (secondaries, primaries or both).
    OpNodeEvacuate = "OP_NODE_EVACUATE", summary: node_name {
        /// Release locks early to let other jobs proceed. Default: `false`.
        early_release: bool = (false);
        /// Name of the node. Required.
        node_name: String = required, check non_empty;
        /// UUID of the node (filled in by the master). Default: none.
        node_uuid: Option<String> = (None), check non_empty;
        /// New secondary node name. Default: none.
        remote_node: Option<String> = (None), check non_empty;
        /// New secondary node UUID (filled in by the master). Default: none.
        remote_node_uuid: Option<String> = (None), check non_empty;
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// Which instances to move off the node. Required.
        mode: NodeEvacMode = required;
        /// Ignore soft allocator errors. Default: none.
        ignore_soft_errors: Option<bool> = (None);
    }
}
