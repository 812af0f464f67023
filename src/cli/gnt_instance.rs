//! `gnt-instance`: instance administration. `list` and `list-fields` work
//! now; the life-cycle commands come with instances (issue 5).

use super::list::listing_program;
use crate::query::Resource;

/// Ganeti's default `gnt-instance list` fields.
pub const LIST_DEFAULT_FIELDS: &[&str] =
    &["name", "hypervisor", "os", "pnode", "status", "oper_ram"];

/// Ganeti 3.0's gnt-instance commands.
const GANETI_COMMANDS: &[&str] = &[
    "add",
    "batch-create",
    "info",
    "list",
    "list-fields",
    "remove",
    "activate-disks",
    "deactivate-disks",
    "recreate-disks",
    "grow-disk",
    "change-group",
    "failover",
    "migrate",
    "move",
    "modify",
    "reinstall",
    "rename",
    "replace-disks",
    "shutdown",
    "stop",
    "startup",
    "start",
    "reboot",
    "console",
    "list-tags",
    "add-tags",
    "remove-tags",
];

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    listing_program(
        program,
        args,
        Resource::Instance,
        LIST_DEFAULT_FIELDS,
        GANETI_COMMANDS,
        "instances (issue 5)",
    )
}
