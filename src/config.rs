//! The cluster configuration (`config.data`, Ganeti 3.0 schema, version 3000000).
//!
//! - [`objects`]: the serde types of every config object.
//! - [`params`]: parameter defaults, types and inheritance (pure functions).
//! - [`validate`]: cross-object checks (dangling references, duplicates).
//! - [`store`]: [`store::ConfigStore`], the only writer of `config.data`.
//! - [`upgrade`]: pure upgrades of older `config.data` documents to 3.0.
//!
//! Runs in masterd (writer) and, read-only, wherever a snapshot is needed.

pub mod objects;
pub mod params;
pub mod store;
pub mod upgrade;
pub mod validate;
