//! Command-line front ends: one module per program, plus what they share.
//!
//! Front ends talk to masterd only through [`crate::luxi`]; they never
//! import the config store or the job machinery (`tests/layering.rs`).
//! `cfgupgrade` and `gnt-cluster init` are the exceptions Ganeti also has:
//! they run before any daemon exists and work on files directly, through
//! [`crate::config`]'s public API.

pub mod cfgupgrade;
pub mod gnt_cluster;
pub mod kv;
