//! `gnt-instance`: instance administration (Ganeti's `gnt-instance`).
//!
//! Every command builds Ganeti's opcode (`OP_INSTANCE_*`) from the options
//! and hands it to masterd over LUXI; nothing here touches a node. `add`
//! shares its option parsing with `gnt-backup import`
//! ([`super::instance_create`]); `startup`, `shutdown`, `reboot` and
//! `reinstall` select instances with [`super::instance_select`] and run one
//! job each; `info` prints [`super::instance_info`]. `list`, `list-fields`
//! and the tag commands go through [`super::list`].

use super::instance_create::{
    self, be_params, create_op, hv_params_any, os_params, parse_size_mib, split_node_option,
    CreateMode, CreateOptions, DefaultValue,
};
use super::instance_select::{self, SelectorFlags};
use super::job::{parse_priority, run_job, SubmitOpts};
use super::list::{listing_program, refuse_unbuilt};
use super::{parse_args, EXIT_FAILURE, EXIT_SUCCESS};
use crate::query::Resource;
use argh::FromArgs;
use serde_json::{json, Map, Value};

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

/// The commands that go to [`listing_program`].
const LISTING_COMMANDS: &[&str] = &[
    "list",
    "list-fields",
    "list-tags",
    "add-tags",
    "remove-tags",
];

/// The commands this module parses itself.
const BUILT_COMMANDS: &[&str] = &[
    "add",
    "info",
    "remove",
    "activate-disks",
    "deactivate-disks",
    "recreate-disks",
    "grow-disk",
    "failover",
    "migrate",
    "move",
    "modify",
    "reinstall",
    "rename",
    "shutdown",
    "stop",
    "startup",
    "start",
    "reboot",
    "console",
    "show",
];

/// Ganeti's command aliases.
const ALIASES: &[(&str, &str)] = &[("start", "startup"), ("stop", "shutdown"), ("show", "info")];

/// Short options that take a value (for argv normalisation), per command:
/// `-s` is a size in `add` but a switch in `info`.
fn short_with_value(command: &str) -> &'static [char] {
    match command {
        "add" => &['t', 's', 'o', 'O', 'H', 'B', 'n', 'g', 'I'],
        "modify" => &['t', 'o', 'O', 'H', 'B', 'n', 'I', 'm'],
        "reinstall" => &['o', 'O'],
        "startup" => &['H', 'B'],
        "reboot" => &['t'],
        "failover" | "migrate" | "move" | "recreate-disks" => &['n', 'I'],
        _ => &[],
    }
}

#[derive(FromArgs, Debug)]
/// Instance administration (Ganeti's gnt-instance).
struct GntInstance {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
// Parsed once per run and dropped; boxing would gain nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    Add(AddArgs),
    Remove(RemoveArgs),
    Startup(StartupArgs),
    Shutdown(ShutdownArgs),
    Reboot(RebootArgs),
    Info(InfoArgs),
    Modify(ModifyArgs),
    Reinstall(ReinstallArgs),
    Rename(RenameArgs),
    Console(ConsoleArgs),
    ActivateDisks(ActivateDisksArgs),
    DeactivateDisks(DeactivateDisksArgs),
    GrowDisk(GrowDiskArgs),
    RecreateDisks(RecreateDisksArgs),
    Failover(FailoverArgs),
    Migrate(MigrateArgs),
    Move(MoveArgs),
}

#[derive(FromArgs, Debug, Default)]
/// Creates and adds a new instance to the cluster.
#[argh(subcommand, name = "add")]
struct AddArgs {
    /// disk template: diskless, file, sharedfile, plain, drbd, blockdev, rbd, ext, gluster
    #[argh(option, short = 't')]
    disk_template: Option<String>,
    /// disk N:size=SIZE,mode=ro|rw,name=…,vg=…,adopt=… (repeatable)
    #[argh(option)]
    disk: Vec<String>,
    /// size of the single disk (shortcut for --disk 0:size=SIZE)
    #[argh(option, short = 's')]
    os_size: Option<String>,
    /// NIC N:mode=…,link=…,ip=…,mac=…,name=…,network=… (repeatable)
    #[argh(option)]
    net: Vec<String>,
    /// create the instance without network cards
    #[argh(switch)]
    no_nics: bool,
    /// operating system (os+variant)
    #[argh(option, short = 'o')]
    os_type: Option<String>,
    /// OS parameters key=val,…
    #[argh(option, short = 'O')]
    os_parameters: Option<String>,
    /// private OS parameters key=val,… (not logged)
    #[argh(option)]
    os_parameters_private: Option<String>,
    /// secret OS parameters key=val,… (not logged or saved)
    #[argh(option)]
    os_parameters_secret: Option<String>,
    /// hypervisor and its parameters: hv[:key=val,…]
    #[argh(option, short = 'H')]
    hypervisor_parameters: Option<String>,
    /// backend parameters key=val,… (memory, maxmem, minmem, vcpus, …)
    #[argh(option, short = 'B')]
    backend_parameters: Option<String>,
    /// primary node, and secondary for mirrored templates: pnode[:snode]
    #[argh(option, short = 'n')]
    node: Option<String>,
    /// node group (name or UUID)
    #[argh(option, short = 'g')]
    node_group: Option<String>,
    /// choose the nodes with this iallocator
    #[argh(option, short = 'I')]
    iallocator: Option<String>,
    /// do not start the instance after creating it
    #[argh(switch)]
    no_start: bool,
    /// do not install the OS (implies --no-start)
    #[argh(switch)]
    no_install: bool,
    /// do not check that the instance's IP is unused
    #[argh(switch)]
    no_ip_check: bool,
    /// do not check that the instance's name resolves
    #[argh(switch)]
    no_name_check: bool,
    /// do not check for conflicting IPs
    #[argh(switch)]
    no_conflicts_check: bool,
    /// do not wait for the disks to sync (dangerous)
    #[argh(switch)]
    no_wait_for_sync: bool,
    /// directory for file-based disks, relative to the cluster's
    #[argh(option)]
    file_storage_dir: Option<String>,
    /// driver for file-based disks: loop, blktap or blktap2
    #[argh(option)]
    file_driver: Option<String>,
    /// comma-separated tags of the new instance
    #[argh(option)]
    tags: Option<String>,
    /// accept an OS variant the OS does not list
    #[argh(switch)]
    force_variant: bool,
    /// ignore instance policy violations
    #[argh(switch)]
    ignore_ipolicy: bool,
    /// lock only the nodes that are free
    #[argh(switch)]
    opportunistic_locking: bool,
    /// only reserve the resources
    #[argh(switch)]
    forthcoming: bool,
    /// turn a forthcoming instance into a real one
    #[argh(switch)]
    commit: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the new instance's name
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug)]
/// Shuts the instance down and removes it.
#[argh(subcommand, name = "remove")]
struct RemoveArgs {
    /// do not ask for confirmation
    #[argh(switch, short = 'f')]
    force: bool,
    /// seconds to wait for the instance to shut down (default 120)
    #[argh(option, default = "120")]
    shutdown_timeout: u64,
    /// remove the instance from the configuration even if removal fails
    #[argh(switch)]
    ignore_failures: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug, Default)]
/// Starts instances.
#[argh(subcommand, name = "startup")]
struct StartupArgs {
    /// force the start past safety checks
    #[argh(switch, short = 'f')]
    force: bool,
    /// do not ask for confirmation when more than one instance is affected
    #[argh(switch)]
    force_multiple: bool,
    /// arguments are instance names (default)
    #[argh(switch)]
    instance: bool,
    /// select all instances in the cluster
    #[argh(switch)]
    all: bool,
    /// arguments are nodes: their primary and secondary instances
    #[argh(switch)]
    node: bool,
    /// arguments are nodes: their primary instances
    #[argh(switch)]
    primary: bool,
    /// arguments are nodes: their secondary instances
    #[argh(switch)]
    secondary: bool,
    /// arguments are node tags
    #[argh(switch)]
    node_tags: bool,
    /// arguments are node tags (primary instances)
    #[argh(switch)]
    pri_node_tags: bool,
    /// arguments are node tags (secondary instances)
    #[argh(switch)]
    sec_node_tags: bool,
    /// arguments are instance tags
    #[argh(switch)]
    tags: bool,
    /// temporary hypervisor parameters key=val,…
    #[argh(option, short = 'H')]
    hypervisor_parameters: Option<String>,
    /// temporary backend parameters key=val,…
    #[argh(option, short = 'B')]
    backend_parameters: Option<String>,
    /// ignore offline nodes and do as much as possible
    #[argh(switch)]
    ignore_offline: bool,
    /// do not record the new state in the configuration
    #[argh(switch)]
    no_remember: bool,
    /// start the instance paused
    #[argh(switch)]
    paused: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the jobs and return their ids without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job ids on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// instances (or nodes or tags, by the selection option)
    #[argh(positional)]
    names: Vec<String>,
}

#[derive(FromArgs, Debug, Default)]
/// Stops instances.
#[argh(subcommand, name = "shutdown")]
struct ShutdownArgs {
    /// force the stop past safety checks
    #[argh(switch, short = 'f')]
    force: bool,
    /// do not ask for confirmation when more than one instance is affected
    #[argh(switch)]
    force_multiple: bool,
    /// arguments are instance names (default)
    #[argh(switch)]
    instance: bool,
    /// select all instances in the cluster
    #[argh(switch)]
    all: bool,
    /// arguments are nodes: their primary and secondary instances
    #[argh(switch)]
    node: bool,
    /// arguments are nodes: their primary instances
    #[argh(switch)]
    primary: bool,
    /// arguments are nodes: their secondary instances
    #[argh(switch)]
    secondary: bool,
    /// arguments are node tags
    #[argh(switch)]
    node_tags: bool,
    /// arguments are node tags (primary instances)
    #[argh(switch)]
    pri_node_tags: bool,
    /// arguments are node tags (secondary instances)
    #[argh(switch)]
    sec_node_tags: bool,
    /// arguments are instance tags
    #[argh(switch)]
    tags: bool,
    /// seconds to wait for the instance to shut down (default 120)
    #[argh(option, default = "120")]
    timeout: u64,
    /// ignore offline nodes and do as much as possible
    #[argh(switch)]
    ignore_offline: bool,
    /// do not record the new state in the configuration
    #[argh(switch)]
    no_remember: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the jobs and return their ids without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job ids on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// instances (or nodes or tags, by the selection option)
    #[argh(positional)]
    names: Vec<String>,
}

#[derive(FromArgs, Debug, Default)]
/// Reboots instances.
#[argh(subcommand, name = "reboot")]
struct RebootArgs {
    /// do not ask for confirmation when more than one instance is affected
    #[argh(switch)]
    force_multiple: bool,
    /// type of reboot: soft, hard or full (default hard)
    #[argh(option, short = 't', long = "type", default = "String::from(\"hard\")")]
    reboot_type: String,
    /// ignore errors from secondary nodes
    #[argh(switch)]
    ignore_secondaries: bool,
    /// arguments are instance names (default)
    #[argh(switch)]
    instance: bool,
    /// select all instances in the cluster
    #[argh(switch)]
    all: bool,
    /// arguments are nodes: their primary and secondary instances
    #[argh(switch)]
    node: bool,
    /// arguments are nodes: their primary instances
    #[argh(switch)]
    primary: bool,
    /// arguments are nodes: their secondary instances
    #[argh(switch)]
    secondary: bool,
    /// arguments are node tags
    #[argh(switch)]
    node_tags: bool,
    /// arguments are node tags (primary instances)
    #[argh(switch)]
    pri_node_tags: bool,
    /// arguments are node tags (secondary instances)
    #[argh(switch)]
    sec_node_tags: bool,
    /// arguments are instance tags
    #[argh(switch)]
    tags: bool,
    /// seconds to wait for the instance to shut down (default 120)
    #[argh(option, default = "120")]
    shutdown_timeout: u64,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the jobs and return their ids without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job ids on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// instances (or nodes or tags, by the selection option)
    #[argh(positional)]
    names: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Shows information on instances.
#[argh(subcommand, name = "info")]
struct InfoArgs {
    /// only configuration data, do not ask the nodes
    #[argh(switch, short = 's', long = "static")]
    static_: bool,
    /// all instances of the cluster (can take long)
    #[argh(switch)]
    all: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// the instances
    #[argh(positional)]
    names: Vec<String>,
}

#[derive(FromArgs, Debug, Default)]
/// Changes the parameters of an instance.
#[argh(subcommand, name = "modify")]
struct ModifyArgs {
    /// backend parameters key=val,… (value "default" resets)
    #[argh(option, short = 'B')]
    backend_parameters: Option<String>,
    /// disk change: add:size=…, N:add,size=…, N:remove, N:modify,name=… (repeatable)
    #[argh(option)]
    disk: Vec<String>,
    /// skip safety checks and questions
    #[argh(switch, short = 'f')]
    force: bool,
    /// hypervisor parameters key=val,… (value "default" resets)
    #[argh(option, short = 'H')]
    hypervisor_parameters: Option<String>,
    /// NIC change: add:…, N:add,…, N:remove, N:modify,… (repeatable)
    #[argh(option)]
    net: Vec<String>,
    /// convert to this disk template (not supported yet)
    #[argh(option, short = 't')]
    disk_template: Option<String>,
    /// new secondary node for a conversion to drbd
    #[argh(option, short = 'n')]
    node: Option<String>,
    /// choose nodes with this iallocator
    #[argh(option, short = 'I')]
    iallocator: Option<String>,
    /// change the operating system
    #[argh(option, short = 'o')]
    os_type: Option<String>,
    /// accept an OS variant the OS does not list
    #[argh(switch)]
    force_variant: bool,
    /// OS parameters key=val,…
    #[argh(option, short = 'O')]
    os_parameters: Option<String>,
    /// private OS parameters key=val,…
    #[argh(option)]
    os_parameters_private: Option<String>,
    /// do not wait for the disks to sync
    #[argh(switch)]
    no_wait_for_sync: bool,
    /// mark the (stopped) instance offline
    #[argh(switch)]
    offline: bool,
    /// mark the offline instance online again
    #[argh(switch)]
    online: bool,
    /// ignore instance policy violations
    #[argh(switch)]
    ignore_ipolicy: bool,
    /// new runtime memory (ballooning), with units
    #[argh(option, short = 'm')]
    runtime_memory: Option<String>,
    /// do not check for conflicting IPs
    #[argh(switch)]
    no_conflicts_check: bool,
    /// new primary node (non-mirrored instances)
    #[argh(option)]
    new_primary: Option<String>,
    /// hotplug devices into the running instance
    #[argh(switch)]
    hotplug: bool,
    /// hotplug if the hypervisor supports it
    #[argh(switch)]
    hotplug_if_possible: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug, Default)]
/// Reinstalls stopped instances.
#[argh(subcommand, name = "reinstall")]
struct ReinstallArgs {
    /// do not ask for confirmation (one instance)
    #[argh(switch, short = 'f')]
    force: bool,
    /// install this OS instead of the current one
    #[argh(option, short = 'o')]
    os_type: Option<String>,
    /// accept an OS variant the OS does not list
    #[argh(switch)]
    force_variant: bool,
    /// do not ask for confirmation when more than one instance is affected
    #[argh(switch)]
    force_multiple: bool,
    /// arguments are instance names (default)
    #[argh(switch)]
    instance: bool,
    /// select all instances in the cluster
    #[argh(switch)]
    all: bool,
    /// arguments are nodes: their primary and secondary instances
    #[argh(switch)]
    node: bool,
    /// arguments are nodes: their primary instances
    #[argh(switch)]
    primary: bool,
    /// arguments are nodes: their secondary instances
    #[argh(switch)]
    secondary: bool,
    /// arguments are node tags
    #[argh(switch)]
    node_tags: bool,
    /// arguments are node tags (primary instances)
    #[argh(switch)]
    pri_node_tags: bool,
    /// arguments are node tags (secondary instances)
    #[argh(switch)]
    sec_node_tags: bool,
    /// arguments are instance tags
    #[argh(switch)]
    tags: bool,
    /// choose the OS from a list (not supported yet)
    #[argh(switch)]
    select_os: bool,
    /// OS parameters key=val,…
    #[argh(option, short = 'O')]
    os_parameters: Option<String>,
    /// private OS parameters key=val,…
    #[argh(option)]
    os_parameters_private: Option<String>,
    /// secret OS parameters key=val,…
    #[argh(option)]
    os_parameters_secret: Option<String>,
    /// with -o: keep the instance's OS parameters the new OS declares, drop the others
    #[argh(switch)]
    keep_known_os_parameters: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the jobs and return their ids without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job ids on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// instances (or nodes or tags, by the selection option)
    #[argh(positional)]
    names: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Renames an instance.
#[argh(subcommand, name = "rename")]
struct RenameArgs {
    /// do not ask for confirmation
    #[argh(switch, short = 'f')]
    force: bool,
    /// do not check that the new IP is unused
    #[argh(switch)]
    no_ip_check: bool,
    /// do not check that the new name resolves
    #[argh(switch)]
    no_name_check: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
    /// its new name
    #[argh(positional)]
    new_name: String,
}

#[derive(FromArgs, Debug)]
/// Opens a console on an instance.
#[argh(subcommand, name = "console")]
struct ConsoleArgs {
    /// print the command instead of running it
    #[argh(switch)]
    show_cmd: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug)]
/// Activates an instance's disks.
#[argh(subcommand, name = "activate-disks")]
struct ActivateDisksArgs {
    /// ignore the recorded disk sizes
    #[argh(switch)]
    ignore_size: bool,
    /// wait for the disks to sync
    #[argh(switch)]
    wait_for_sync: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug)]
/// Deactivates an instance's disks.
#[argh(subcommand, name = "deactivate-disks")]
struct DeactivateDisksArgs {
    /// deactivate even if the instance looks running
    #[argh(switch, short = 'f')]
    force: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug)]
/// Grows an instance's disk.
#[argh(subcommand, name = "grow-disk")]
struct GrowDiskArgs {
    /// do not wait for the disk to sync
    #[argh(switch)]
    no_wait_for_sync: bool,
    /// AMOUNT is the new size, not the growth
    #[argh(switch)]
    absolute: bool,
    /// ignore instance policy violations
    #[argh(switch)]
    ignore_ipolicy: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
    /// disk index
    #[argh(positional)]
    disk: String,
    /// growth (or new size with --absolute), with units
    #[argh(positional)]
    amount: String,
}

#[derive(FromArgs, Debug, Default)]
/// Recreates an instance's disks.
#[argh(subcommand, name = "recreate-disks")]
struct RecreateDisksArgs {
    /// disk to recreate: N or N:size=…,spindles=… (repeatable; default all)
    #[argh(option)]
    disk: Vec<String>,
    /// new nodes: pnode[:snode]
    #[argh(option, short = 'n')]
    node: Option<String>,
    /// choose new nodes with this iallocator
    #[argh(option, short = 'I')]
    iallocator: Option<String>,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug, Default)]
/// Stops the instance, changes its primary node and starts it there.
#[argh(subcommand, name = "failover")]
struct FailoverArgs {
    /// do not ask for confirmation
    #[argh(switch, short = 'f')]
    force: bool,
    /// ignore the consistency of the disks on the secondary
    #[argh(switch)]
    ignore_consistency: bool,
    /// seconds to wait for the instance to shut down (default 120)
    #[argh(option, default = "120")]
    shutdown_timeout: u64,
    /// target node (shared-storage templates)
    #[argh(option, short = 'n')]
    target_node: Option<String>,
    /// choose the target node with this iallocator
    #[argh(option, short = 'I')]
    iallocator: Option<String>,
    /// ignore instance policy violations
    #[argh(switch)]
    ignore_ipolicy: bool,
    /// recover from a failed failover instead
    #[argh(switch)]
    cleanup: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug, Default)]
/// Live-migrates an instance to another node.
#[argh(subcommand, name = "migrate")]
struct MigrateArgs {
    /// do not ask for confirmation
    #[argh(switch, short = 'f')]
    force: bool,
    /// non-live migration (freeze, transfer, resume)
    #[argh(switch)]
    non_live: bool,
    /// migration mode: live or non-live
    #[argh(option)]
    migration_mode: Option<String>,
    /// recover from a failed migration instead
    #[argh(switch)]
    cleanup: bool,
    /// target node (shared-storage templates)
    #[argh(option, short = 'n')]
    target_node: Option<String>,
    /// choose the target node with this iallocator
    #[argh(option, short = 'I')]
    iallocator: Option<String>,
    /// fall back to failover when migration is impossible
    #[argh(switch)]
    allow_failover: bool,
    /// ignore instance policy violations
    #[argh(switch)]
    ignore_ipolicy: bool,
    /// ignore hypervisor version differences
    #[argh(switch)]
    ignore_hvversions: bool,
    /// do not balloon memory to make the migration fit
    #[argh(switch)]
    no_runtime_changes: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, Debug, Default)]
/// Moves an instance to another node by copying its disks.
#[argh(subcommand, name = "move")]
struct MoveArgs {
    /// do not ask for confirmation
    #[argh(switch, short = 'f')]
    force: bool,
    /// target node
    #[argh(option, short = 'n')]
    node: Option<String>,
    /// compression for the copy (default none)
    #[argh(option, default = "String::from(\"none\")")]
    compress: String,
    /// seconds to wait for the instance to shut down (default 120)
    #[argh(option, default = "120")]
    shutdown_timeout: u64,
    /// ignore the consistency of the disks
    #[argh(switch)]
    ignore_consistency: bool,
    /// ignore instance policy violations
    #[argh(switch)]
    ignore_ipolicy: bool,
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
    /// the instance
    #[argh(positional)]
    name: String,
}

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    let sub = args.first().map(String::as_str).unwrap_or_default();
    if LISTING_COMMANDS.contains(&sub) || !BUILT_COMMANDS.contains(&sub) {
        let built: Vec<&str> = BUILT_COMMANDS
            .iter()
            .chain(LISTING_COMMANDS)
            .copied()
            .collect();
        if let Some(code) = refuse_unbuilt(program, args, &built, GANETI_COMMANDS, "a later issue")
        {
            return code;
        }
        return listing_program(
            program,
            args,
            Resource::Instance,
            LIST_DEFAULT_FIELDS,
            GANETI_COMMANDS,
            "a later issue",
        );
    }
    let mut args = args.to_vec();
    if let Some((_, real)) = ALIASES.iter().find(|(alias, _)| *alias == sub) {
        args[0] = real.to_string();
    }
    let cmd: GntInstance = match parse_args(program, &args, short_with_value(&args[0])) {
        Ok(c) => c,
        Err(code) => return code,
    };
    run(cmd.command)
}

fn run(command: Command) -> u8 {
    match command {
        Command::Add(a) => {
            let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
            run_job(add_op(&a), &opts, |_| {})
        }
        Command::Remove(a) => remove(&a),
        Command::Startup(a) => many(
            "startup",
            &a.selectors(),
            &a.names,
            a.force_multiple,
            submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run),
            startup_builder(&a),
        ),
        Command::Shutdown(a) => many(
            "shutdown",
            &a.selectors(),
            &a.names.clone(),
            a.force_multiple,
            submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run),
            Ok(Box::new(move |n: &str| shutdown_op(&a, n))),
        ),
        Command::Reboot(a) => many(
            "reboot",
            &a.selectors(),
            &a.names.clone(),
            a.force_multiple,
            submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run),
            reboot_builder(a),
        ),
        Command::Info(a) => info(&a),
        Command::Modify(a) => modify(&a),
        Command::Reinstall(a) => reinstall(a),
        Command::Rename(a) => rename(&a),
        Command::Console(a) => console(&a),
        Command::ActivateDisks(a) => {
            let op = json!({"OP_ID": "OP_INSTANCE_ACTIVATE_DISKS", "instance_name": a.name,
                "ignore_size": a.ignore_size, "wait_for_sync": a.wait_for_sync});
            let opts = submit_opts(&a.priority, a.submit, a.print_jobid, false);
            run_job(Ok(op), &opts, |r| print_lines(&activate_disks_lines(r)))
        }
        Command::DeactivateDisks(a) => {
            let op = json!({"OP_ID": "OP_INSTANCE_DEACTIVATE_DISKS", "instance_name": a.name,
                "force": a.force});
            let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
            run_job(Ok(op), &opts, |_| {})
        }
        Command::GrowDisk(a) => {
            let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
            run_job(grow_disk_op(&a), &opts, |_| {})
        }
        Command::RecreateDisks(a) => {
            let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
            run_job(recreate_disks_op(&a), &opts, |_| {})
        }
        Command::Failover(a) => failover(&a),
        Command::Migrate(a) => migrate(&a),
        Command::Move(a) => move_instance(&a),
    }
}

/// The generic job options of a command.
fn submit_opts(
    priority: &Option<String>,
    submit: bool,
    print_jobid: bool,
    dry_run: bool,
) -> Result<SubmitOpts, String> {
    Ok(SubmitOpts {
        submit_only: submit,
        print_jobid,
        priority: priority.as_deref().map(parse_priority).transpose()?,
        dry_run,
    })
}

#[allow(clippy::print_stdout)]
fn print_lines(lines: &[String]) {
    for l in lines {
        println!("{l}");
    }
}

/// Asks `question` unless `force`; `false` when the answer is no.
fn confirmed(force: bool, question: &str) -> bool {
    force || super::prompt::ask_user(question)
}

type OpBuilder = Box<dyn Fn(&str) -> Value>;

/// A multi-instance command: select, confirm, one job per instance.
fn many(
    operation: &str,
    selectors: &SelectorFlags,
    names: &[String],
    force_multiple: bool,
    opts: Result<SubmitOpts, String>,
    build: Result<OpBuilder, String>,
) -> u8 {
    let (mode, opts, build) = match (selectors.selection(), opts, build) {
        (Ok(m), Ok(o), Ok(b)) => (m, o, b),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    instance_select::run_many(operation, mode, names, force_multiple, &opts, build)
}

macro_rules! selector_flags {
    ($($t:ty),*) => {$(
        impl $t {
            fn selectors(&self) -> SelectorFlags {
                SelectorFlags {
                    instance: self.instance,
                    all: self.all,
                    node: self.node,
                    primary: self.primary,
                    secondary: self.secondary,
                    node_tags: self.node_tags,
                    pri_node_tags: self.pri_node_tags,
                    sec_node_tags: self.sec_node_tags,
                    tags: self.tags,
                }
            }
        }
    )*};
}
selector_flags!(StartupArgs, ShutdownArgs, RebootArgs, ReinstallArgs);

/// `OP_INSTANCE_CREATE` from `add`'s options.
fn add_op(a: &AddArgs) -> Result<Value, String> {
    let o = CreateOptions {
        disk_template: a.disk_template.clone(),
        disks: a.disk.clone(),
        os_size: a.os_size.clone(),
        nics: a.net.clone(),
        no_nics: a.no_nics,
        os: a.os_type.clone(),
        osparams: a.os_parameters.clone(),
        osparams_private: a.os_parameters_private.clone(),
        osparams_secret: a.os_parameters_secret.clone(),
        hypervisor: a.hypervisor_parameters.clone(),
        beparams: a.backend_parameters.clone(),
        node: a.node.clone(),
        nodegroup: a.node_group.clone(),
        iallocator: a.iallocator.clone(),
        no_start: a.no_start,
        no_install: a.no_install,
        no_ip_check: a.no_ip_check,
        no_name_check: a.no_name_check,
        no_conflicts_check: a.no_conflicts_check,
        no_wait_for_sync: a.no_wait_for_sync,
        file_storage_dir: a.file_storage_dir.clone(),
        file_driver: a.file_driver.clone(),
        tags: a.tags.clone(),
        force_variant: a.force_variant,
        ignore_ipolicy: a.ignore_ipolicy,
        opportunistic_locking: a.opportunistic_locking,
        forthcoming: a.forthcoming,
        commit: a.commit,
    };
    if o.os.is_none() && !o.no_install {
        return Err("You need to specify an OS (-o) or --no-install".into());
    }
    create_op(&a.name, &o, &CreateMode::Create)
}

fn remove_op(a: &RemoveArgs) -> Value {
    json!({"OP_ID": "OP_INSTANCE_REMOVE", "instance_name": a.name,
        "ignore_failures": a.ignore_failures, "shutdown_timeout": a.shutdown_timeout})
}

fn remove(a: &RemoveArgs) -> u8 {
    let q = format!(
        "This will remove the volumes of the instance {} (including mirrors), thus \
         removing all the data of the instance. Continue?",
        a.name
    );
    if !confirmed(a.force, &q) {
        return EXIT_FAILURE;
    }
    let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
    run_job(Ok(remove_op(a)), &opts, |_| {})
}

/// The `startup` opcode for each instance; -H/-B are checked once, up front.
fn startup_builder(a: &StartupArgs) -> Result<OpBuilder, String> {
    let hv = a
        .hypervisor_parameters
        .as_deref()
        .map(|t| hv_params_any(t, DefaultValue::Plain))
        .transpose()?;
    let be = a
        .backend_parameters
        .as_deref()
        .map(|t| be_params(t, DefaultValue::Plain))
        .transpose()?;
    let (force, ignore_offline, no_remember, paused) =
        (a.force, a.ignore_offline, a.no_remember, a.paused);
    Ok(Box::new(move |name: &str| {
        let mut op = json!({"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": name,
            "force": force, "ignore_offline_nodes": ignore_offline,
            "no_remember": no_remember, "startup_paused": paused});
        // Ganeti adds these only when given.
        if let Some(hv) = hv.as_ref().filter(|m| !m.is_empty()) {
            op["hvparams"] = Value::Object(hv.clone());
        }
        if let Some(be) = be.as_ref().filter(|m| !m.is_empty()) {
            op["beparams"] = Value::Object(be.clone());
        }
        op
    }))
}

fn shutdown_op(a: &ShutdownArgs, name: &str) -> Value {
    json!({"OP_ID": "OP_INSTANCE_SHUTDOWN", "instance_name": name, "force": a.force,
        "timeout": a.timeout, "ignore_offline_nodes": a.ignore_offline,
        "no_remember": a.no_remember})
}

fn reboot_builder(a: RebootArgs) -> Result<OpBuilder, String> {
    if !["soft", "hard", "full"].contains(&a.reboot_type.as_str()) {
        return Err(format!(
            "--type: invalid reboot type {:?} (soft, hard or full)",
            a.reboot_type
        ));
    }
    Ok(Box::new(move |name: &str| {
        json!({"OP_ID": "OP_INSTANCE_REBOOT", "instance_name": name,
            "reboot_type": a.reboot_type, "ignore_secondaries": a.ignore_secondaries,
            "shutdown_timeout": a.shutdown_timeout})
    }))
}

/// `OP_INSTANCE_QUERY_DATA` for `info`, or the message refusing the arguments.
fn info_op(a: &InfoArgs) -> Result<Value, String> {
    if a.names.is_empty() && !a.all {
        return Err(
            "No instance selected. Please pass in --all if you want to query all \
                    instances.\nNote that this can take a long time on a big cluster."
                .into(),
        );
    }
    if !a.names.is_empty() && a.all {
        return Err("Cannot use --all if you specify instance names.".into());
    }
    Ok(
        json!({"OP_ID": "OP_INSTANCE_QUERY_DATA", "instances": a.names,
        "static": a.static_, "use_locking": !a.static_}),
    )
}

#[allow(clippy::print_stdout)]
fn info(a: &InfoArgs) -> u8 {
    let opts = submit_opts(&a.priority, false, false, false);
    let mut code = EXIT_SUCCESS;
    let rc = run_job(info_op(a), &opts, |result| {
        if result.as_object().is_none_or(Map::is_empty) {
            println!("No instances.");
            code = EXIT_FAILURE;
            return;
        }
        println!("{}", super::instance_info::info_tree(result).render());
    });
    if rc != EXIT_SUCCESS {
        rc
    } else {
        code
    }
}

/// Ganeti's `_MISSING`-style split of one `--net`/`--disk` item of
/// `modify` into `[action, identifier, params]` (`_ConvertNicDiskModifications`).
fn device_mod(option: &str, text: &str) -> Result<(String, Value, Map<String, Value>), String> {
    use super::kv::{parse_ident_keyval, IdentKv, KvValue};
    let (ident, kv) = match parse_ident_keyval(text).map_err(|e| format!("{option}: {e}"))? {
        IdentKv::Set(i, kv) => (i, kv),
        IdentKv::Remove(i) | IdentKv::Reset(i) => {
            return Err(format!(
                "{option} {text:?}: cannot remove or reset {i:?} this way"
            ))
        }
    };
    const ACTIONS: [&str; 5] = ["add", "attach", "remove", "detach", "modify"];
    let (action, identifier, params) = if ACTIONS[..4].contains(&ident.as_str()) {
        (ident.clone(), json!(-1), kv)
    } else {
        let mut action = "modify".to_string();
        let mut count = 0;
        let mut params = Vec::new();
        for (k, v) in kv {
            if ACTIONS.contains(&k.as_str()) && v == KvValue::Bool(true) {
                action = k;
                count += 1;
            } else {
                params.push((k, v));
            }
        }
        if count > 1 {
            return Err(format!(
                "Cannot do more than one of the following operations at the same time: {}",
                ACTIONS.join(", ")
            ));
        }
        let identifier = match ident.parse::<i64>() {
            Ok(i) => json!(i),
            Err(_) => json!(ident),
        };
        (action, identifier, params)
    };
    if ["remove", "detach"].contains(&action.as_str()) && !params.is_empty() {
        return Err("Not accepting parameters on removal/detach".into());
    }
    let idx = identifier.to_string();
    let params = if option == "--disk" {
        let p = instance_create::disk_params(&idx, &params)?;
        if action == "add" && !p.contains_key("size") {
            return Err("Missing required parameter 'size'".into());
        }
        p
    } else {
        instance_create::nic_params(&idx, &params)?
    };
    Ok((action, identifier, params))
}

fn device_mods(option: &str, items: &[String]) -> Result<Vec<Value>, String> {
    items
        .iter()
        .map(|t| {
            let (a, i, p) = device_mod(option, t)?;
            Ok(json!([a, i, p]))
        })
        .collect()
}

/// `OP_INSTANCE_SET_PARAMS` from `modify`'s options.
fn modify_op(a: &ModifyArgs) -> Result<Value, String> {
    let given = !a.net.is_empty()
        || !a.disk.is_empty()
        || a.disk_template.is_some()
        || a.hypervisor_parameters.is_some()
        || a.backend_parameters.is_some()
        || a.os_type.is_some()
        || a.os_parameters.is_some()
        || a.os_parameters_private.is_some()
        || a.offline
        || a.online
        || a.runtime_memory.is_some()
        || a.new_primary.is_some();
    if !given {
        return Err("Please give at least one of the parameters.".into());
    }
    if let Some(t) = &a.disk_template {
        // TODO(issue 5): disk template conversions need the LU's support.
        return Err(format!(
            "Converting the disk template (to {t:?}) is not supported yet in ganeti-rs"
        ));
    }
    if a.offline && a.online {
        return Err("Please use only one of --offline and --online".into());
    }
    let mut op = Map::new();
    op.insert("OP_ID".into(), json!("OP_INSTANCE_SET_PARAMS"));
    op.insert("instance_name".into(), json!(a.name));
    op.insert("nics".into(), Value::Array(device_mods("--net", &a.net)?));
    op.insert(
        "disks".into(),
        Value::Array(device_mods("--disk", &a.disk)?),
    );
    op.insert("hotplug".into(), json!(a.hotplug));
    op.insert("hotplug_if_possible".into(), json!(a.hotplug_if_possible));
    op.insert("force".into(), json!(a.force));
    op.insert("force_variant".into(), json!(a.force_variant));
    op.insert("wait_for_sync".into(), json!(!a.no_wait_for_sync));
    op.insert("conflicts_check".into(), json!(!a.no_conflicts_check));
    op.insert("ignore_ipolicy".into(), json!(a.ignore_ipolicy));
    let hv = a
        .hypervisor_parameters
        .as_deref()
        .map(|t| hv_params_any(t, DefaultValue::Reset))
        .transpose()?
        .unwrap_or_default();
    op.insert("hvparams".into(), Value::Object(hv));
    let be = a
        .backend_parameters
        .as_deref()
        .map(|t| be_params(t, DefaultValue::Reset))
        .transpose()?
        .unwrap_or_default();
    op.insert("beparams".into(), Value::Object(be));
    let osp = a
        .os_parameters
        .as_deref()
        .map(|t| os_params("-O", t))
        .transpose()?
        .unwrap_or_default();
    op.insert("osparams".into(), Value::Object(osp));
    if let Some(t) = &a.os_parameters_private {
        op.insert(
            "osparams_private".into(),
            Value::Object(os_params("--os-parameters-private", t)?),
        );
    }
    if let Some(m) = &a.runtime_memory {
        op.insert(
            "runtime_mem".into(),
            json!(parse_size_mib(m).map_err(|e| format!("--runtime-memory: {e}"))?),
        );
    }
    if a.offline {
        op.insert("offline".into(), json!(true));
    } else if a.online {
        op.insert("offline".into(), json!(false));
    }
    for (k, v) in [
        ("os_name", &a.os_type),
        ("remote_node", &a.node),
        ("iallocator", &a.iallocator),
        ("pnode", &a.new_primary),
    ] {
        if let Some(v) = v {
            op.insert(k.into(), json!(v));
        }
    }
    Ok(Value::Object(op))
}

/// The `Modified instance X` report from the op's `[[param, value], …]` result.
fn modify_result_lines(name: &str, result: &Value, hvparams_changed: bool) -> Vec<String> {
    let Some(changes) = result.as_array().filter(|a| !a.is_empty()) else {
        return Vec::new();
    };
    let mut out = vec![format!("Modified instance {name}")];
    for c in changes {
        let param = c.get(0).map(super::output::python_str).unwrap_or_default();
        let value = c.get(1).map(super::output::python_str).unwrap_or_default();
        out.push(format!(" - {param:<5} -> {value}"));
    }
    out.push(
        "Please don't forget that most parameters take effect only at the next (re)start \
         of the instance initiated by ganeti; restarting from within the instance will not \
         be enough."
            .into(),
    );
    if hvparams_changed {
        out.push(
            "Note that changing hypervisor parameters without performing a restart might \
             lead to a crash while performing a live migration. This will be addressed in \
             future Ganeti versions."
                .into(),
        );
    }
    out
}

fn modify(a: &ModifyArgs) -> u8 {
    let op = match modify_op(a) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    let hot_nic_modify = op["nics"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x[0] == "modify"));
    if hot_nic_modify
        && a.hotplug
        && !confirmed(
            a.force,
            "You are about to hot-modify a NIC. This will be done by removing the existing \
             NIC and then adding a new one. Network connection might be lost. Continue?",
        )
    {
        return EXIT_FAILURE;
    }
    let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
    let hv_changed = a.hypervisor_parameters.is_some();
    run_job(Ok(op), &opts, |r| {
        print_lines(&modify_result_lines(&a.name, r, hv_changed))
    })
}

fn reinstall_op(a: &ReinstallArgs, name: &str) -> Result<Value, String> {
    let mut op = json!({"OP_ID": "OP_INSTANCE_REINSTALL", "instance_name": name,
        "force_variant": a.force_variant});
    if let Some(os) = &a.os_type {
        op["os_type"] = json!(os);
    }
    for (key, option, text) in [
        ("osparams", "-O", &a.os_parameters),
        (
            "osparams_private",
            "--os-parameters-private",
            &a.os_parameters_private,
        ),
        (
            "osparams_secret",
            "--os-parameters-secret",
            &a.os_parameters_secret,
        ),
    ] {
        if let Some(t) = text {
            op[key] = Value::Object(os_params(option, t)?);
        }
    }
    Ok(op)
}

fn reinstall(a: ReinstallArgs) -> u8 {
    if a.select_os {
        eprintln!("--select-os is not supported yet in ganeti-rs; name the OS with -o");
        return EXIT_FAILURE;
    }
    let opts = match submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    let mode = match a.selectors().selection() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    if let Err(e) = reinstall_op(&a, "check") {
        eprintln!("{e}");
        return EXIT_FAILURE;
    }
    let os_msg = match &a.os_type {
        Some(os) => format!("change the OS to '{os}'"),
        None => "keep the same OS".into(),
    };
    let mut client = match super::connect_master(super::MasterSocket::Master) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (instances, nodes) = match instance_select::fetch_rows(&mut client, mode) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let selected = match instance_select::expand(mode, &a.names, &instances, &nodes) {
        Ok(s) if s.is_empty() => {
            eprintln!("Selection filter does not match any instances");
            return EXIT_FAILURE;
        }
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    let multi = mode.is_multi() || selected.len() > 1;
    let ok = if multi {
        let extra = format!(
            "Note: this will remove *all* data for the below instances! It will {os_msg}.\n"
        );
        a.force_multiple
            || super::prompt::ask_user(&instance_select::confirmation_text(
                &selected,
                "reinstall",
                &extra,
            ))
    } else {
        confirmed(
            a.force || a.force_multiple,
            &format!(
                "This will reinstall the instance '{}' (and {os_msg}) which removes all data. \
                 Continue?",
                selected[0]
            ),
        )
    };
    if !ok {
        return EXIT_FAILURE;
    }
    let mut jobs: Vec<(String, Value)> = selected
        .iter()
        .map(|n| (n.clone(), reinstall_op(&a, n).unwrap_or(Value::Null)))
        .collect();
    if a.keep_known_os_parameters {
        let Some(os) = &a.os_type else {
            eprintln!("--keep-known-os-parameters needs the new OS, given with -o");
            return EXIT_FAILURE;
        };
        let known = match os_known_parameters(&mut client, os, &opts) {
            Ok(k) => k,
            Err(code) => return code,
        };
        let own = match instances_osparams(&mut client) {
            Ok(o) => o,
            Err(code) => return code,
        };
        for (name, op) in &mut jobs {
            let given = op["osparams"].as_object().cloned().unwrap_or_default();
            let empty = Map::new();
            let mine = own.get(name.as_str()).unwrap_or(&empty);
            op["osparams"] = Value::Object(keep_known_osparams(mine, &known, &given));
        }
    }
    instance_select::run_jobs(&mut client, jobs, multi, &opts)
}

/// `--keep-known-os-parameters` (Ganeti's reinstall option, done here
/// because `OP_INSTANCE_REINSTALL` of 3.0 has no such field): the
/// instance's own parameters that `known` (the new OS's
/// `parameters.list`) lacks are reset with `default`, which drops them;
/// `given` (`-O`) still wins.
fn keep_known_osparams(
    own: &Map<String, Value>,
    known: &std::collections::BTreeSet<String>,
    given: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out: Map<String, Value> = own
        .keys()
        .filter(|k| !known.contains(*k) && !given.contains_key(*k))
        .map(|k| (k.clone(), json!("default")))
        .collect();
    out.extend(given.clone());
    out
}

/// The parameter names `os` (with or without variant) declares, from
/// `OP_OS_DIAGNOSE`.
fn os_known_parameters(
    client: &mut crate::luxi::client::Client,
    os: &str,
    opts: &SubmitOpts,
) -> Result<std::collections::BTreeSet<String>, u8> {
    let base = os.split('+').next().unwrap_or(os);
    let op = json!({"OP_ID": "OP_OS_DIAGNOSE", "output_fields": ["name", "parameters"],
        "names": [base]});
    let opts = SubmitOpts {
        dry_run: false,
        ..opts.clone()
    };
    let results =
        super::job::submit_or_send(client, vec![op], &opts).map_err(|e| super::job::report(&e))?;
    let rows = results
        .first()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let row = rows
        .iter()
        .find(|r| r[0].as_str() == Some(base))
        .ok_or_else(|| {
            eprintln!("OS '{base}' not known (gnt-os list shows the OSes of the cluster)");
            EXIT_FAILURE
        })?;
    Ok(row[1]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get(0).and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Every instance's own OS parameters (query field `custom_osparams`).
fn instances_osparams(
    client: &mut crate::luxi::client::Client,
) -> Result<std::collections::BTreeMap<String, Map<String, Value>>, u8> {
    let answer = client
        .call(
            crate::luxi::Method::Query,
            json!(["instance", ["name", "custom_osparams"], null]),
        )
        .map_err(|e| super::report_luxi_error(&e))?;
    let r: crate::query::QueryResponse = serde_json::from_value(answer).map_err(|e| {
        eprintln!("Malformed answer to Query from the master daemon: {e}");
        EXIT_FAILURE
    })?;
    Ok(r.data
        .into_iter()
        .filter_map(|row| {
            let name = row.first()?.value.as_str()?.to_string();
            let params = row.get(1)?.value.as_object()?.clone();
            Some((name, params))
        })
        .collect())
}

fn rename_op(a: &RenameArgs) -> Value {
    json!({"OP_ID": "OP_INSTANCE_RENAME", "instance_name": a.name, "new_name": a.new_name,
        "ip_check": !a.no_ip_check, "name_check": !a.no_name_check})
}

#[allow(clippy::print_stdout)]
fn rename(a: &RenameArgs) -> u8 {
    if a.no_name_check
        && !confirmed(
            a.force,
            &format!(
                "As you disabled the check of the DNS entry, please verify that '{}' is a \
                 FQDN. Continue?",
                a.new_name
            ),
        )
    {
        return EXIT_FAILURE;
    }
    let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
    run_job(Ok(rename_op(a)), &opts, |r| {
        if let Some(new) = r.as_str().filter(|s| !s.is_empty()) {
            println!("Instance '{}' renamed to '{new}'", a.name);
        }
    })
}

/// `node:disk/N:path` lines from `OP_INSTANCE_ACTIVATE_DISKS`'s result.
fn activate_disks_lines(result: &Value) -> Vec<String> {
    result
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let f = |i: usize| r.get(i).map(super::output::python_str).unwrap_or_default();
                    format!("{}:{}:{}", f(0), f(1), f(2))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn grow_disk_op(a: &GrowDiskArgs) -> Result<Value, String> {
    let disk: u64 = a
        .disk
        .parse()
        .map_err(|_| format!("Invalid disk index: {:?}", a.disk))?;
    let amount = parse_size_mib(&a.amount)
        .map_err(|_| format!("Can't parse the given amount '{}'", a.amount))?;
    Ok(
        json!({"OP_ID": "OP_INSTANCE_GROW_DISK", "instance_name": a.name, "disk": disk,
        "amount": amount, "wait_for_sync": !a.no_wait_for_sync, "absolute": a.absolute,
        "ignore_ipolicy": a.ignore_ipolicy}),
    )
}

fn recreate_disks_op(a: &RecreateDisksArgs) -> Result<Value, String> {
    let mut disks = Vec::new();
    for text in &a.disk {
        let (id, kv) =
            match super::kv::parse_ident_keyval(text).map_err(|e| format!("--disk: {e}"))? {
                super::kv::IdentKv::Set(id, kv) => (id, kv),
                _ => return Err(format!("--disk {text:?}: expected N or N:key=value,…")),
            };
        let idx: u64 = id
            .parse()
            .map_err(|_| format!("Invalid disk index passed: {id:?}"))?;
        disks.push(json!([idx, instance_create::disk_params(&id, &kv)?]));
    }
    let nodes: Vec<String> = match &a.node {
        Some(n) => {
            if a.iallocator.is_some() {
                return Err("At most one of either --nodes or --iallocator can be passed".into());
            }
            let (p, s) = split_node_option(n);
            std::iter::once(p).chain(s).collect()
        }
        None => Vec::new(),
    };
    let mut op = json!({"OP_ID": "OP_INSTANCE_RECREATE_DISKS", "instance_name": a.name,
        "disks": disks, "nodes": nodes});
    if let Some(i) = &a.iallocator {
        op["iallocator"] = json!(i);
    }
    Ok(op)
}

fn both_targets(target: &Option<String>, iallocator: &Option<String>) -> Result<(), String> {
    if target.is_some() && iallocator.is_some() {
        return Err("Specify either an iallocator (-I), or a target node (-n) but not both".into());
    }
    Ok(())
}

fn failover_op(a: &FailoverArgs) -> Result<Value, String> {
    both_targets(&a.target_node, &a.iallocator)?;
    let mut op = json!({"OP_ID": "OP_INSTANCE_FAILOVER", "instance_name": a.name,
        "ignore_consistency": a.ignore_consistency, "shutdown_timeout": a.shutdown_timeout,
        "ignore_ipolicy": a.ignore_ipolicy, "cleanup": a.cleanup});
    if let Some(t) = &a.target_node {
        op["target_node"] = json!(t);
    }
    if let Some(i) = &a.iallocator {
        op["iallocator"] = json!(i);
    }
    Ok(op)
}

fn failover(a: &FailoverArgs) -> u8 {
    let op = failover_op(a);
    if op.is_ok() {
        let q = format!(
            "Failover will happen to image {}. This requires a shutdown of the instance. \
             Continue?",
            a.name
        );
        if !confirmed(a.force, &q) {
            return EXIT_FAILURE;
        }
        if a.ignore_consistency
            && !super::prompt::ask_user(&format!(
                "To failover instance {}, the source node must be marked offline first. Is \
                 this already the case?",
                a.name
            ))
        {
            return EXIT_FAILURE;
        }
    }
    let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
    run_job(op, &opts, |_| {})
}

fn migrate_op(a: &MigrateArgs) -> Result<Value, String> {
    both_targets(&a.target_node, &a.iallocator)?;
    if a.non_live && a.migration_mode.is_some() {
        return Err("Only one of the --non-live and --migration-mode options can be passed".into());
    }
    let mode = if a.non_live {
        Some("non-live".to_string())
    } else {
        a.migration_mode.clone()
    };
    if let Some(m) = &mode {
        if m != "live" && m != "non-live" {
            return Err(format!("--migration-mode: {m:?} is not live or non-live"));
        }
    }
    let mut op = json!({"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": a.name,
        "cleanup": a.cleanup, "allow_failover": a.allow_failover,
        "allow_runtime_changes": !a.no_runtime_changes, "ignore_ipolicy": a.ignore_ipolicy,
        "ignore_hvversions": a.ignore_hvversions});
    for (k, v) in [
        ("mode", &mode),
        ("target_node", &a.target_node),
        ("iallocator", &a.iallocator),
    ] {
        if let Some(v) = v {
            op[k] = json!(v);
        }
    }
    Ok(op)
}

fn migrate(a: &MigrateArgs) -> u8 {
    let op = migrate_op(a);
    if op.is_ok() {
        let mut q = if a.cleanup {
            format!(
                "Instance {} will be recovered from a failed migration. Note that the \
                 migration procedure (including cleanup)",
                a.name
            )
        } else {
            format!("Instance {} will be migrated. Note that migration", a.name)
        };
        q.push_str(
            " might impact the instance if anything goes wrong (e.g. due to bugs in the \
             hypervisor). Continue?",
        );
        if !confirmed(a.force, &q) {
            return EXIT_FAILURE;
        }
    }
    let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
    run_job(op, &opts, |_| {})
}

fn move_op(a: &MoveArgs) -> Result<Value, String> {
    let Some(node) = &a.node else {
        return Err("Target node must be specified (-n NODE)".into());
    };
    Ok(
        json!({"OP_ID": "OP_INSTANCE_MOVE", "instance_name": a.name, "target_node": node,
        "compress": a.compress, "shutdown_timeout": a.shutdown_timeout,
        "ignore_consistency": a.ignore_consistency, "ignore_ipolicy": a.ignore_ipolicy}),
    )
}

fn move_instance(a: &MoveArgs) -> u8 {
    let op = move_op(a);
    if op.is_ok()
        && !confirmed(
            a.force,
            &format!(
                "Instance {} will be moved. This requires a shutdown of the instance. Continue?",
                a.name
            ),
        )
    {
        return EXIT_FAILURE;
    }
    let opts = submit_opts(&a.priority, a.submit, a.print_jobid, a.dry_run);
    run_job(op, &opts, |_| {})
}

/// What `console` does with an `OP_INSTANCE_CONSOLE` result (Ganeti's
/// `_DoConsole`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ConsoleAction {
    /// Print this text.
    Print(String),
    /// Run (or, with `--show-cmd`, print) this command.
    Run(Vec<String>),
}

/// Ganeti's `ShellQuote`.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.,=:/_+@".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn console_action(
    console: &Value,
    cluster_name: &str,
    known_hosts: &str,
) -> Result<ConsoleAction, String> {
    let get = |k: &str| {
        console
            .get(k)
            .map(super::output::python_str)
            .unwrap_or_default()
    };
    let instance = get("instance");
    match console.get("kind").and_then(Value::as_str) {
        Some("msg") => Ok(ConsoleAction::Print(get("message"))),
        Some("vnc") => Ok(ConsoleAction::Print(format!(
            "Instance {instance} has VNC listening on {}:{} (display {}), URL <vnc://{}:{}/>",
            get("host"),
            get("port"),
            get("display"),
            get("host"),
            get("port")
        ))),
        Some("spice") => Ok(ConsoleAction::Print(format!(
            "Instance {instance} has SPICE listening on {}:{}",
            get("host"),
            get("port")
        ))),
        Some("ssh") => {
            let command = match console.get("command") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| shell_quote(&super::output::python_str(x)))
                    .collect::<Vec<_>>()
                    .join(" "),
                Some(v) => super::output::python_str(v),
                None => return Err("SSH console without a command".into()),
            };
            let mut argv: Vec<String> = ["ssh", "-oEscapeChar=none", "-oHashKnownHosts=no"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            argv.push(format!("-oGlobalKnownHostsFile={known_hosts}"));
            argv.push("-oUserKnownHostsFile=/dev/null".into());
            argv.push("-oCheckHostIp=no".into());
            argv.push("-oConnectTimeout=10".into());
            argv.push(format!("-oHostKeyAlias={cluster_name}"));
            if let Some(p) = console.get("port").and_then(Value::as_u64) {
                argv.push(format!("-oPort={p}"));
            }
            argv.push("-oBatchMode=yes".into());
            argv.push("-oStrictHostKeyChecking=yes".into());
            argv.push("-t".into());
            argv.push("-t".into());
            argv.push(format!("{}@{}", get("user"), get("host")));
            argv.push(command);
            Ok(ConsoleAction::Run(argv))
        }
        other => Err(format!(
            "Unknown console type '{}'",
            other.unwrap_or_default()
        )),
    }
}

#[allow(clippy::print_stdout)]
fn console(a: &ConsoleArgs) -> u8 {
    let opts = submit_opts(&a.priority, false, false, false);
    let paths = match crate::paths::Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error: {e}");
            return EXIT_FAILURE;
        }
    };
    let cluster_name = match super::connect_master(super::MasterSocket::Query).map(|mut c| {
        c.call(
            crate::luxi::Method::QueryConfigValues,
            json!([["cluster_name"]]),
        )
    }) {
        Ok(Ok(v)) => v
            .get(0)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Ok(Err(e)) => return super::report_luxi_error(&e),
        Err(code) => return code,
    };
    let known_hosts = paths.data_dir().join("known_hosts").display().to_string();
    let mut action = None;
    let op = json!({"OP_ID": "OP_INSTANCE_CONSOLE", "instance_name": a.name});
    let rc = run_job(Ok(op), &opts, |r| {
        action = Some(console_action(r, &cluster_name, &known_hosts));
    });
    if rc != EXIT_SUCCESS {
        return rc;
    }
    match action {
        Some(Ok(ConsoleAction::Print(t))) => {
            println!("{t}");
            EXIT_SUCCESS
        }
        Some(Ok(ConsoleAction::Run(argv))) if a.show_cmd => {
            let quoted: Vec<String> = argv.iter().map(|s| shell_quote(s)).collect();
            println!("{}", quoted.join(" "));
            EXIT_SUCCESS
        }
        Some(Ok(ConsoleAction::Run(argv))) => {
            match crate::sys::cmd::run_interactive(&crate::sys::cmd::Command::new(argv)) {
                Ok(Some(0)) => EXIT_SUCCESS,
                Ok(_) => {
                    eprintln!(
                        "Failure: command execution error:\nConnection to console of instance \
                         {} failed, please check cluster configuration",
                        a.name
                    );
                    EXIT_FAILURE
                }
                Err(e) => {
                    eprintln!("Error: {}", crate::error::chain(&e));
                    EXIT_FAILURE
                }
            }
        }
        Some(Err(e)) => {
            eprintln!("{e}");
            EXIT_FAILURE
        }
        None => EXIT_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcodes::OpCode;

    fn parse(args: &[&str]) -> Command {
        let mut owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some((_, real)) = ALIASES.iter().find(|(a, _)| *a == owned[0]) {
            owned[0] = real.to_string();
        }
        let norm = super::super::normalize_argv(&owned, short_with_value(&owned[0]));
        let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
        GntInstance::from_args(&["gnt-instance"], &refs)
            .unwrap()
            .command
    }

    /// The op must be one masterd accepts: valid by the opcode definitions.
    fn valid(op: &Value) -> Value {
        let parsed = OpCode::from_json(op).unwrap();
        parsed.validate().unwrap();
        parsed.to_json()
    }

    #[test]
    fn add_builds_op_instance_create() {
        let Command::Add(a) = parse(&[
            "add",
            "-tplain",
            "--disk=0:size=10G,mode=rw",
            "--disk",
            "1:size=512",
            "--net",
            "0:link=br0,mac=aa:00:00:00:00:01",
            "-o",
            "noop+default",
            "-O",
            "dhcp=yes",
            "-H",
            "kvm:acpi=no",
            "-B",
            "memory=1G,vcpus=2",
            "-n",
            "node1",
            "--no-start",
            "--no-ip-check",
            "--no-name-check",
            "--file-storage-dir",
            "x",
            "inst1.example.com",
        ]) else {
            panic!("not add")
        };
        let op = valid(&add_op(&a).unwrap());
        assert_eq!(op["OP_ID"], "OP_INSTANCE_CREATE");
        assert_eq!(op["mode"], "create");
        assert_eq!(op["disk_template"], "plain");
        assert_eq!(
            op["disks"],
            json!([{"size": 10240, "mode": "rw"}, {"size": 512}])
        );
        assert_eq!(op["nics"][0]["link"], "br0");
        assert_eq!(op["os_type"], "noop+default");
        assert_eq!(op["osparams"]["dhcp"], "yes");
        assert_eq!(op["hypervisor"], "kvm");
        assert_eq!(op["hvparams"]["acpi"], false);
        assert_eq!(
            op["beparams"],
            json!({"maxmem": 1024, "minmem": 1024, "vcpus": 2})
        );
        assert_eq!(op["pnode"], "node1");
        assert_eq!(op["start"], false);
        assert_eq!(op["ip_check"], false);
        assert_eq!(op["name_check"], false);
        assert_eq!(op["wait_for_sync"], true);
        let Command::Add(s) = parse(&["add", "-t", "file", "-s", "1G", "--no-install", "i2"])
        else {
            panic!("not add")
        };
        let op = valid(&add_op(&s).unwrap());
        assert_eq!(op["disks"], json!([{"size": 1024}]));
        assert_eq!(op["nics"], json!([{}]));
        let Command::Add(no_os) = parse(&["add", "-t", "diskless", "i3"]) else {
            panic!("not add")
        };
        assert!(add_op(&no_os).unwrap_err().contains("-o"));
        let Command::Add(bad) = parse(&[
            "add",
            "-t",
            "plain",
            "-o",
            "x",
            "--disk",
            "0:size=lots",
            "i4",
        ]) else {
            panic!("not add")
        };
        assert!(add_op(&bad)
            .unwrap_err()
            .contains("Invalid disk size for disk 0"));
    }

    #[test]
    fn remove_and_lifecycle_ops() {
        let Command::Remove(r) = parse(&[
            "remove",
            "-f",
            "--shutdown-timeout",
            "30",
            "--ignore-failures",
            "i1",
        ]) else {
            panic!("not remove")
        };
        let op = valid(&remove_op(&r));
        assert_eq!(op["shutdown_timeout"], 30);
        assert_eq!(op["ignore_failures"], true);
        assert!(r.force);

        let Command::Startup(s) = parse(&[
            "start",
            "--all",
            "-H",
            "boot_order=cdrom",
            "-B",
            "maxmem=256",
            "--no-remember",
            "--force-multiple",
        ]) else {
            panic!("not startup")
        };
        assert_eq!(
            s.selectors().selection(),
            Ok(instance_select::Selection::Cluster)
        );
        let op = valid(&startup_builder(&s).unwrap()("i1"));
        assert_eq!(op["OP_ID"], "OP_INSTANCE_STARTUP");
        assert_eq!(op["hvparams"]["boot_order"], "cdrom");
        assert_eq!(op["beparams"]["maxmem"], 256);
        assert_eq!(op["no_remember"], true);
        let Command::Startup(bad) = parse(&["startup", "-B", "maxmem=much", "i1"]) else {
            panic!("not startup")
        };
        assert!(startup_builder(&bad).is_err());

        let Command::Shutdown(d) = parse(&["stop", "--timeout", "5", "--primary", "node1"]) else {
            panic!("not shutdown")
        };
        assert_eq!(
            d.selectors().selection(),
            Ok(instance_select::Selection::NodesPrimary)
        );
        let op = valid(&shutdown_op(&d, "i1"));
        assert_eq!(op["timeout"], 5);

        let Command::Reboot(b) = parse(&[
            "reboot",
            "-t",
            "soft",
            "--ignore-secondaries",
            "--tags",
            "web",
        ]) else {
            panic!("not reboot")
        };
        let op = valid(&reboot_builder(b).unwrap()("i1"));
        assert_eq!(op["reboot_type"], "soft");
        assert_eq!(op["ignore_secondaries"], true);
        let Command::Reboot(bad) = parse(&["reboot", "--type", "gentle", "i1"]) else {
            panic!("not reboot")
        };
        assert!(reboot_builder(bad).is_err());
    }

    #[test]
    fn info_op_and_arguments() {
        let Command::Info(i) = parse(&["show", "-s", "i1", "i2"]) else {
            panic!("not info")
        };
        let op = valid(&info_op(&i).unwrap());
        assert_eq!(op["static"], true);
        assert_eq!(op["use_locking"], false);
        assert_eq!(op["instances"], json!(["i1", "i2"]));
        let Command::Info(none) = parse(&["info"]) else {
            panic!("not info")
        };
        assert!(info_op(&none)
            .unwrap_err()
            .starts_with("No instance selected."));
        let Command::Info(both) = parse(&["info", "--all", "i1"]) else {
            panic!("not info")
        };
        assert_eq!(
            info_op(&both).unwrap_err(),
            "Cannot use --all if you specify instance names."
        );
    }

    #[test]
    fn modify_builds_op_instance_set_params() {
        let Command::Modify(m) = parse(&[
            "modify",
            "-B",
            "vcpus=4,maxmem=default",
            "-H",
            "acpi=no",
            "--net",
            "add:link=br1",
            "--net",
            "1:remove",
            "--disk",
            "add:size=2G",
            "--disk",
            "0:modify,name=root",
            "--offline",
            "-m",
            "512M",
            "i1",
        ]) else {
            panic!("not modify")
        };
        let op = valid(&modify_op(&m).unwrap());
        assert_eq!(op["beparams"], json!({"vcpus": 4, "maxmem": "default"}));
        assert_eq!(op["hvparams"], json!({"acpi": false}));
        assert_eq!(
            op["nics"],
            json!([["add", -1, {"link": "br1"}], ["remove", 1, {}]])
        );
        assert_eq!(
            op["disks"],
            json!([["add", -1, {"size": 2048}], ["modify", 0, {"name": "root"}]])
        );
        assert_eq!(op["offline"], true);
        assert_eq!(op["runtime_mem"], 512);
        let Command::Modify(none) = parse(&["modify", "i1"]) else {
            panic!("not modify")
        };
        assert_eq!(
            modify_op(&none).unwrap_err(),
            "Please give at least one of the parameters."
        );
        let Command::Modify(conv) = parse(&["modify", "-t", "drbd", "-n", "node2", "i1"]) else {
            panic!("not modify")
        };
        assert!(modify_op(&conv).unwrap_err().contains("not supported yet"));
        let Command::Modify(rm) = parse(&["modify", "--disk", "0:remove,size=1G", "i1"]) else {
            panic!("not modify")
        };
        assert_eq!(
            modify_op(&rm).unwrap_err(),
            "Not accepting parameters on removal/detach"
        );
        let Command::Modify(addnosize) = parse(&["modify", "--disk", "add:mode=rw", "i1"]) else {
            panic!("not modify")
        };
        assert_eq!(
            modify_op(&addnosize).unwrap_err(),
            "Missing required parameter 'size'"
        );
        let Command::Modify(two) = parse(&["modify", "--net", "0:add,remove", "i1"]) else {
            panic!("not modify")
        };
        assert!(modify_op(&two)
            .unwrap_err()
            .starts_with("Cannot do more than one"));
        let lines = modify_result_lines("i1", &json!([["be/vcpus", 4]]), false);
        assert_eq!(lines[0], "Modified instance i1");
        assert_eq!(lines[1], " - be/vcpus -> 4");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn keep_known_os_parameters_drops_the_unknown_ones() {
        let Command::Reinstall(r) = parse(&[
            "reinstall",
            "-o",
            "image+default",
            "--keep-known-os-parameters",
            "-O",
            "size=8",
            "i1",
        ]) else {
            panic!("not reinstall")
        };
        assert!(r.keep_known_os_parameters);
        let own = json!({"dist": "bookworm", "size": "4", "mirror": "http://m"});
        let known = ["size".to_string(), "mirror".to_string()].into();
        let given = reinstall_op(&r, "i1").unwrap()["osparams"].clone();
        let out = keep_known_osparams(own.as_object().unwrap(), &known, given.as_object().unwrap());
        // Unknown to the new OS: reset (the LU drops "default" values);
        // known ones stay as they are; -O wins.
        assert_eq!(Value::Object(out), json!({"dist": "default", "size": "8"}));
        let op = valid(
            &json!({"OP_ID": "OP_INSTANCE_REINSTALL", "instance_name": "i1",
            "osparams": {"dist": "default"}}),
        );
        assert_eq!(op["osparams"]["dist"], "default");
    }

    #[test]
    fn reinstall_rename_and_disk_ops() {
        let Command::Reinstall(r) = parse(&["reinstall", "-o", "noop", "-O", "a=b", "-f", "i1"])
        else {
            panic!("not reinstall")
        };
        let op = valid(&reinstall_op(&r, "i1").unwrap());
        assert_eq!(op["os_type"], "noop");
        assert_eq!(op["osparams"], json!({"a": "b"}));

        let Command::Rename(n) = parse(&["rename", "--no-ip-check", "i1", "i9.example.com"]) else {
            panic!("not rename")
        };
        let op = valid(&rename_op(&n));
        assert_eq!(op["new_name"], "i9.example.com");
        assert_eq!(op["ip_check"], false);
        assert_eq!(op["name_check"], true);

        let Command::GrowDisk(g) = parse(&["grow-disk", "--absolute", "i1", "0", "20G"]) else {
            panic!("not grow-disk")
        };
        let op = valid(&grow_disk_op(&g).unwrap());
        assert_eq!(op["amount"], 20480);
        assert_eq!(op["absolute"], true);
        let Command::GrowDisk(bad) = parse(&["grow-disk", "i1", "zero", "1G"]) else {
            panic!("not grow-disk")
        };
        assert!(grow_disk_op(&bad)
            .unwrap_err()
            .contains("Invalid disk index"));
        let Command::GrowDisk(bad) = parse(&["grow-disk", "i1", "0", "1Q"]) else {
            panic!("not grow-disk")
        };
        assert_eq!(
            grow_disk_op(&bad).unwrap_err(),
            "Can't parse the given amount '1Q'"
        );

        let Command::RecreateDisks(c) = parse(&[
            "recreate-disks",
            "--disk",
            "0:size=2G",
            "--disk",
            "1",
            "-n",
            "node1:node2",
            "i1",
        ]) else {
            panic!("not recreate-disks")
        };
        let op = valid(&recreate_disks_op(&c).unwrap());
        assert_eq!(op["disks"], json!([[0, {"size": 2048}], [1, {}]]));
        assert_eq!(op["nodes"], json!(["node1", "node2"]));
        let Command::RecreateDisks(both) =
            parse(&["recreate-disks", "-n", "a", "-I", "hail", "i1"])
        else {
            panic!("not recreate-disks")
        };
        assert!(recreate_disks_op(&both).is_err());

        assert_eq!(
            activate_disks_lines(&json!([["node1", "disk/0", "/dev/loop0"]])),
            ["node1:disk/0:/dev/loop0"]
        );
        valid(
            &json!({"OP_ID": "OP_INSTANCE_ACTIVATE_DISKS", "instance_name": "i1",
            "ignore_size": false, "wait_for_sync": true}),
        );
    }

    #[test]
    fn failover_migrate_move_ops() {
        let Command::Failover(f) = parse(&[
            "failover",
            "-f",
            "--ignore-consistency",
            "-n",
            "node3",
            "i1",
        ]) else {
            panic!("not failover")
        };
        let op = valid(&failover_op(&f).unwrap());
        assert_eq!(op["target_node"], "node3");
        assert_eq!(op["ignore_consistency"], true);
        let Command::Failover(both) = parse(&["failover", "-n", "a", "-I", "hail", "i1"]) else {
            panic!("not failover")
        };
        assert!(failover_op(&both)
            .unwrap_err()
            .starts_with("Specify either"));

        let Command::Migrate(m) = parse(&[
            "migrate",
            "--non-live",
            "--cleanup",
            "--allow-failover",
            "i1",
        ]) else {
            panic!("not migrate")
        };
        let op = valid(&migrate_op(&m).unwrap());
        assert_eq!(op["mode"], "non-live");
        assert_eq!(op["cleanup"], true);
        assert_eq!(op["allow_failover"], true);
        let Command::Migrate(live) = parse(&["migrate", "--migration-mode", "live", "i1"]) else {
            panic!("not migrate")
        };
        assert_eq!(valid(&migrate_op(&live).unwrap())["mode"], "live");
        let Command::Migrate(clash) =
            parse(&["migrate", "--non-live", "--migration-mode", "live", "i1"])
        else {
            panic!("not migrate")
        };
        assert!(migrate_op(&clash).is_err());

        let Command::Move(v) = parse(&["move", "-n", "node2", "i1"]) else {
            panic!("not move")
        };
        let op = valid(&move_op(&v).unwrap());
        assert_eq!(op["target_node"], "node2");
        let Command::Move(none) = parse(&["move", "i1"]) else {
            panic!("not move")
        };
        assert!(move_op(&none).is_err());
    }

    #[test]
    fn console_follows_ganeti() {
        let ssh = json!({"instance": "i1", "kind": "ssh", "host": "node1", "user": "root",
            "command": ["/usr/bin/socat", "STDIO,raw", "UNIX-CONNECT:/var/run/ganeti/kvm-hypervisor/ctrl/i1.serial"]});
        let ConsoleAction::Run(argv) =
            console_action(&ssh, "cluster.example.com", "/var/lib/ganeti/known_hosts").unwrap()
        else {
            panic!("not a command")
        };
        assert_eq!(argv[0], "ssh");
        assert!(argv.contains(&"-oHostKeyAlias=cluster.example.com".to_string()));
        assert!(argv.contains(&"-oGlobalKnownHostsFile=/var/lib/ganeti/known_hosts".to_string()));
        assert_eq!(argv[argv.len() - 2], "root@node1");
        assert_eq!(
            argv[argv.len() - 1],
            "/usr/bin/socat STDIO,raw UNIX-CONNECT:/var/run/ganeti/kvm-hypervisor/ctrl/i1.serial"
        );
        let vnc =
            json!({"instance": "i1", "kind": "vnc", "host": "node1", "port": 5901, "display": 1});
        assert_eq!(
            console_action(&vnc, "c", "k").unwrap(),
            ConsoleAction::Print(
                "Instance i1 has VNC listening on node1:5901 (display 1), URL <vnc://node1:5901/>"
                    .into()
            )
        );
        let msg = json!({"instance": "i1", "kind": "msg", "message": "no console"});
        assert_eq!(
            console_action(&msg, "c", "k").unwrap(),
            ConsoleAction::Print("no console".into())
        );
        assert!(console_action(&json!({"kind": "teletype"}), "c", "k").is_err());
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("a,b:c"), "a,b:c");
    }

    #[test]
    fn unbuilt_commands_are_refused() {
        let args = vec!["replace-disks".to_string(), "i1".to_string()];
        assert_eq!(
            refuse_unbuilt("gnt-instance", &args, BUILT_COMMANDS, GANETI_COMMANDS, "x"),
            Some(crate::applets::EXIT_NOT_IMPLEMENTED)
        );
        let args = vec!["startup".to_string()];
        assert_eq!(
            refuse_unbuilt("gnt-instance", &args, BUILT_COMMANDS, GANETI_COMMANDS, "x"),
            None
        );
    }
}
