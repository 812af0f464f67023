//! `gnt-group`: node group administration. `list` and `list-fields` work
//! now; the commands that change groups come later.

use super::list::listing_program;
use crate::query::Resource;

/// Ganeti's default `gnt-group list` fields.
pub const LIST_DEFAULT_FIELDS: &[&str] =
    &["name", "node_cnt", "pinst_cnt", "alloc_policy", "ndparams"];

/// Ganeti 3.0's gnt-group commands.
const GANETI_COMMANDS: &[&str] = &[
    "add",
    "assign-nodes",
    "evacuate",
    "info",
    "list",
    "list-fields",
    "modify",
    "remove",
    "rename",
    "list-tags",
    "add-tags",
    "remove-tags",
];

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    listing_program(
        program,
        args,
        Resource::Group,
        LIST_DEFAULT_FIELDS,
        GANETI_COMMANDS,
        "node group administration",
    )
}
