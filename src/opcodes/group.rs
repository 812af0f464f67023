//! Node group operations.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::{AllocPolicy, Dict, DiskTemplate};
use std::collections::BTreeMap;

opcode! {
    /// Finds instances with inactive or degraded disks in one node group.
    OpGroupVerifyDisks = "OP_GROUP_VERIFY_DISKS", summary: group_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
    }
}

opcode! {
    /// Creates a node group.
    OpGroupAdd = "OP_GROUP_ADD", summary: group_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// How the allocator may use this group. Default: none.
        alloc_policy: Option<AllocPolicy> = (None);
        /// Node parameters. Default: none.
        ndparams: Option<Dict> = (None);
        /// Disk parameters, per disk template. Default: none.
        diskparams: Option<BTreeMap<DiskTemplate, Dict>> = (None);
        /// Hypervisor state overrides. Default: none.
        hv_state: Option<Dict> = (None);
        /// Disk state overrides, per storage type. Default: none.
        disk_state: Option<Dict> = (None);
        /// Instance policy. Default: none.
        ipolicy: Option<Dict> = (None);
    }
}

opcode! {
    /// Moves nodes into a node group.
    OpGroupAssignNodes = "OP_GROUP_ASSIGN_NODES", summary: group_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
        /// Nodes to move into the group. Required.
        nodes: Vec<String> = required, check non_empty;
        /// UUIDs of the nodes (filled in by the master). Default: none.
        node_uuids: Option<Vec<String>> = (None), check non_empty;
    }
}

opcode! {
    /// Changes a node group's parameters.
    OpGroupSetParams = "OP_GROUP_SET_PARAMS", summary: group_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// How the allocator may use this group. Default: none.
        alloc_policy: Option<AllocPolicy> = (None);
        /// Node parameters. Default: none.
        ndparams: Option<Dict> = (None);
        /// Disk parameters, per disk template. Default: none.
        diskparams: Option<BTreeMap<DiskTemplate, Dict>> = (None);
        /// Hypervisor state overrides. Default: none.
        hv_state: Option<Dict> = (None);
        /// Disk state overrides, per storage type. Default: none.
        disk_state: Option<Dict> = (None);
        /// Instance policy. Default: none.
        ipolicy: Option<Dict> = (None);
    }
}

opcode! {
    /// Removes an empty node group.
    OpGroupRemove = "OP_GROUP_REMOVE", summary: group_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
    }
}

opcode! {
    /// Renames a node group.
    OpGroupRename = "OP_GROUP_RENAME", summary: - {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// New name. Required.
        new_name: String = required, check non_empty;
    }
}

opcode! {
    /// Moves all instances out of a node group.
    OpGroupEvacuate = "OP_GROUP_EVACUATE", summary: group_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// Release locks early to let other jobs proceed. Default: `false`.
        early_release: bool = (false);
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// Node groups to move instances to. Default: none.
        target_groups: Option<Vec<String>> = (None), check non_empty;
        /// Evacuate instances one at a time. Default: `false`.
        sequential: bool = (false);
        /// Fail over instead of migrating. Default: `false`.
        force_failover: bool = (false);
    }
}
