//! The cluster configuration (`config.data`, Ganeti 3.0 schema, version 3000000).
//!
//! - [`objects`]: the serde types of every config object, and the id newtypes.
//! - [`params`]: parameter defaults, types and inheritance (pure functions).
//! - [`validate`]: cross-object checks (dangling references, duplicates).
//! - [`bootstrap`]: the initial config `gnt-cluster init` writes.
//! - [`drbd`]: DRBD minors, ports and secrets handed out from the config.
//! - [`store`]: [`store::ConfigStore`], the only writer of `config.data`.
//! - [`upgrade`]: pure upgrades of older `config.data` documents to 3.0.
//! - [`test_support`]: generated configs of any size, for tests and benchmarks.
//!
//! Runs in masterd (writer) and, read-only, wherever a snapshot is needed.
//! Nothing here talks to other nodes: distributing the file is the caller's job.

pub mod bootstrap;
pub mod drbd;
pub mod objects;
pub mod params;
pub mod store;
pub mod test_support;
pub mod upgrade;
pub mod validate;

use std::path::PathBuf;

pub use objects::{ConfigData, GroupName, InstanceName, NodeName, Uuid};

/// What can go wrong reading, building or writing the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading configuration")]
    Read {
        /// The cause (names the file).
        #[source]
        source: crate::sys::fs::FsError,
    },
    /// The text is not a valid 3.0 `config.data`.
    #[error("parsing {path} (line {line}, column {column})")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde's message, which names the field.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer Ganeti.
    #[error(
        "{path}: config version {found} is newer than supported {}; \
         this program cannot read it (downgrade with the newer Ganeti's cfgupgrade --downgrade)",
        crate::constants::CONFIG_VERSION
    )]
    VersionTooNew {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
    /// Written by an older Ganeti.
    #[error(
        "{path}: config version {found} is older than supported {}; run cfgupgrade",
        crate::constants::CONFIG_VERSION
    )]
    VersionTooOld {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
    /// The configuration is inconsistent.
    #[error("configuration {context} is inconsistent:\n{errors}")]
    Invalid {
        /// Which configuration (a file, or "after update").
        context: String,
        /// Every problem found.
        errors: validate::ValidationErrors,
    },
    /// `create` found an existing file.
    #[error("{path} already exists; refusing to overwrite a cluster configuration")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Writing `config.data` (or its directory) failed.
    #[error("writing configuration")]
    Write {
        /// The cause (names the file).
        #[source]
        source: crate::sys::fs::FsError,
    },
    /// Writing the ssconf files failed.
    #[error("writing ssconf files")]
    Ssconf {
        /// The cause.
        #[source]
        source: crate::ssconf::SsconfError,
    },
    /// A parameter (or parameter dictionary) is invalid.
    #[error("{context}")]
    Param {
        /// Where the parameter came from (e.g. "hvparams for kvm").
        context: String,
        /// The cause, naming the key and value.
        #[source]
        source: params::ParamError,
    },
    /// A value given to build the initial configuration is invalid.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInit {
        /// The `InitParams` field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// An update function refused to apply its change.
    #[error("configuration update refused: {reason}")]
    Update {
        /// Why (written by the caller of `update`).
        reason: String,
    },
}

impl ConfigError {
    /// Whether the error is about values someone typed or edited (bad
    /// input) rather than the environment (files, disks).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            ConfigError::Parse { .. }
                | ConfigError::VersionTooNew { .. }
                | ConfigError::VersionTooOld { .. }
                | ConfigError::Invalid { .. }
                | ConfigError::Param { .. }
                | ConfigError::InvalidInit { .. }
                | ConfigError::Update { .. }
        )
    }
}
