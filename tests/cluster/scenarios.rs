//! One module per user-visible capability.

mod cluster_init;
