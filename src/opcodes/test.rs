//! Opcodes that exist for testing the job queue, locking and allocators.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::{
    Dict, DiskTemplate, Hypervisor, IAllocatorDirection, IAllocatorMode, NodeEvacMode,
};
use serde_json::Value;

opcode! {
    /// Sleeps for a while on the master and/or nodes (testing the queue and locks).
    OpTestDelay = "OP_TEST_DELAY", summary: duration {
        /// How long to sleep, in seconds; must be greater than zero. Required.
        duration: f64 = required, check positive;
        /// Also sleep on the master. Default: `true`.
        on_master: bool = (true);
        /// Names of the nodes to sleep on. Default: empty list.
        on_nodes: Vec<String> = (Vec::new()), check non_empty;
        /// UUIDs of the nodes to sleep on (filled in by the master). Default: none.
        on_node_uuids: Option<Vec<String>> = (None), check non_empty;
        /// How many times to repeat the sleep. Default: `0`.
        repeat: u64 = (0);
        /// Whether the sleep may be interrupted. Default: `false`.
        interruptible: bool = (false);
        /// Take no locks while sleeping. Default: `true`.
        no_locks: bool = (true);
    }
}

opcode! {
    /// Runs an instance allocator request, for testing.
    OpTestAllocator = "OP_TEST_ALLOCATOR", summary: iallocator {
        /// Whether to run the allocator (`out`) or just build its input (`in`). Required.
        direction: IAllocatorDirection = required;
        /// Allocator request type. Required.
        mode: IAllocatorMode = required;
        /// Instance name for the allocator request. Required.
        name: String = required, check non_empty;
        /// NICs of the instance to allocate. Default: none.
        nics: Option<Vec<Dict>> = (None), check nic_params;
        /// Disks of the instance to allocate. Default: none.
        disks: Option<Vec<Value>> = (None);
        /// Hypervisor to use. Default: none.
        hypervisor: Option<Hypervisor> = (None);
        /// Name of the instance allocator to choose nodes with. Default: none.
        iallocator: Option<String> = (None), check non_empty;
        /// Tags of the instance to allocate. Default: empty list.
        tags: Vec<String> = (Vec::new()), check non_empty;
        /// Memory size, in MiB. Default: none.
        memory: Option<u64> = (None);
        /// Number of virtual CPUs. Default: none.
        vcpus: Option<u64> = (None);
        /// Operating system name. Default: none.
        os: Option<String> = (None), check non_empty;
        /// Disk layout of the instance. Default: none.
        disk_template: Option<DiskTemplate> = (None);
        /// Instances for a multi-allocation request. Default: none.
        instances: Option<Vec<String>> = (None), check non_empty;
        /// Which instances to evacuate. Default: none.
        evac_mode: Option<NodeEvacMode> = (None);
        /// Node groups to move instances to. Default: none.
        target_groups: Option<Vec<String>> = (None), check non_empty;
        /// Number of spindles used. Default: `1`.
        spindle_use: u64 = (1);
        /// Number of instances to allocate. Default: `1`.
        count: u64 = (1);
        /// Node group for the request. Default: none.
        group_name: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Exercises job queue notifications and logging, for testing.
    OpTestJqueue = "OP_TEST_JQUEUE", summary: - {
        /// Notify while waiting for locks, for testing. Default: `false`.
        notify_waitlock: bool = (false);
        /// Notify when execution starts, for testing. Default: `false`.
        notify_exec: bool = (false);
        /// Messages to send to the job log, for testing. Default: empty list.
        log_messages: Vec<String> = (Vec::new());
        /// Make the opcode fail. Default: `false`.
        fail: bool = (false);
    }
}

opcode! {
    /// Carries secret OS parameters, for testing their handling.
    OpTestOsParams = "OP_TEST_OS_PARAMS", summary: - {
        /// Secret OS parameters (never written to disk). Default: none.
        osparams_secret: Option<Dict> = (None);
    }
}

opcode! {
    /// Returns a given result or fails on request, for testing.
    OpTestDummy = "OP_TEST_DUMMY", summary: - {
        /// Value to return as the opcode result. Default: none.
        result: Value = (Value::Null);
        /// Messages to log. Default: none.
        messages: Value = (Value::Null);
        /// Make the opcode fail. Default: none.
        fail: Value = (Value::Null);
        /// Jobs to submit. Default: none.
        submit_jobs: Value = (Value::Null);
    }
}
