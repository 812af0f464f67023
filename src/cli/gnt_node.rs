//! `gnt-node`: node administration.
//!
//! `add`, `modify`, `remove` and `powercycle` submit Ganeti's opcodes
//! (`OP_NODE_ADD`, `OP_NODE_SET_PARAMS`, `OP_NODE_REMOVE`,
//! `OP_NODE_POWERCYCLE`) to masterd; `info` reads Query2 like `list`. The
//! node-side work of `add` (the join protocol, see [`crate::join`]) is done
//! by the master, not here. Ganeti's other commands say they are not built.

use super::job::{parse_priority, run_job, SubmitOpts};
use super::kv::parse_keyval;
use super::list::listing_program;
use super::output::{params_info, python_repr, Info};
use super::{parse_args, report_luxi_error, MasterSocket, EXIT_FAILURE, EXIT_SUCCESS};
use crate::config::params::{self, ParamFamily};
use crate::luxi::client::Client;
use crate::luxi::Method;
use crate::query::filter::{make_filter, FilterArgs, NameKind};
use crate::query::{QueryResponse, Resource, ResultStatus};
use argh::FromArgs;
use serde_json::{json, Map, Value};

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

/// The commands this module parses itself; the listing ones go to
/// [`listing_program`].
const NODE_COMMANDS: &[&str] = &["add", "modify", "remove", "info", "powercycle"];

/// Short options that take a value (for argv normalisation).
const SHORT_WITH_VALUE: &[char] = &['s', 'g', 'N', 'C', 'D', 'O'];

#[derive(FromArgs, Debug)]
/// Node administration (Ganeti's gnt-node).
struct GntNode {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Add(AddArgs),
    Modify(ModifyArgs),
    Remove(RemoveArgs),
    Info(InfoArgs),
    Powercycle(PowercycleArgs),
}

#[derive(FromArgs, Debug)]
/// Adds a node to the cluster (its ganeti-noded must hold a join token from
/// `gnt-cluster join-token`).
#[argh(subcommand, name = "add")]
struct AddArgs {
    /// secondary (replication) IP of the node
    #[argh(option, short = 's')]
    secondary_ip: Option<String>,
    /// node group to put the node in (default: the default group)
    #[argh(option, short = 'g')]
    node_group: Option<String>,
    /// whether the node may become master: yes or no
    #[argh(option)]
    master_capable: Option<String>,
    /// whether the node may host instances: yes or no
    #[argh(option)]
    vm_capable: Option<String>,
    /// re-add a node that was in the cluster before
    #[argh(switch)]
    readd: bool,
    /// node parameters key=val,…
    #[argh(option, short = 'N')]
    node_parameters: Option<String>,
    /// accepted for compatibility: nodes join over TLS, not SSH
    #[argh(switch)]
    no_ssh_key_check: bool,
    /// accepted for compatibility: nodes join over TLS, not SSH
    #[argh(switch)]
    force_join: bool,
    /// accepted for compatibility: SSH setup is never changed
    #[argh(switch)]
    no_node_setup: bool,
    /// accepted for compatibility
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// the node's name
    #[argh(positional)]
    node: String,
}

#[derive(FromArgs, Debug)]
/// Changes a node's flags and parameters.
#[argh(subcommand, name = "modify")]
struct ModifyArgs {
    /// do not ask for confirmation and skip safety checks
    #[argh(switch, short = 'f')]
    force: bool,
    /// make the node a master candidate or not: yes or no
    #[argh(option, short = 'C')]
    master_candidate: Option<String>,
    /// drain the node or not: yes or no
    #[argh(option, short = 'D')]
    drained: Option<String>,
    /// mark the node offline or online: yes or no
    #[argh(option, short = 'O')]
    offline: Option<String>,
    /// whether the node may become master: yes or no
    #[argh(option)]
    master_capable: Option<String>,
    /// whether the node may host instances: yes or no
    #[argh(option)]
    vm_capable: Option<String>,
    /// new secondary IP
    #[argh(option, short = 's')]
    secondary_ip: Option<String>,
    /// promote other nodes to master candidate when needed
    #[argh(switch)]
    auto_promote: bool,
    /// node parameters key=val,…
    #[argh(option, short = 'N')]
    node_parameters: Option<String>,
    /// record whether the node is powered: yes or no
    #[argh(option)]
    node_powered: Option<String>,
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
    /// the node
    #[argh(positional)]
    node: String,
}

#[derive(FromArgs, Debug)]
/// Removes a node from the cluster.
#[argh(subcommand, name = "remove")]
struct RemoveArgs {
    /// only check, do not change
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// the node
    #[argh(positional)]
    node: String,
}

#[derive(FromArgs, Debug)]
/// Shows information about nodes (all when none are named).
#[argh(subcommand, name = "info")]
struct InfoArgs {
    /// node names
    #[argh(positional)]
    nodes: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Hard power-cycles a node through its node daemon.
#[argh(subcommand, name = "powercycle")]
struct PowercycleArgs {
    /// power-cycle even the master node
    #[argh(switch, short = 'f')]
    force: bool,
    /// do not ask for confirmation
    #[argh(switch)]
    yes: bool,
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
    /// the node
    #[argh(positional)]
    node: String,
}

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    let ours = args
        .first()
        .is_some_and(|a| NODE_COMMANDS.contains(&a.as_str()));
    if !ours {
        return listing_program(
            program,
            args,
            Resource::Node,
            LIST_DEFAULT_FIELDS,
            GANETI_COMMANDS,
            "a later issue",
        );
    }
    let cmd: GntNode = match parse_args(program, args, SHORT_WITH_VALUE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cmd.command {
        Command::Add(a) => run_job(
            add_op(&a),
            &job_opts(a.priority.as_deref(), false, false, false),
            |_| {},
        ),
        Command::Modify(a) => modify(&a),
        Command::Remove(a) => run_job(
            Ok(json!({"OP_ID": "OP_NODE_REMOVE", "node_name": a.node})),
            &job_opts(a.priority.as_deref(), false, false, a.dry_run),
            |_| {},
        ),
        Command::Info(a) => with_client(MasterSocket::Query, |c| info(c, &a.nodes)),
        Command::Powercycle(a) => powercycle(&a),
    }
}

fn with_client(which: MasterSocket, f: impl FnOnce(&mut Client) -> u8) -> u8 {
    match super::connect_master(which) {
        Ok(mut c) => f(&mut c),
        Err(code) => code,
    }
}

fn job_opts(
    priority: Option<&str>,
    submit: bool,
    print_jobid: bool,
    dry_run: bool,
) -> Result<SubmitOpts, String> {
    Ok(SubmitOpts {
        submit_only: submit,
        print_jobid,
        priority: priority.map(parse_priority).transpose()?,
        dry_run,
    })
}

/// Ganeti's yes/no option values.
fn yes_no(option: &str, v: Option<&str>) -> Result<Option<bool>, String> {
    match v {
        None => Ok(None),
        Some("yes" | "true") => Ok(Some(true)),
        Some("no" | "false") => Ok(Some(false)),
        Some(other) => Err(format!("{option} takes yes or no, not {other:?}")),
    }
}

/// Typed `--node-parameters` values.
fn ndparams(text: &str) -> Result<Value, String> {
    let items = parse_keyval(text).map_err(|e| format!("--node-parameters: {e}"))?;
    let items: Vec<(String, Option<String>)> =
        items.into_iter().map(|(k, v)| (k, v.as_text())).collect();
    params::params_from_text(ParamFamily::Nd, None, &items)
        .map(|m| Value::Object(m.into_iter().collect()))
        .map_err(|e| format!("--node-parameters: {}", crate::error::chain(&e)))
}

fn put(op: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        op.insert(key.to_string(), v);
    }
}

/// `OP_NODE_ADD` from `gnt-node add`'s options.
fn add_op(a: &AddArgs) -> Result<Value, String> {
    // SSH-related options are accepted so Ganeti's scripts keep working;
    // nodes join with a token over TLS instead.
    let _ = (a.no_ssh_key_check, a.force_join, a.no_node_setup, a.verbose);
    let mut op = Map::new();
    op.insert("OP_ID".into(), json!("OP_NODE_ADD"));
    op.insert("node_name".into(), json!(a.node));
    op.insert("readd".into(), json!(a.readd));
    put(
        &mut op,
        "secondary_ip",
        a.secondary_ip.as_ref().map(|s| json!(s)),
    );
    put(&mut op, "group", a.node_group.as_ref().map(|s| json!(s)));
    put(
        &mut op,
        "master_capable",
        yes_no("--master-capable", a.master_capable.as_deref())?.map(Value::Bool),
    );
    put(
        &mut op,
        "vm_capable",
        yes_no("--vm-capable", a.vm_capable.as_deref())?.map(Value::Bool),
    );
    put(
        &mut op,
        "ndparams",
        a.node_parameters.as_deref().map(ndparams).transpose()?,
    );
    Ok(Value::Object(op))
}

/// `OP_NODE_SET_PARAMS` from `gnt-node modify`'s options.
fn modify_op(a: &ModifyArgs) -> Result<Value, String> {
    let mut op = Map::new();
    op.insert("OP_ID".into(), json!("OP_NODE_SET_PARAMS"));
    op.insert("node_name".into(), json!(a.node));
    op.insert("force".into(), json!(a.force));
    op.insert("auto_promote".into(), json!(a.auto_promote));
    let flags = [
        (
            "master_candidate",
            "--master-candidate",
            &a.master_candidate,
        ),
        ("drained", "--drained", &a.drained),
        ("offline", "--offline", &a.offline),
        ("master_capable", "--master-capable", &a.master_capable),
        ("vm_capable", "--vm-capable", &a.vm_capable),
        ("powered", "--node-powered", &a.node_powered),
    ];
    let mut changes = 0;
    for (key, option, v) in flags {
        if let Some(b) = yes_no(option, v.as_deref())? {
            op.insert(key.into(), json!(b));
            if key != "powered" {
                changes += 1;
            }
        }
    }
    if let Some(s) = &a.secondary_ip {
        op.insert("secondary_ip".into(), json!(s));
        changes += 1;
    }
    if let Some(t) = &a.node_parameters {
        op.insert("ndparams".into(), ndparams(t)?);
        changes += 1;
    }
    if changes == 0 {
        return Err("Please give at least one of the parameters.".into());
    }
    Ok(Value::Object(op))
}

/// Ganeti's question before bringing a node online by hand.
const ONLINE_QUESTION: &str = "You are setting this node online manually. If the configuration \
     has changed, this can cause issues such as split brain. To safely bring a node back online, \
     please use --readd instead. If you are confident that the configuration hasn't changed, \
     continue?";

/// Whether `modify` must ask first: setting a node online without `--force`.
fn modify_needs_confirmation(op: &Value) -> bool {
    op["offline"] == json!(false) && op["force"] != json!(true)
}

/// The `Modified node X` lines from the op's `[[param, value], …]` result.
fn format_modify_result(node: &str, result: &Value) -> Vec<String> {
    let Some(changes) = result.as_array().filter(|a| !a.is_empty()) else {
        return Vec::new();
    };
    let mut out = vec![format!("Modified node {node}")];
    for c in changes {
        let param = c.get(0).map(super::output::python_str).unwrap_or_default();
        let value = c.get(1).map(super::output::python_str).unwrap_or_default();
        out.push(format!(" - {param:<5} -> {value}"));
    }
    out
}

#[allow(clippy::print_stdout)]
fn modify(a: &ModifyArgs) -> u8 {
    let op = match modify_op(a) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    if modify_needs_confirmation(&op) && !super::prompt::ask_user(ONLINE_QUESTION) {
        return EXIT_FAILURE;
    }
    let opts = job_opts(a.priority.as_deref(), a.submit, a.print_jobid, a.dry_run);
    run_job(Ok(op), &opts, |result| {
        for line in format_modify_result(&a.node, result) {
            println!("{line}");
        }
    })
}

/// Exit code when the administrator declines the powercycle (Ganeti's).
const EXIT_DECLINED: u8 = 2;

fn powercycle_op(a: &PowercycleArgs) -> Value {
    json!({"OP_ID": "OP_NODE_POWERCYCLE", "node_name": a.node, "force": a.force})
}

fn powercycle(a: &PowercycleArgs) -> u8 {
    if !a.yes
        && !super::prompt::ask_user(&format!(
            "Are you sure you want to hard powercycle node {}?",
            a.node
        ))
    {
        return EXIT_DECLINED;
    }
    let opts = job_opts(a.priority.as_deref(), a.submit, a.print_jobid, a.dry_run);
    run_job(Ok(powercycle_op(a)), &opts, |result| {
        // Ganeti prints the node's answer on stderr.
        match result {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => eprintln!("{s}"),
            other => eprintln!("{}", python_repr(other)),
        }
    })
}

/// The fields `gnt-node info` asks for, in Ganeti's order.
const INFO_FIELDS: &[&str] = &[
    "name",
    "pip",
    "sip",
    "pinst_list",
    "sinst_list",
    "master_candidate",
    "drained",
    "offline",
    "master_capable",
    "vm_capable",
    "powered",
    "ndparams",
    "custom_ndparams",
];

#[allow(clippy::print_stdout)]
fn info(client: &mut Client, nodes: &[String]) -> u8 {
    let filter = match make_filter(nodes, FilterArgs::Detect, "name", NameKind::Text) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("Error: {}", crate::error::chain(&e));
            return EXIT_FAILURE;
        }
    };
    let answer = match client.call(Method::Query, json!(["node", INFO_FIELDS, filter])) {
        Ok(a) => a,
        Err(e) => return report_luxi_error(&e),
    };
    let response: QueryResponse = match serde_json::from_value(answer) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Malformed answer to Query from the master daemon: {e}");
            return EXIT_FAILURE;
        }
    };
    let missing: Vec<&String> = nodes
        .iter()
        .filter(|n| !n.contains(['*', '?', '[']))
        .filter(|n| {
            !response.data.iter().any(|row| {
                row.first()
                    .is_some_and(|c| c.value.as_str() == Some(n.as_str()))
            })
        })
        .collect();
    if let Some(n) = missing.first() {
        eprintln!(
            "Failure: prerequisites not met for this operation:\nerror type: unknown_entity, error details:\nNode '{n}' not known"
        );
        return EXIT_FAILURE;
    }
    println!("{}", node_info_tree(&response).render());
    EXIT_SUCCESS
}

/// `gnt-node info` output for a Query answer over [`INFO_FIELDS`]
/// (Ganeti's `_FormatNodeInfo` and `PrintGenericInfo`).
fn node_info_tree(response: &QueryResponse) -> Info {
    let nodes = response
        .data
        .iter()
        .map(|row| {
            let cell = |i: usize| -> Value {
                row.get(i)
                    .filter(|c| c.status == ResultStatus::Normal)
                    .map(|c| c.value.clone())
                    .unwrap_or(Value::Null)
            };
            let t = |i: usize| Info::text(python_repr(&cell(i)));
            let mut info = vec![
                ("Node name".to_string(), t(0)),
                ("primary ip".into(), t(1)),
                ("secondary ip".into(), t(2)),
                ("master candidate".into(), t(5)),
                ("drained".into(), t(6)),
                ("offline".into(), t(7)),
            ];
            if !cell(10).is_null() {
                info.push(("powered".into(), t(10)));
            }
            info.push(("master_capable".into(), t(8)));
            info.push(("vm_capable".into(), t(9)));
            if cell(9).as_bool().unwrap_or(false) {
                for (title, i) in [("primary for instances", 3), ("secondary for instances", 4)] {
                    let mut names: Vec<String> = cell(i)
                        .as_array()
                        .map(|a| a.iter().map(python_repr).collect())
                        .unwrap_or_default();
                    names.sort_by_cached_key(|n| crate::ssconf::nice_sort_key(n));
                    info.push((
                        title.into(),
                        Info::List(names.into_iter().map(Info::Text).collect()),
                    ));
                }
            }
            info.push(("node parameters".into(), params_info(&cell(12), &cell(11))));
            Info::Section(info)
        })
        .collect();
    Info::List(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcodes::OpCode;
    use crate::query::ResultCell;

    fn parse<T: FromArgs>(name: &str, args: &[&str]) -> T {
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let norm = super::super::normalize_argv(&owned, SHORT_WITH_VALUE);
        let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
        T::from_args(&[name], &refs).unwrap()
    }

    /// The op must be one masterd accepts: valid by the opcode definitions.
    fn valid(op: &Value) -> Value {
        let parsed = OpCode::from_json(op).unwrap();
        parsed.validate().unwrap();
        parsed.to_json()
    }

    #[test]
    fn add_builds_op_node_add() {
        let a: AddArgs = parse(
            "add",
            &[
                "-s192.0.2.9",
                "-g",
                "rack2",
                "--master-capable=no",
                "--vm-capable",
                "yes",
                "--node-parameters",
                "spindle_count=2",
                "--no-ssh-key-check",
                "node4.example.com",
            ],
        );
        let op = add_op(&a).unwrap();
        let op = valid(&op);
        assert_eq!(op["OP_ID"], "OP_NODE_ADD");
        assert_eq!(op["node_name"], "node4.example.com");
        assert_eq!(op["secondary_ip"], "192.0.2.9");
        assert_eq!(op["group"], "rack2");
        assert_eq!(op["master_capable"], false);
        assert_eq!(op["vm_capable"], true);
        assert_eq!(op["ndparams"]["spindle_count"], 2);
        assert_eq!(op["readd"], false);
        let r: AddArgs = parse("add", &["--readd", "node4"]);
        let op = add_op(&r).unwrap();
        assert_eq!(op["readd"], true);
        assert!(op.get("secondary_ip").is_none());
        let bad: AddArgs = parse("add", &["--vm-capable", "maybe", "n"]);
        assert!(add_op(&bad).unwrap_err().contains("--vm-capable"));
        let bad: AddArgs = parse("add", &["-N", "spindle_count=many", "n"]);
        assert!(add_op(&bad).unwrap_err().contains("spindle_count"));
    }

    #[test]
    fn modify_builds_op_node_set_params() {
        let a: ModifyArgs = parse(
            "modify",
            &[
                "-C",
                "yes",
                "--drained=no",
                "--auto-promote",
                "-s",
                "10.0.0.9",
                "n1",
            ],
        );
        let op = valid(&modify_op(&a).unwrap());
        assert_eq!(op["OP_ID"], "OP_NODE_SET_PARAMS");
        assert_eq!(op["master_candidate"], true);
        assert_eq!(op["drained"], false);
        assert_eq!(op["auto_promote"], true);
        assert_eq!(op["secondary_ip"], "10.0.0.9");
        assert_eq!(op["offline"], Value::Null);
        let none: ModifyArgs = parse("modify", &["n1"]);
        assert_eq!(
            modify_op(&none).unwrap_err(),
            "Please give at least one of the parameters."
        );
        let online: ModifyArgs = parse("modify", &["-O", "no", "n1"]);
        assert!(modify_needs_confirmation(&modify_op(&online).unwrap()));
        let forced: ModifyArgs = parse("modify", &["-O", "no", "-f", "n1"]);
        assert!(!modify_needs_confirmation(&modify_op(&forced).unwrap()));
        let offline: ModifyArgs = parse("modify", &["--offline", "yes", "n1"]);
        assert!(!modify_needs_confirmation(&modify_op(&offline).unwrap()));
    }

    #[test]
    fn modify_result_reads_like_ganeti() {
        let r = json!([["master_candidate", true], ["drained", false]]);
        assert_eq!(
            format_modify_result("n1", &r),
            [
                "Modified node n1",
                " - master_candidate -> True",
                " - drained -> False"
            ]
        );
        assert_eq!(
            format_modify_result("n1", &json!([["x", "y"]]))[1],
            " - x     -> y"
        );
        assert!(format_modify_result("n1", &json!([])).is_empty());
    }

    #[test]
    fn remove_and_powercycle_ops() {
        let a: PowercycleArgs = parse("powercycle", &["--yes", "-f", "n2"]);
        let op = valid(&powercycle_op(&a));
        assert_eq!(op["OP_ID"], "OP_NODE_POWERCYCLE");
        assert_eq!(op["force"], true);
        assert!(a.yes);
        valid(&json!({"OP_ID": "OP_NODE_REMOVE", "node_name": "n2"}));
    }

    #[test]
    fn info_reads_like_ganeti() {
        let cell = |v: Value| ResultCell::normal(v);
        let response = QueryResponse {
            fields: Vec::new(),
            data: vec![vec![
                cell(json!("node1.example.com")),
                cell(json!("192.0.2.1")),
                cell(json!("192.0.2.1")),
                cell(json!(["inst10", "inst2"])),
                cell(json!([])),
                cell(json!(true)),
                cell(json!(false)),
                cell(json!(false)),
                cell(json!(true)),
                cell(json!(true)),
                cell(json!(true)),
                cell(json!({"spindle_count": 1, "oob_program": ""})),
                cell(json!({"spindle_count": 1})),
            ]],
        };
        assert_eq!(
            node_info_tree(&response).render(),
            "- Node name: node1.example.com\n\
             \x20 primary ip: 192.0.2.1\n\
             \x20 secondary ip: 192.0.2.1\n\
             \x20 master candidate: True\n\
             \x20 drained: False\n\
             \x20 offline: False\n\
             \x20 powered: True\n\
             \x20 master_capable: True\n\
             \x20 vm_capable: True\n\
             \x20 primary for instances: \n\
             \x20   - inst2\n\
             \x20   - inst10\n\
             \x20 secondary for instances: \n\
             \x20 node parameters: \n\
             \x20   oob_program: default ()\n\
             \x20   spindle_count: 1"
        );
    }
}
