//! Daemon scaffolding shared by every daemon, and the daemons themselves.

pub mod daemon_util;
pub mod masterd;
