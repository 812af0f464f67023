//! The generic query opcodes (query2) behind `gnt-* list` and `list-fields`.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::QueryResource;
use serde_json::Value;

opcode! {
    /// Generic query over a resource (query2), with fields and a filter.
    OpQuery = "OP_QUERY", summary: what {
        /// Resource to query. Required.
        what: QueryResource = required;
        /// Take locks for a consistent answer. Default: `false`.
        use_locking: bool = (false);
        /// Field names requested. Required.
        fields: Vec<String> = required, check non_empty;
        /// Query filter, in Ganeti's filter language. Default: none.
        qfilter: Option<Vec<Value>> = (None);
    }
}

opcode! {
    /// Lists the fields a resource offers for queries.
    OpQueryFields = "OP_QUERY_FIELDS", summary: what {
        /// Resource to query. Required.
        what: QueryResource = required;
        /// Field names requested. Default: none.
        fields: Option<Vec<String>> = (None), check non_empty;
    }
}
