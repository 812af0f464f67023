//! Loopback-cluster tests: nodes are real processes of the built binary,
//! each with its own root under a temp dir (Ganeti's virtual-cluster
//! convention), driven with the same `gnt-*` commands users type.
#![allow(clippy::disallowed_methods)] // tests spawn the built binary directly

mod harness;
mod scenarios;
