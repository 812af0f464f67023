//! Cluster-wide operations: verification, configuration, renames, crypto renewal.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::{DdmAction, Dict, DiskTemplate, Hypervisor, SshKeyType};
use std::collections::BTreeMap;

opcode! {
    /// Runs the post-init hooks after the cluster was created.
    OpClusterPostInit = "OP_CLUSTER_POST_INIT", summary: - {
    }
}

opcode! {
    /// Destroys the cluster (only the master is left to clean up).
    OpClusterDestroy = "OP_CLUSTER_DESTROY", summary: - {
    }
}

opcode! {
    /// Returns cluster-wide information (`gnt-cluster info`).
    OpClusterQuery = "OP_CLUSTER_QUERY", summary: - {
    }
}

opcode! {
    /// Verifies the whole cluster by submitting one job per node group.
    OpClusterVerify = "OP_CLUSTER_VERIFY", summary: - {
        /// Pretend verification errors happen, for testing. Default: `false`.
        debug_simulate_errors: bool = (false);
        /// Report errors with machine-readable codes. Default: `false`.
        error_codes: bool = (false);
        /// Optional verification checks to skip. Default: empty list.
        skip_checks: Vec<String> = (Vec::new()), check verify_optional_checks;
        /// Verification error codes to report as warnings only. Default: empty list.
        ignore_errors: Vec<String> = (Vec::new()), check cv_error_codes;
        /// Print more details. Default: `false`.
        verbose: bool = (false);
        /// Only verify this node group. Default: none.
        group_name: Option<String> = (None), check non_empty;
        /// Also look for unexpected files. Default: `false`.
        verify_clutter: bool = (false);
    }
}

opcode! {
    /// Verifies the cluster-wide configuration only.
    OpClusterVerifyConfig = "OP_CLUSTER_VERIFY_CONFIG", summary: - {
        /// Pretend verification errors happen, for testing. Default: `false`.
        debug_simulate_errors: bool = (false);
        /// Report errors with machine-readable codes. Default: `false`.
        error_codes: bool = (false);
        /// Verification error codes to report as warnings only. Default: empty list.
        ignore_errors: Vec<String> = (Vec::new()), check cv_error_codes;
        /// Print more details. Default: `false`.
        verbose: bool = (false);
    }
}

opcode! {
    /// Verifies the nodes and instances of one node group.
    OpClusterVerifyGroup = "OP_CLUSTER_VERIFY_GROUP", summary: group_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// Pretend verification errors happen, for testing. Default: `false`.
        debug_simulate_errors: bool = (false);
        /// Report errors with machine-readable codes. Default: `false`.
        error_codes: bool = (false);
        /// Optional verification checks to skip. Default: empty list.
        skip_checks: Vec<String> = (Vec::new()), check verify_optional_checks;
        /// Verification error codes to report as warnings only. Default: empty list.
        ignore_errors: Vec<String> = (Vec::new()), check cv_error_codes;
        /// Print more details. Default: `false`.
        verbose: bool = (false);
        /// Also look for unexpected files. Default: `false`.
        verify_clutter: bool = (false);
    }
}

opcode! {
    /// Finds instances with inactive or degraded disks (one job per group).
    OpClusterVerifyDisks = "OP_CLUSTER_VERIFY_DISKS", summary: - {
        /// Name of the node group. Default: none.
        group_name: Option<String> = (None), check non_empty;
    }
}

opcode! {
    /// Re-reads disk sizes from the nodes and fixes the recorded ones.
    OpClusterRepairDiskSizes = "OP_CLUSTER_REPAIR_DISK_SIZES", summary: - {
        /// Instances to check; empty for all. Default: empty list.
        instances: Vec<String> = (Vec::new()), check non_empty;
    }
}

opcode! {
    /// Returns selected cluster configuration values.
    OpClusterConfigQuery = "OP_CLUSTER_CONFIG_QUERY", summary: - {
        /// Field names requested. Required.
        output_fields: Vec<String> = required, check non_empty;
    }
}

opcode! {
    /// Renames the cluster.
    OpClusterRename = "OP_CLUSTER_RENAME", summary: name {
        /// New cluster name. Required.
        name: String = required, check non_empty;
    }
}

opcode! {
    /// Changes cluster parameters (`gnt-cluster modify`).
    OpClusterSetParams = "OP_CLUSTER_SET_PARAMS", summary: - {
        /// Force the operation past safety checks. Default: `false`.
        force: bool = (false);
        /// Hypervisor state overrides. Default: none.
        hv_state: Option<Dict> = (None);
        /// Disk state overrides, per storage type. Default: none.
        disk_state: Option<Dict> = (None);
        /// Volume group for LVM disks. Default: none.
        vg_name: Option<String> = (None);
        /// Hypervisors the cluster may use. Default: none.
        enabled_hypervisors: Option<Vec<Hypervisor>> = (None);
        /// Hypervisor parameters to set. Default: none.
        hvparams: Option<BTreeMap<String, Dict>> = (None);
        /// Backend parameters (memory, vcpus, ...) to set. Default: none.
        beparams: Option<Dict> = (None);
        /// Hypervisor parameters per OS. Default: none.
        os_hvp: Option<BTreeMap<String, Dict>> = (None);
        /// OS parameters. Default: none.
        osparams: Option<BTreeMap<String, Dict>> = (None);
        /// Private OS parameters per OS. Default: none.
        osparams_private_cluster: Option<BTreeMap<String, Dict>> = (None);
        /// Disk parameters, per disk template. Default: none.
        diskparams: Option<BTreeMap<DiskTemplate, Dict>> = (None);
        /// Target number of master candidates. Default: none.
        candidate_pool_size: Option<u64> = (None), check positive;
        /// Maximum number of jobs run at the same time. Default: none.
        max_running_jobs: Option<u64> = (None), check positive;
        /// Maximum number of jobs tracked by the queue. Default: none.
        max_tracked_jobs: Option<u64> = (None), check positive;
        /// UID ranges `[start, end]` (inclusive) for instance processes. Default: none.
        uid_pool: Option<Vec<(i64, i64)>> = (None);
        /// UID ranges `[start, end]` (inclusive) to add to the pool. Default: none.
        add_uids: Option<Vec<(i64, i64)>> = (None);
        /// UID ranges `[start, end]` (inclusive) to remove from the pool. Default: none.
        remove_uids: Option<Vec<(i64, i64)>> = (None);
        /// Let the watcher shut down unwanted instances. Default: none.
        maintain_node_health: Option<bool> = (None);
        /// Wipe new disks before use. Default: none.
        prealloc_wipe_disks: Option<bool> = (None);
        /// Cluster NIC parameters. Default: none.
        nicparams: Option<Dict> = (None), check nic_params;
        /// Node parameters. Default: none.
        ndparams: Option<Dict> = (None);
        /// Instance policy. Default: none.
        ipolicy: Option<Dict> = (None);
        /// DRBD usermode helper; empty to disable the check. Default: none.
        drbd_helper: Option<String> = (None);
        /// Cluster default instance allocator. Default: none.
        default_iallocator: Option<String> = (None);
        /// Parameters of the default instance allocator. Default: none.
        default_iallocator_params: Option<Dict> = (None);
        /// Prefix for generated MAC addresses. Default: none.
        mac_prefix: Option<String> = (None), check non_empty;
        /// Network device carrying the master IP. Default: none.
        master_netdev: Option<String> = (None);
        /// Netmask of the master IP, as a prefix length. Default: none.
        master_netmask: Option<u64> = (None);
        /// Logical volumes that verification ignores. Default: none.
        reserved_lvs: Option<Vec<String>> = (None), check non_empty;
        /// Changes to the list of OSes hidden from listings. Default: none.
        hidden_os: Option<Vec<(DdmAction, String)>> = (None);
        /// Changes to the list of OSes that may not be installed. Default: none.
        blacklisted_os: Option<Vec<(DdmAction, String)>> = (None);
        /// Use the external master IP setup script. Default: none.
        use_external_mip_script: Option<bool> = (None);
        /// Disk templates the cluster may use. Default: none.
        enabled_disk_templates: Option<Vec<DiskTemplate>> = (None);
        /// Whether Ganeti maintains `/etc/hosts`. Default: none.
        modify_etc_hosts: Option<bool> = (None);
        /// Directory for file-based disks. Default: none.
        file_storage_dir: Option<String> = (None);
        /// Directory for shared-file disks. Default: none.
        shared_file_storage_dir: Option<String> = (None);
        /// Directory for Gluster-backed disks. Default: none.
        gluster_storage_dir: Option<String> = (None);
        /// Image for the helper VM that installs OSes. Default: none.
        install_image: Option<String> = (None);
        /// Network used for instance communication. Default: none.
        instance_communication_network: Option<String> = (None);
        /// Image for the helper VM that zeroes disks. Default: none.
        zeroing_image: Option<String> = (None);
        /// Compression tools allowed for moves and exports. Default: none.
        compression_tools: Option<Vec<String>> = (None), check non_empty;
        /// Allow users to shut down instances from inside. Default: none.
        enabled_user_shutdown: Option<bool> = (None);
        /// Enable (true) or disable (false) data collectors by name. Default: none.
        enabled_data_collectors: Option<BTreeMap<String, bool>> = (None);
        /// Run interval of each data collector, in microseconds. Default: none.
        data_collector_interval: Option<BTreeMap<String, i64>> = (None);
    }
}

opcode! {
    /// Pushes the configuration and ancillary files to all nodes.
    OpClusterRedistConf = "OP_CLUSTER_REDIST_CONF", summary: - {
    }
}

opcode! {
    /// Brings up the master IP on the master node.
    OpClusterActivateMasterIp = "OP_CLUSTER_ACTIVATE_MASTER_IP", summary: - {
    }
}

opcode! {
    /// Takes down the master IP on the master node.
    OpClusterDeactivateMasterIp = "OP_CLUSTER_DEACTIVATE_MASTER_IP", summary: - {
    }
}

opcode! {
    /// Renews cluster certificates and/or SSH keys.
    OpClusterRenewCrypto = "OP_CLUSTER_RENEW_CRYPTO", summary: - {
        /// Renew the node SSL certificates. Default: `false`.
        node_certificates: bool = (false);
        /// Renew the cluster SSH keys. Default: `false`.
        renew_ssh_keys: bool = (false);
        /// Type of the new SSH keys. Default: none.
        ssh_key_type: Option<SshKeyType> = (None);
        /// Size of the new SSH keys, in bits. Default: none.
        ssh_key_bits: Option<u64> = (None), check positive;
        /// Print more details. Default: `false`.
        verbose: bool = (false);
        /// Enable debug output. Default: `false`.
        debug: bool = (false);
    }
}
