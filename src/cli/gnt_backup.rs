//! `gnt-backup`: instance exports (Ganeti's `gnt-backup`).
//!
//! `export` submits `OP_BACKUP_EXPORT`, `remove` `OP_BACKUP_REMOVE`, and
//! `import` builds `OP_INSTANCE_CREATE` in import mode with the options of
//! `gnt-instance add` ([`super::instance_create`]). `list` and
//! `list-fields` are Query2 over the `export` resource, whose rows masterd
//! gathers from the nodes' export directories.

use super::instance_create::{create_op, CreateMode, CreateOptions};
use super::job::{parse_priority, run_job, SubmitOpts};
use super::parse_args;
use argh::FromArgs;
use serde_json::{json, Value};

/// Ganeti 3.0's gnt-backup commands.
const GANETI_COMMANDS: &[&str] = &["list", "list-fields", "export", "import", "remove"];

/// The commands built so far.
const BUILT: &[&str] = &["list", "list-fields", "export", "import", "remove"];

/// Short options that take a value (for argv normalisation).
const SHORT_WITH_VALUE: &[char] = &['t', 's', 'o', 'O', 'H', 'B', 'n', 'g', 'I'];

#[derive(FromArgs, Debug)]
/// Instance export and import (Ganeti's gnt-backup).
struct GntBackup {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
// Parsed once per run and dropped; boxing would gain nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    List(ListArgs),
    ListFields(super::list::ListFieldsCmd),
    Export(ExportArgs),
    Import(ImportArgs),
    Remove(RemoveArgs),
}

#[derive(FromArgs, Debug)]
/// Lists the exports on the nodes.
#[argh(subcommand, name = "list")]
struct ListArgs {
    /// only the exports on this node (repeatable)
    #[argh(option)]
    node: Vec<String>,
    /// fields to show: node, export (default both)
    #[argh(option, short = 'o')]
    output: Option<String>,
    /// do not print the header line
    #[argh(switch)]
    no_headers: bool,
    /// separate columns with this text instead of aligning them
    #[argh(option)]
    separator: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Exports an instance to a node.
#[argh(subcommand, name = "export")]
struct ExportArgs {
    /// accepted for compatibility
    #[argh(switch, short = 'f')]
    force: bool,
    /// node to export to
    #[argh(option, short = 'n')]
    node: Option<String>,
    /// compression for the transfer (default none)
    #[argh(option, default = "String::from(\"none\")")]
    transport_compression: String,
    /// do not shut the instance down first (unsafe)
    #[argh(switch)]
    noshutdown: bool,
    /// seconds to wait for the instance to shut down (default 120)
    #[argh(option, default = "120")]
    shutdown_timeout: u64,
    /// remove the instance after exporting it
    #[argh(switch)]
    remove_instance: bool,
    /// remove the instance from the configuration even if removal fails
    #[argh(switch)]
    ignore_remove_failures: bool,
    /// export mode: only "local" is supported
    #[argh(option, default = "String::from(\"local\")")]
    mode: String,
    /// zero the free space of the disks before exporting
    #[argh(switch)]
    zero_free_space: bool,
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
/// Imports an instance from an export.
#[argh(subcommand, name = "import")]
struct ImportArgs {
    /// disk template
    #[argh(option, short = 't')]
    disk_template: Option<String>,
    /// disk N:size=SIZE,mode=…,name=…,vg=… (repeatable)
    #[argh(option)]
    disk: Vec<String>,
    /// size of the single disk
    #[argh(option, short = 's')]
    os_size: Option<String>,
    /// NIC N:mode=…,link=…,ip=…,mac=…,name=… (repeatable)
    #[argh(option)]
    net: Vec<String>,
    /// no network cards
    #[argh(switch)]
    no_nics: bool,
    /// OS parameters key=val,…
    #[argh(option, short = 'O')]
    os_parameters: Option<String>,
    /// private OS parameters key=val,…
    #[argh(option)]
    os_parameters_private: Option<String>,
    /// secret OS parameters key=val,…
    #[argh(option)]
    os_parameters_secret: Option<String>,
    /// hypervisor and its parameters: hv[:key=val,…]
    #[argh(option, short = 'H')]
    hypervisor_parameters: Option<String>,
    /// backend parameters key=val,…
    #[argh(option, short = 'B')]
    backend_parameters: Option<String>,
    /// pnode[:snode]
    #[argh(option, short = 'n')]
    node: Option<String>,
    /// node group
    #[argh(option, short = 'g')]
    node_group: Option<String>,
    /// choose the nodes with this iallocator
    #[argh(option, short = 'I')]
    iallocator: Option<String>,
    /// do not check that the instance's IP is unused
    #[argh(switch)]
    no_ip_check: bool,
    /// do not check that the instance's name resolves
    #[argh(switch)]
    no_name_check: bool,
    /// do not check for conflicting IPs
    #[argh(switch)]
    no_conflicts_check: bool,
    /// do not wait for the disks to sync
    #[argh(switch)]
    no_wait_for_sync: bool,
    /// directory for file-based disks
    #[argh(option)]
    file_storage_dir: Option<String>,
    /// driver for file-based disks
    #[argh(option)]
    file_driver: Option<String>,
    /// comma-separated tags
    #[argh(option)]
    tags: Option<String>,
    /// node holding the export
    #[argh(option)]
    src_node: Option<String>,
    /// directory of the export
    #[argh(option)]
    src_dir: Option<String>,
    /// mark saved parameters equal to the cluster defaults as defaults
    #[argh(switch)]
    identify_defaults: bool,
    /// compression of the transfer (default none)
    #[argh(option, default = "String::from(\"none\")")]
    compress: String,
    /// ignore instance policy violations
    #[argh(switch)]
    ignore_ipolicy: bool,
    /// lock only the nodes that are free
    #[argh(switch)]
    opportunistic_locking: bool,
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
/// Removes the exports of an instance.
#[argh(subcommand, name = "remove")]
struct RemoveArgs {
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
    if let Some(code) =
        super::list::refuse_unbuilt(program, args, BUILT, GANETI_COMMANDS, "a later issue")
    {
        return code;
    }
    let cmd: GntBackup = match parse_args(program, args, SHORT_WITH_VALUE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (op, opts) = match &cmd.command {
        Command::List(a) => return list(a),
        Command::ListFields(f) => {
            return match super::connect_master(super::MasterSocket::Query) {
                Ok(mut c) => super::list::generic_list_fields(
                    &mut c,
                    crate::query::Resource::Export,
                    &f.fields,
                    f.no_headers,
                    f.separator.as_deref(),
                ),
                Err(code) => code,
            }
        }
        Command::Export(a) => (
            export_op(a),
            opts(&a.priority, a.submit, a.print_jobid, a.dry_run),
        ),
        Command::Import(a) => (
            import_op(a),
            opts(&a.priority, a.submit, a.print_jobid, a.dry_run),
        ),
        Command::Remove(a) => (
            Ok(json!({"OP_ID": "OP_BACKUP_REMOVE", "instance_name": a.name})),
            opts(&a.priority, a.submit, a.print_jobid, a.dry_run),
        ),
    };
    run_job(op, &opts, |_| {})
}

/// `gnt-backup list`: Query2 over the `export` resource (masterd asks the
/// nodes), filtered on `--node` as Ganeti's `MakeSimpleFilter` does.
fn list(a: &ListArgs) -> u8 {
    let mut client = match super::connect_master(super::MasterSocket::Query) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fields = super::list::selected_fields(a.output.as_deref(), &["node", "export"]);
    let filter = match a.node.len() {
        0 => Value::Null,
        _ => {
            let mut f = vec![json!("|")];
            f.extend(a.node.iter().map(|n| json!(["=", "node", n])));
            Value::Array(f)
        }
    };
    let args = super::list::ListArgs {
        output: a.output.clone(),
        no_headers: a.no_headers,
        separator: a.separator.clone(),
        ..Default::default()
    };
    super::list::list_filtered(
        &mut client,
        crate::query::Resource::Export,
        &fields,
        filter,
        &args,
        None,
    )
}

fn opts(
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

/// `OP_BACKUP_EXPORT` from `export`'s options.
fn export_op(a: &ExportArgs) -> Result<Value, String> {
    let _ = a.force;
    let Some(node) = &a.node else {
        return Err("Target node must be specified".into());
    };
    if a.mode != "local" {
        return Err(format!(
            "--mode {:?}: only local exports are supported",
            a.mode
        ));
    }
    Ok(
        json!({"OP_ID": "OP_BACKUP_EXPORT", "instance_name": a.name, "target_node": node,
        "compress": a.transport_compression, "shutdown": !a.noshutdown,
        "shutdown_timeout": a.shutdown_timeout, "remove_instance": a.remove_instance,
        "ignore_remove_failures": a.ignore_remove_failures, "mode": a.mode,
        "zero_free_space": a.zero_free_space}),
    )
}

/// `OP_INSTANCE_CREATE` (mode import) from `import`'s options.
fn import_op(a: &ImportArgs) -> Result<Value, String> {
    let o = CreateOptions {
        disk_template: a.disk_template.clone(),
        disks: a.disk.clone(),
        os_size: a.os_size.clone(),
        nics: a.net.clone(),
        no_nics: a.no_nics,
        osparams: a.os_parameters.clone(),
        osparams_private: a.os_parameters_private.clone(),
        osparams_secret: a.os_parameters_secret.clone(),
        hypervisor: a.hypervisor_parameters.clone(),
        beparams: a.backend_parameters.clone(),
        node: a.node.clone(),
        nodegroup: a.node_group.clone(),
        iallocator: a.iallocator.clone(),
        no_ip_check: a.no_ip_check,
        no_name_check: a.no_name_check,
        no_conflicts_check: a.no_conflicts_check,
        no_wait_for_sync: a.no_wait_for_sync,
        file_storage_dir: a.file_storage_dir.clone(),
        file_driver: a.file_driver.clone(),
        tags: a.tags.clone(),
        ignore_ipolicy: a.ignore_ipolicy,
        opportunistic_locking: a.opportunistic_locking,
        ..Default::default()
    };
    let mode = CreateMode::Import {
        src_node: a.src_node.clone(),
        src_dir: a.src_dir.clone(),
        identify_defaults: a.identify_defaults,
        compress: a.compress.clone(),
    };
    create_op(&a.name, &o, &mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcodes::OpCode;

    fn parse(args: &[&str]) -> GntBackup {
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let norm = super::super::normalize_argv(&owned, SHORT_WITH_VALUE);
        let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
        GntBackup::from_args(&["gnt-backup"], &refs).unwrap()
    }

    fn valid(op: &Value) -> Value {
        let parsed = OpCode::from_json(op).unwrap();
        parsed.validate().unwrap();
        parsed.to_json()
    }

    #[test]
    fn export_builds_op_backup_export() {
        let Command::Export(a) = parse(&[
            "export",
            "-n",
            "node2",
            "--noshutdown",
            "--remove-instance",
            "inst1",
        ])
        .command
        else {
            panic!("not export");
        };
        let op = valid(&export_op(&a).unwrap());
        assert_eq!(op["OP_ID"], "OP_BACKUP_EXPORT");
        assert_eq!(op["target_node"], "node2");
        assert_eq!(op["shutdown"], false);
        assert_eq!(op["remove_instance"], true);
        assert_eq!(op["mode"], "local");
        let Command::Export(b) = parse(&["export", "inst1"]).command else {
            panic!("not export");
        };
        assert_eq!(export_op(&b).unwrap_err(), "Target node must be specified");
        let Command::Export(c) = parse(&["export", "-n", "x", "--mode", "remote", "i"]).command
        else {
            panic!("not export");
        };
        assert!(export_op(&c).unwrap_err().contains("remote"));
    }

    #[test]
    fn import_builds_create_in_import_mode() {
        let Command::Import(a) = parse(&[
            "import",
            "-t",
            "plain",
            "--disk",
            "0:size=1G",
            "-n",
            "node1",
            "--src-node",
            "node2",
            "--src-dir",
            "/srv/ganeti/export/inst1",
            "--no-name-check",
            "--no-ip-check",
            "inst1",
        ])
        .command
        else {
            panic!("not import");
        };
        let op = valid(&import_op(&a).unwrap());
        assert_eq!(op["OP_ID"], "OP_INSTANCE_CREATE");
        assert_eq!(op["mode"], "import");
        assert_eq!(op["src_node"], "node2");
        assert_eq!(op["disks"], json!([{"size": 1024}]));
        assert_eq!(op["start"], false);
        assert_eq!(op["nics"], json!([]));
    }

    #[test]
    fn remove_op_is_valid() {
        valid(&json!({"OP_ID": "OP_BACKUP_REMOVE", "instance_name": "inst1"}));
        assert!(matches!(
            parse(&["remove", "inst1"]).command,
            Command::Remove(_)
        ));
    }
}
