//! Hypervisors (node side): the [`Hypervisor`] trait and its backends,
//! `fake` (state records on the node's disk) and `kvm` (QEMU with a QMP
//! socket per instance). Called by `backend::instance` on behalf of noded;
//! never reads the cluster config: parameters arrive filled in the RPC
//! payload ([`crate::rpc::proto::InstanceSpec`]).
//!
//! (Issue 5 contract: the hypervisor helper fills this module.)
