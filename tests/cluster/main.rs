//! Loopback-cluster tests: nodes are real processes of the built binary,
//! each with its own root under a temp dir (Ganeti's virtual-cluster
//! convention), driven with the same `gnt-*` commands users type.
// An integration-test crate is all test code: it spawns the built binary
// directly, writes fixture files with std::fs, and may unwrap.
#![allow(
    clippy::disallowed_methods,
    clippy::tests_outside_test_module,
    clippy::unwrap_used,
    clippy::cast_possible_truncation
)]

mod harness;
mod scenarios;
