//! The KVM hypervisor: QEMU processes with a QMP socket each.

pub mod qmp;

/// The hypervisor's name.
pub const NAME: &str = "kvm";
