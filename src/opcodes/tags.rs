//! Tags on the cluster, nodes, groups, instances and networks.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::TagKind;

opcode! {
    /// Returns the tags of an object.
    OpTagsGet = "OP_TAGS_GET", summary: name {
        /// Kind of object carrying the tags. Required.
        kind: TagKind = required;
        /// Take locks for a consistent answer. Default: `false`.
        use_locking: bool = (false);
        /// Name of the tagged object; none for the cluster. Default: none.
        name: Option<String> = (None);
    }
}

opcode! {
    /// Searches all tags of the cluster for a pattern.
    OpTagsSearch = "OP_TAGS_SEARCH", summary: pattern {
        /// Regular expression to search tags for. Required.
        pattern: String = required, check non_empty;
    }
}

opcode! {
    /// Adds tags to an object.
    OpTagsSet = "OP_TAGS_SET", summary: - {
        /// Kind of object carrying the tags. Required.
        kind: TagKind = required;
        /// Tags to add. Required.
        tags: Vec<String> = required;
        /// Name of the tagged object; none for the cluster. Default: none.
        name: Option<String> = (None);
    }
}

opcode! {
    /// Removes tags from an object.
    OpTagsDel = "OP_TAGS_DEL", summary: - {
        /// Kind of object carrying the tags. Required.
        kind: TagKind = required;
        /// Tags to remove. Required.
        tags: Vec<String> = required;
        /// Name of the tagged object; none for the cluster. Default: none.
        name: Option<String> = (None);
    }
}
