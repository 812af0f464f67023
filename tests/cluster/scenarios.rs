//! One module per user-visible capability.

mod cluster_init;
mod listing;
mod luxi_python;
