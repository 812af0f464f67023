//! Error kinds that cross process boundaries, and the error-chain printer.
//!
//! Inside a process each module has its own `<Area>Error` enum. When an error
//! leaves the process (LUXI reply, job result, RPC reply) it becomes an
//! [`OpFailure`], whose [`ErrorKind`] follows Ganeti's error classes
//! (`errors.py`: `ECODE_*`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Ganeti's error classes (`ECODE_*`), as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Wrong arguments (at syntax level).
    #[serde(rename = "wrong_input")]
    Inval,
    /// The object is in the wrong state for the operation.
    #[serde(rename = "wrong_state")]
    State,
    /// The object does not exist.
    #[serde(rename = "unknown_entity")]
    NoEnt,
    /// The object already exists.
    #[serde(rename = "already_exists")]
    Exists,
    /// A name is not unique.
    #[serde(rename = "resource_not_unique")]
    NotUnique,
    /// Not enough resources (hard).
    #[serde(rename = "insufficient_resources")]
    NoRes,
    /// Not enough resources right now (retry later).
    #[serde(rename = "temp_insufficient_resources")]
    TempNoRes,
    /// An internal error: a bug.
    #[serde(rename = "internal_error")]
    Fault,
    /// An environment problem (e.g. a node is down).
    #[serde(rename = "environment_error")]
    Environ,
    /// A name did not resolve.
    #[serde(rename = "resolver_error")]
    Resolver,
}

/// An error as it travels between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpFailure {
    /// Which Ganeti error class this is.
    pub kind: ErrorKind,
    /// The whole message, causes included.
    pub message: String,
}

impl OpFailure {
    /// A failure of `kind` whose message is `e`'s whole chain.
    pub fn from_error(kind: ErrorKind, e: &dyn std::error::Error) -> Self {
        OpFailure {
            kind,
            message: chain(e),
        }
    }
}

impl fmt::Display for OpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpFailure {}

/// An error and all its sources, joined with `": "`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading config.data")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_joins_sources() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        assert_eq!(chain(&e), "reading config.data: no such file");
    }

    #[test]
    fn kinds_use_ganeti_wire_names() {
        assert_eq!(
            serde_json::to_string(&ErrorKind::Inval).unwrap(),
            "\"wrong_input\""
        );
        assert_eq!(
            serde_json::to_string(&ErrorKind::NoEnt).unwrap(),
            "\"unknown_entity\""
        );
    }
}
