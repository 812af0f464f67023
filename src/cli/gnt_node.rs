//! `gnt-node`: node administration. `list` and `list-fields` work now; the
//! commands that change nodes come with node RPC (issue 4).

use super::list::listing_program;
use crate::query::Resource;

/// Ganeti's default `gnt-node list` fields.
pub const LIST_DEFAULT_FIELDS: &[&str] = &[
    "name",
    "dtotal",
    "dfree",
    "mtotal",
    "mnode",
    "mfree",
    "pinst_cnt",
    "sinst_cnt",
];

/// Ganeti 3.0's gnt-node commands.
const GANETI_COMMANDS: &[&str] = &[
    "add",
    "evacuate",
    "failover",
    "info",
    "list",
    "list-fields",
    "list-storage",
    "migrate",
    "modify",
    "modify-storage",
    "powercycle",
    "power",
    "remove",
    "repair-storage",
    "restricted-command",
    "volumes",
    "list-tags",
    "add-tags",
    "remove-tags",
    "health",
];

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    listing_program(
        program,
        args,
        Resource::Node,
        LIST_DEFAULT_FIELDS,
        GANETI_COMMANDS,
        "node RPC (issue 4)",
    )
}
