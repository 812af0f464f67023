//! One module per user-visible capability.

mod cluster_init;
mod confd;
mod instance_modify;
mod instance_moves;
mod instances;
mod job_queue;
mod kvm_net;
mod listing;
mod luxi_python;
mod multi_node;
mod transfers;
mod verify_disks;
