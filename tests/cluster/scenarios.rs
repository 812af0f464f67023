//! One module per user-visible capability.

mod cluster_init;
mod confd;
mod instance_moves;
mod instances;
mod job_queue;
mod listing;
mod luxi_python;
mod multi_node;
