//! ganeti-rs: a Ganeti-compatible cluster virtualization manager, built as one
//! static multicall binary.
//!
//! This file is the architecture map. Every top-level module is listed below
//! with a one-line comment saying what it owns (each module's own `//!` doc
//! says more); `docs/architecture.md` has the picture
//! and the dependency rules that `tests/layering.rs` enforces.
//!
//! Front ends (`cli`, later `daemons::rapi` and `daemons::watcher`) talk to
//! masterd only through [`luxi`]; they never import the config store or the
//! job machinery. The node side (`daemons::noded`, `backend`) never reads the
//! cluster config: whatever it needs arrives in the RPC payload.

#![deny(unsafe_code)]
#![warn(missing_docs)]

// Program table: `argv[0]` → entry function; `ganeti PROGRAM …`; `ganeti --list`.
pub mod applets;
// The node side of each RPC procedure: file pushes, commands, master IP, powercycle.
pub mod backend;
// Work without masterd: `gnt-cluster init`/`destroy`, master failover and masterd start-up votes.
pub mod bootstrap;
// Logical units: the master-side logic of each opcode, run by the job workers.
pub mod cmdlib;
// Command-line front ends: one module per `gnt-*` program plus `cfgupgrade`.
pub mod cli;
// Cluster configuration: objects in Ganeti 3.0's schema, parameter
// inheritance, validation, the single writer, and upgrades from 2.7 on.
pub mod config;
// confd: the signed UDP wire format, answers over a config snapshot, the client library.
pub mod confd;
// Ports, timeouts, versions and limits, with their units in their names.
pub mod constants;
// Cluster-wide secrets and certificates: generating `server.pem` and `hmac.key`.
pub mod crypto;
// Daemon scaffolding (pid files, signals, logging, mlock) and the daemons.
pub mod daemons;
// Error kinds shared across process boundaries and the error-chain printer.
pub mod error;
// Hypervisors (node side): the trait, `fake` and `kvm` (QEMU + QMP).
pub mod hv;
// The persistent job queue: job files, group commit, priority worker pool, recovery.
pub mod jobs;
// The node-join protocol: one-time tokens, mutual proof, then secrets over mutual TLS.
pub mod join;
// Lock levels, the lock manager (BGL, level order, retries) and the one acquisition order.
pub mod locking;
// LUXI: framing, client and server side of the masterd unix socket protocol.
pub mod luxi;
// Host networking: name resolution and address checks (Ganeti's netutils).
pub mod net;
// Opcodes: one plain-data struct per Ganeti operation, in Ganeti's JSON form.
pub mod opcodes;
// OS definitions (node side): OS API 10/15/20 discovery and scripts.
pub mod os;
// Every on-disk path, derived from one root (`GANETI_ROOTDIR`).
pub mod paths;
// Node RPC: mutual-TLS HTTPS between master and noded; procedures, client fan-out, server.
pub mod rpc;
// Query2: field definitions, the filter language and the query engine over the config and live node data.
pub mod query;
// `ssconf_*` files: small per-node files written from the master, read everywhere.
pub mod ssconf;
// Block devices (node side): one type per disk template.
pub mod storage;
// The only home of unsafe code, raw syscalls, process spawning and atomic writes.
#[allow(unsafe_code)]
pub mod sys;
