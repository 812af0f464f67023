//! One module per user-visible capability.

mod cluster_init;
mod luxi_python;
