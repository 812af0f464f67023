//! `gnt-cluster`: cluster-wide administration.
//!
//! `init` and `destroy` work on this node's files through
//! [`crate::bootstrap`] (no masterd exists before init, and none after
//! destroy); every other command asks masterd over LUXI. `getmaster` reads
//! ssconf, as Ganeti's does, so it works on any node.

use super::job::{parse_priority, report, submit_or_send, SubmitOpts};
use super::kv::{parse_ident_keyval, parse_keyval, IdentKv};
use super::output::{python_repr, Info};
use super::{parse_args, report_luxi_error, EXIT_FAILURE, EXIT_SUCCESS};
use crate::bootstrap::{self, InitOptions};
use crate::config::params::{self, ParamFamily};
use crate::luxi::client::Client;
use crate::luxi::Method;
use crate::paths::Paths;
use argh::FromArgs;
use serde_json::{json, Value};

/// Short options that take a value (for argv normalisation).
const SHORT_WITH_VALUE: &[char] = &['s', 'H', 'B', 'N', 'D', 'C', 'I', 'g', 'n'];

#[derive(FromArgs, Debug)]
/// Cluster administration (Ganeti's gnt-cluster).
struct GntCluster {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Init(Box<InitArgs>),
    Info(InfoArgs),
    Getmaster(GetmasterArgs),
    Version(VersionArgs),
    Destroy(DestroyArgs),
    Queue(QueueArgs),
    Watcher(WatcherArgs),
    Modify(Box<ModifyArgs>),
    ListTags(ListTagsArgs),
    AddTags(super::tags::AddTagsArgs),
    RemoveTags(super::tags::RemoveTagsArgs),
    SearchTags(SearchTagsArgs),
    JoinToken(JoinTokenArgs),
    RedistConf(RedistConfArgs),
    Verify(VerifyArgs),
    VerifyDisks(VerifyDisksArgs),
    RepairDiskSizes(RepairDiskSizesArgs),
    MasterPing(MasterPingArgs),
    MasterFailover(MasterFailoverArgs),
    Run(CommandArgs),
    Copyfile(CopyfileArgs),
    ActivateMasterIp(ActivateMasterIpArgs),
    DeactivateMasterIp(DeactivateMasterIpArgs),
    ConfdQuery(super::confd_query::ConfdQueryArgs),
}

#[derive(FromArgs, Debug)]
/// Issues a one-time token a new node needs to join (run on the master).
#[argh(subcommand, name = "join-token")]
struct JoinTokenArgs {
    /// how long the token stays valid, in seconds (default 3600)
    #[argh(option, default = "3600")]
    ttl: u64,
}

#[derive(FromArgs, Debug)]
/// Pushes the configuration and ssconf files to every node again.
#[argh(subcommand, name = "redist-conf")]
struct RedistConfArgs {
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    print_jobid: bool,
}

#[derive(FromArgs, Debug)]
/// Verifies the cluster's consistency.
#[argh(subcommand, name = "verify")]
struct VerifyArgs {
    /// print more details
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// print errors with machine-readable codes
    #[argh(switch)]
    error_codes: bool,
    /// pretend errors happen (for testing)
    #[argh(switch)]
    debug_simulate_errors: bool,
    /// skip the N+1 memory redundancy check
    #[argh(switch)]
    no_nplus1_mem: bool,
    /// error codes to report as warnings only (repeatable)
    #[argh(option, short = 'I')]
    ignore_errors: Vec<String>,
    /// only verify this node group
    #[argh(option, short = 'g')]
    node_group: Option<String>,
    /// also look for unexpected files
    #[argh(switch)]
    verify_clutter: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Checks the cluster's disks; activates those of instances that need it.
#[argh(subcommand, name = "verify-disks")]
struct VerifyDisksArgs {
    /// only check this node group
    #[argh(option, short = 'g')]
    node_group: Option<String>,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Updates mismatches in recorded disk sizes.
#[argh(subcommand, name = "repair-disk-sizes")]
struct RepairDiskSizesArgs {
    /// only check the prerequisites; change nothing
    #[argh(switch)]
    dry_run: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// instances to check (default: all)
    #[argh(positional)]
    instances: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Exits 0 when the master daemon answers, 1 otherwise (prints nothing).
#[argh(subcommand, name = "master-ping")]
struct MasterPingArgs {}

#[derive(FromArgs, Debug)]
/// Makes this master candidate the master node (run where masterd is not running).
#[argh(subcommand, name = "master-failover")]
struct MasterFailoverArgs {
    /// do not ask the other nodes first (dangerous; see gnt-cluster(8))
    #[argh(switch)]
    no_voting: bool,
    /// with --no-voting: do not ask for confirmation
    #[argh(switch)]
    yes_do_it: bool,
}

#[derive(FromArgs, Debug)]
/// Runs a shell command on nodes over node RPC.
#[argh(subcommand, name = "command")]
struct CommandArgs {
    /// only on this node (repeatable; default: all online nodes)
    #[argh(option, short = 'n')]
    node: Vec<String>,
    /// only on the nodes of this group
    #[argh(option, short = 'g')]
    node_group: Option<String>,
    /// prefix every output line with the node's name
    #[argh(switch, short = 'M')]
    show_machine_names: bool,
    /// print only the nodes where the command failed
    #[argh(switch)]
    failure_only: bool,
    /// the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Copies a file to the same path on the other nodes.
#[argh(subcommand, name = "copyfile")]
struct CopyfileArgs {
    /// only to this node (repeatable; default: all online nodes)
    #[argh(option, short = 'n')]
    node: Vec<String>,
    /// only to the nodes of this group
    #[argh(option, short = 'g')]
    node_group: Option<String>,
    /// send over the replication (secondary) network
    #[argh(switch)]
    use_replication_network: bool,
    /// the file (absolute path)
    #[argh(positional)]
    file: String,
}

#[derive(FromArgs, Debug)]
/// Adds the master IP on the master node.
#[argh(subcommand, name = "activate-master-ip")]
struct ActivateMasterIpArgs {}

#[derive(FromArgs, Debug)]
/// Removes the master IP from the master node.
#[argh(subcommand, name = "deactivate-master-ip")]
struct DeactivateMasterIpArgs {
    /// do not ask for confirmation
    #[argh(switch)]
    yes: bool,
}

#[derive(FromArgs, Debug)]
/// Changes or shows the job queue's drain flag: drain, undrain or info.
#[argh(subcommand, name = "queue")]
struct QueueArgs {
    /// drain, undrain or info
    #[argh(positional)]
    command: String,
}

#[derive(FromArgs, Debug)]
/// Pauses or resumes the watcher: pause DURATION, continue or info.
#[argh(subcommand, name = "watcher")]
struct WatcherArgs {
    /// pause, continue or info
    #[argh(positional)]
    command: String,
    /// how long to pause: a number with an optional s, m, h, d or w suffix
    #[argh(positional)]
    duration: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Changes cluster parameters.
#[argh(subcommand, name = "modify")]
struct ModifyArgs {
    /// set the user-id pool (ranges like 1000-1009,2000)
    #[argh(option)]
    uid_pool: Option<String>,
    /// add user-id ranges to the pool
    #[argh(option)]
    add_uids: Option<String>,
    /// remove user-id ranges from the pool
    #[argh(option)]
    remove_uids: Option<String>,
    /// default instance allocator ("" to unset)
    #[argh(option, short = 'I')]
    default_iallocator: Option<String>,
    /// hypervisor parameters HV:key=val,… (repeatable)
    #[argh(option, short = 'H')]
    hypervisor_parameters: Vec<String>,
    /// default backend parameters key=val,…
    #[argh(option, short = 'B')]
    backend_parameters: Option<String>,
    /// default NIC parameters key=val,…
    #[argh(option, short = 'N')]
    nic_parameters: Option<String>,
    /// default node parameters key=val,…
    #[argh(option)]
    node_parameters: Option<String>,
    /// number of master candidates to keep
    #[argh(option, short = 'C')]
    candidate_pool_size: Option<u64>,
    /// maximal number of jobs running at once
    #[argh(option)]
    max_running_jobs: Option<u64>,
    /// maximal number of jobs tracked by the scheduler
    #[argh(option)]
    max_tracked_jobs: Option<u64>,
    /// MAC prefix for new NICs
    #[argh(option)]
    mac_prefix: Option<String>,
    /// comma-separated hypervisors to enable
    #[argh(option)]
    enabled_hypervisors: Option<String>,
    /// yes or no
    #[argh(option)]
    maintain_node_health: Option<String>,
    /// yes or no
    #[argh(option)]
    prealloc_wipe_disks: Option<String>,
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
}

#[derive(FromArgs, Debug)]
/// Lists the cluster's tags.
#[argh(subcommand, name = "list-tags")]
struct ListTagsArgs {}

#[derive(FromArgs, Debug)]
/// Searches the tags of every object for a regular expression.
#[argh(subcommand, name = "search-tags")]
struct SearchTagsArgs {
    /// the pattern
    #[argh(positional)]
    pattern: String,
}

#[derive(FromArgs, Debug)]
/// Initialises a new cluster configuration with this node as master.
#[argh(subcommand, name = "init")]
struct InitArgs {
    /// comma-separated hypervisors to enable (first is the default; default: kvm)
    #[argh(option)]
    enabled_hypervisors: Option<String>,
    /// comma-separated disk templates to enable (default: drbd,plain)
    #[argh(option)]
    enabled_disk_templates: Option<String>,
    /// network device carrying the master IP (default: xen-br0)
    #[argh(option)]
    master_netdev: Option<String>,
    /// netmask of the master IP in CIDR bits (default: the full address length)
    #[argh(option)]
    master_netmask: Option<u32>,
    /// secondary (replication) IP of this node, IPv4
    #[argh(option, short = 's')]
    secondary_ip: Option<String>,
    /// IP version of the primary network: 4 or 6 (default 4)
    #[argh(option, default = "4")]
    primary_ip_version: u8,
    /// hypervisor parameters HV:key=val,… (repeatable)
    #[argh(option, short = 'H')]
    hypervisor_parameters: Vec<String>,
    /// default backend parameters key=val,…
    #[argh(option, short = 'B')]
    backend_parameters: Option<String>,
    /// default NIC parameters key=val,…
    #[argh(option, short = 'N')]
    nic_parameters: Option<String>,
    /// disk parameters TEMPLATE:key=val,… (repeatable)
    #[argh(option, short = 'D')]
    disk_parameters: Vec<String>,
    /// default node parameters key=val,…
    #[argh(option)]
    node_parameters: Option<String>,
    /// user-id pool for instances: ranges like 1000-1009,2000
    #[argh(option)]
    uid_pool: Option<String>,
    /// directory for file-based instance disks
    #[argh(option)]
    file_storage_dir: Option<String>,
    /// directory for shared-file instance disks
    #[argh(option)]
    shared_file_storage_dir: Option<String>,
    /// do not add this node to /etc/hosts
    #[argh(switch)]
    no_etc_hosts: bool,
    /// yes: set the master IP up and down with /etc/ganeti/scripts/master-ip-setup
    /// instead of the built-in `ip address` commands (default no)
    #[argh(option)]
    use_external_mip_script: Option<String>,
    /// accepted for compatibility: ganeti-rs never edits SSH setup
    #[argh(switch)]
    no_ssh_init: bool,
    /// first three octets of generated MAC addresses (default aa:00:00)
    #[argh(option)]
    mac_prefix: Option<String>,
    /// number of master candidates to keep (default 10)
    #[argh(option, short = 'C')]
    candidate_pool_size: Option<u32>,
    /// default instance allocator
    #[argh(option, short = 'I')]
    default_iallocator: Option<String>,
    /// LVM volume group for plain and drbd disks (default xenvg when enabled)
    #[argh(option, short = 'g')]
    vg_name: Option<String>,
    /// DRBD usermode helper (default /bin/true when drbd is enabled)
    #[argh(option)]
    drbd_usermode_helper: Option<String>,
    /// keep node health maintained by the watcher: yes or no
    #[argh(option)]
    maintain_node_health: Option<String>,
    /// wipe disks before use: yes or no
    #[argh(option)]
    prealloc_wipe_disks: Option<String>,
    /// do not start the daemons after initialising
    #[argh(switch)]
    no_start: bool,
    /// the cluster name (must resolve to the master IP)
    #[argh(positional)]
    cluster_name: String,
}

#[derive(FromArgs, Debug)]
/// Shows the cluster configuration.
#[argh(subcommand, name = "info")]
struct InfoArgs {}

#[derive(FromArgs, Debug)]
/// Prints the name of the master node.
#[argh(subcommand, name = "getmaster")]
struct GetmasterArgs {}

#[derive(FromArgs, Debug)]
/// Prints the software and protocol versions of the cluster.
#[argh(subcommand, name = "version")]
struct VersionArgs {}

#[derive(FromArgs, Debug)]
/// Destroys the cluster: stops the daemons and removes its configuration from this node.
#[argh(subcommand, name = "destroy")]
struct DestroyArgs {
    /// confirm that the cluster is to be destroyed
    #[argh(switch)]
    yes_do_it: bool,
}

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    let args = command_argv(args);
    let cmd: GntCluster = match parse_args(program, &args, SHORT_WITH_VALUE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error: {e}");
            return EXIT_FAILURE;
        }
    };
    match cmd.command {
        Command::Init(a) => init(&paths, a),
        Command::Info(_) => info(&paths),
        Command::Getmaster(_) => getmaster(&paths),
        Command::ConfdQuery(a) => super::confd_query::run(&paths, &a),
        Command::Version(_) => version(&paths),
        Command::Destroy(a) => destroy(&paths, a),
        Command::Queue(a) => with_master(|c| queue(c, &a)),
        Command::Watcher(a) => with_master(|c| watcher(c, &a)),
        Command::Modify(a) => with_master(|c| modify(c, &a)),
        Command::ListTags(_) => with_master(|c| super::tags::list(c, "cluster", None)),
        Command::AddTags(a) => with_master(|c| {
            let args = TagChangeArgs {
                from: a.from.as_deref(),
                tags: &a.tags,
                submit: a.submit,
                print_jobid: a.print_jobid,
                priority: a.priority.as_deref(),
            };
            change_tags(c, "OP_TAGS_SET", args)
        }),
        Command::RemoveTags(a) => with_master(|c| {
            let args = TagChangeArgs {
                from: a.from.as_deref(),
                tags: &a.tags,
                submit: a.submit,
                print_jobid: a.print_jobid,
                priority: a.priority.as_deref(),
            };
            change_tags(c, "OP_TAGS_DEL", args)
        }),
        Command::SearchTags(a) => with_master(|c| super::tags::search(c, &a.pattern)),
        Command::JoinToken(a) => join_token(&paths, a.ttl),
        Command::RedistConf(a) => {
            let opts = match submit_opts(a.priority.as_deref(), a.submit, a.print_jobid) {
                Ok(o) => o,
                Err(code) => return code,
            };
            with_master(|c| {
                match submit_or_send(c, vec![json!({"OP_ID": "OP_CLUSTER_REDIST_CONF"})], &opts) {
                    Ok(_) => EXIT_SUCCESS,
                    Err(e) => report(&e),
                }
            })
        }
        Command::Verify(a) => verify(&a),
        Command::VerifyDisks(a) => verify_disks(&a),
        Command::RepairDiskSizes(a) => repair_disk_sizes(&a),
        Command::MasterPing(_) => master_ping(&paths),
        Command::MasterFailover(a) => master_failover(&paths, &a),
        Command::Run(a) => with_master(|c| run_command(&paths, c, &a)),
        Command::Copyfile(a) => with_master(|c| copyfile(&paths, c, &a)),
        Command::ActivateMasterIp(_) => with_master(|c| master_ip(&paths, c, "start")),
        Command::DeactivateMasterIp(a) => {
            if !a.yes && !super::prompt::ask_user(DEACTIVATE_QUESTION) {
                return EXIT_FAILURE;
            }
            with_master(|c| master_ip(&paths, c, "stop"))
        }
    }
}

/// `gnt-cluster command` takes everything after its first positional
/// argument as the command (Ganeti stops option parsing there), so
/// `gnt-cluster command ls -l` runs `ls -l`: a `--` is put before it.
fn command_argv(args: &[String]) -> Vec<String> {
    if args.first().map(String::as_str) != Some("command") {
        return args.to_vec();
    }
    let with_value = ["-n", "--node", "-g", "--node-group"];
    let mut out = vec![args[0].clone()];
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            out.extend(args[i..].iter().cloned());
            return out;
        }
        if !a.starts_with('-') || a == "-" {
            out.push("--".into());
            out.extend(args[i..].iter().cloned());
            return out;
        }
        out.push(a.clone());
        if with_value.contains(&a.as_str()) {
            if let Some(v) = args.get(i + 1) {
                out.push(v.clone());
                i += 1;
            }
        }
        i += 1;
    }
    out
}

fn submit_opts(priority: Option<&str>, submit: bool, print_jobid: bool) -> Result<SubmitOpts, u8> {
    let priority = priority.map(parse_priority).transpose().map_err(|e| {
        eprintln!("{e}");
        EXIT_FAILURE
    })?;
    Ok(SubmitOpts {
        submit_only: submit,
        print_jobid,
        priority,
        dry_run: false,
    })
}

/// Ganeti's question before `deactivate-master-ip`.
const DEACTIVATE_QUESTION: &str = "This will disable the master IP. All the open connections to \
     the master IP will be closed. To reach the master you will need to use its node IP. Continue?";

/// Ganeti's question before `master-failover --no-voting`.
const NO_VOTING_QUESTION: &str = "This will perform the failover even if most other nodes are \
     down, or if this node is outdated. This is dangerous as it can lead to a non-consistent \
     cluster. Check the gnt-cluster(8) man page before proceeding. Continue?";

/// Where a new node's noded looks for its join token (production path).
const JOIN_TOKEN_FILE: &str = "/var/lib/ganeti/join-token";

/// The instructions printed (on stderr) with a new join token.
fn join_token_help(ttl_secs: u64) -> String {
    format!(
        "This token is valid for {ttl_secs} seconds and for one node only. On the new node, \
         write it to {JOIN_TOKEN_FILE} (mode 0600, owner root) and start ganeti-noded; then \
         run 'gnt-node add NODE' here."
    )
}

#[allow(clippy::print_stdout)]
fn join_token(paths: &Paths, ttl_secs: u64) -> u8 {
    let me = paths.hostname();
    match crate::ssconf::master_node(paths) {
        Ok(m) if m == me => {}
        Ok(m) => {
            eprintln!("This command must be run on the master node ({m}), not on {me}.");
            return EXIT_FAILURE;
        }
        Err(e) => {
            eprintln!(
                "Cannot determine the master node: {}",
                crate::error::chain(&e)
            );
            return EXIT_FAILURE;
        }
    }
    if ttl_secs == 0 {
        eprintln!("--ttl must be at least 1 second");
        return EXIT_FAILURE;
    }
    match crate::join::TokenStore::new(paths).issue(std::time::Duration::from_secs(ttl_secs)) {
        Ok(token) => {
            println!("{token}");
            eprintln!("{}", join_token_help(ttl_secs));
            EXIT_SUCCESS
        }
        Err(e) => {
            eprintln!("Cannot issue a join token: {}", crate::error::chain(&e));
            EXIT_FAILURE
        }
    }
}

fn master_ping(paths: &Paths) -> u8 {
    match Client::connect(&paths.query_socket())
        .and_then(|mut c| c.call(Method::QueryClusterInfo, Value::Array(vec![])))
    {
        Ok(_) => EXIT_SUCCESS,
        Err(_) => EXIT_FAILURE,
    }
}

fn verify_op(a: &VerifyArgs) -> Value {
    let mut skip = Vec::new();
    if a.no_nplus1_mem {
        skip.push("nplusone_mem");
    }
    let mut op = json!({
        "OP_ID": "OP_CLUSTER_VERIFY",
        "verbose": a.verbose,
        "error_codes": a.error_codes,
        "debug_simulate_errors": a.debug_simulate_errors,
        "skip_checks": skip,
        "ignore_errors": a.ignore_errors,
        "verify_clutter": a.verify_clutter,
    });
    if let Some(g) = &a.node_group {
        op["group_name"] = json!(g);
    }
    op
}

/// What an `OP_CLUSTER_VERIFY` result asks for next.
#[derive(Debug, PartialEq, Eq)]
enum VerifyResult {
    /// The verification ran in this job: it passed or not.
    Done(bool),
    /// It submitted one job per group (Ganeti's `jobs` result): follow them.
    /// `failed` counts the submissions that were refused.
    Jobs { ids: Vec<u64>, failed: usize },
}

fn verify_result(v: &Value) -> VerifyResult {
    if let Some(jobs) = v.get("jobs").and_then(Value::as_array) {
        let mut ids = Vec::new();
        let mut failed = 0;
        for j in jobs {
            match (
                j.get(0).and_then(Value::as_bool),
                j.get(1).and_then(Value::as_u64),
            ) {
                (Some(true), Some(id)) => ids.push(id),
                _ => failed += 1,
            }
        }
        return VerifyResult::Jobs { ids, failed };
    }
    VerifyResult::Done(v.as_bool().unwrap_or(false))
}

/// `gnt-cluster verify`: follows the verification job(s), printing their
/// feedback as it comes; exits 1 when any reports errors.
#[allow(clippy::print_stdout)]
fn verify(a: &VerifyArgs) -> u8 {
    let opts = match submit_opts(a.priority.as_deref(), false, false) {
        Ok(o) => o,
        Err(code) => return code,
    };
    with_master(|c| {
        let results = match submit_or_send(c, vec![verify_op(a)], &opts) {
            Ok(r) => r,
            Err(e) => return report(&e),
        };
        match verify_result(results.first().unwrap_or(&Value::Null)) {
            VerifyResult::Done(true) => EXIT_SUCCESS,
            VerifyResult::Done(false) => EXIT_FAILURE,
            VerifyResult::Jobs { ids, failed } => {
                let mut bad_jobs = failed;
                let mut bad_results = 0;
                for id in ids {
                    let r = super::job::poll_job(c, id, &mut |line| println!("{line}"));
                    match r {
                        Ok(res) => {
                            if !res.first().and_then(Value::as_bool).unwrap_or(false) {
                                bad_results += 1;
                            }
                        }
                        Err(e) => {
                            report(&e);
                            bad_jobs += 1;
                        }
                    }
                }
                if bad_jobs > 0 {
                    println!("{bad_jobs} job(s) failed while verifying the cluster.");
                }
                if bad_jobs + bad_results == 0 {
                    EXIT_SUCCESS
                } else {
                    EXIT_FAILURE
                }
            }
        }
    })
}

/// What `verify-disks` prints and does for one verify-disks result
/// (Ganeti's `VerifyDisks` in `client/gnt_cluster.py`).
#[derive(Debug, Default, PartialEq, Eq)]
struct VerifyDisksPlan {
    /// Lines printed before any activation (broken nodes).
    before: Vec<String>,
    /// Instances whose disks are activated, in order.
    activate: Vec<String>,
    /// Lines printed after the activations (missing volumes, or the
    /// all-clear).
    after: Vec<String>,
    /// Whether the command fails (broken nodes, missing volumes).
    failed: bool,
}

/// Reads one `[bad nodes, instances, missing]` result.
fn verify_disks_plan(result: &Value) -> VerifyDisksPlan {
    let mut plan = VerifyDisksPlan::default();
    let empty = serde_json::Map::new();
    let bad = result.get(0).and_then(Value::as_object).unwrap_or(&empty);
    let instances: Vec<&str> = result
        .get(1)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let missing = result.get(2).and_then(Value::as_object).unwrap_or(&empty);
    for (node, text) in bad {
        let text = match text {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // Ganeti shows the last 400 characters of the node's message.
        let tail: String = {
            let chars: Vec<char> = text.chars().collect();
            chars[chars.len().saturating_sub(400)..].iter().collect()
        };
        plan.before
            .push(format!("Error gathering data on node {node}: {tail}"));
        plan.before
            .push("You need to fix these nodes first before fixing instances".into());
        plan.failed = true;
    }
    plan.activate = instances
        .iter()
        .filter(|i| !missing.contains_key(**i))
        .map(|i| (*i).to_string())
        .collect();
    if !missing.is_empty() {
        for (inst, vols) in missing {
            let mut vols: Vec<(String, String)> = vols
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            let s = |i: usize| {
                                p.get(i)
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            (s(0), s(1))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if vols.iter().all(|(n, _)| bad.contains_key(n)) {
                plan.after.push(format!(
                    "Instance {inst} cannot be verified as it lives on broken nodes"
                ));
                continue;
            }
            plan.after
                .push(format!("Instance {inst} has missing logical volumes:"));
            vols.sort();
            for (node, vol) in vols {
                // LVM volumes are `vg/lv` under /dev; file disks are paths.
                let dev = if vol.starts_with('/') {
                    vol
                } else {
                    format!("/dev/{vol}")
                };
                if bad.contains_key(&node) {
                    plan.after.push(format!("\tbroken node {node} {dev}"));
                } else {
                    plan.after.push(format!("\t{node} {dev}"));
                }
            }
        }
        plan.after.push(
            "You need to replace or recreate disks for all the above instances if this message persists after fixing broken nodes."
                .into(),
        );
        plan.failed = true;
    } else if instances.is_empty() {
        plan.after.push("No disks need to be activated.".into());
    }
    plan
}

/// The message of a failed job, as Ganeti's `FormatError` gives it.
fn job_error_text(e: &super::job::JobError) -> String {
    use super::job::JobError;
    match e {
        JobError::Luxi(l) => crate::error::chain(l),
        JobError::Failed(f) => f.message(),
        JobError::Canceled => "Job was canceled".into(),
        JobError::Lost(id) => format!("Job with id {id} lost"),
        JobError::Submitted(id) => format!("Job {id} submitted"),
    }
}

/// `gnt-cluster verify-disks`: runs the check, then `activate-disks` for
/// every instance whose volumes exist but are not active.
#[allow(clippy::print_stdout)]
fn verify_disks(a: &VerifyDisksArgs) -> u8 {
    let opts = match submit_opts(a.priority.as_deref(), false, false) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut op = json!({"OP_ID": "OP_CLUSTER_VERIFY_DISKS"});
    if let Some(g) = &a.node_group {
        op["group_name"] = json!(g);
    }
    with_master(|c| {
        let results = match submit_or_send(c, vec![op], &opts) {
            Ok(r) => r,
            Err(e) => return report(&e),
        };
        let first = results.into_iter().next().unwrap_or(Value::Null);
        // Ganeti's masterd answers with follow-up jobs, one per group; ours
        // answers with the merged result itself.
        let mut outcomes: Vec<Result<Value, String>> = Vec::new();
        match first.get("jobs").and_then(Value::as_array) {
            Some(jobs) => {
                for j in jobs {
                    match (
                        j.get(0).and_then(Value::as_bool),
                        j.get(1).and_then(Value::as_u64),
                    ) {
                        (Some(true), Some(id)) => {
                            match super::job::poll_job(c, id, &mut |l| println!("{l}")) {
                                Ok(r) => {
                                    outcomes.push(Ok(r.into_iter().next().unwrap_or_default()))
                                }
                                Err(e) => outcomes.push(Err(job_error_text(&e))),
                            }
                        }
                        _ => outcomes.push(Err(j.get(1).map(Value::to_string).unwrap_or_default())),
                    }
                }
            }
            None => outcomes.push(Ok(first)),
        }
        let mut code = EXIT_SUCCESS;
        for outcome in outcomes {
            let result = match outcome {
                Ok(r) => r,
                Err(msg) => {
                    println!("Job failed: {msg}");
                    continue;
                }
            };
            let plan = verify_disks_plan(&result);
            for l in &plan.before {
                println!("{l}");
            }
            for inst in &plan.activate {
                println!("Activating disks for instance '{inst}'");
                let op = json!({"OP_ID": "OP_INSTANCE_ACTIVATE_DISKS", "instance_name": inst});
                if let Err(e) = submit_or_send(c, vec![op], &opts) {
                    eprintln!(
                        "Error activating disks for instance {inst}: {}",
                        job_error_text(&e)
                    );
                    code = EXIT_FAILURE;
                }
            }
            for l in &plan.after {
                println!("{l}");
            }
            if plan.failed {
                code = EXIT_FAILURE;
            }
        }
        code
    })
}

/// `gnt-cluster repair-disk-sizes`: the job's log says what was fixed.
fn repair_disk_sizes(a: &RepairDiskSizesArgs) -> u8 {
    let mut opts = match submit_opts(a.priority.as_deref(), false, false) {
        Ok(o) => o,
        Err(code) => return code,
    };
    opts.dry_run = a.dry_run;
    let op = json!({"OP_ID": "OP_CLUSTER_REPAIR_DISK_SIZES", "instances": a.instances});
    with_master(|c| match submit_or_send(c, vec![op], &opts) {
        Ok(_) => EXIT_SUCCESS,
        Err(e) => report(&e),
    })
}

fn master_failover(paths: &Paths, a: &MasterFailoverArgs) -> u8 {
    use crate::bootstrap::master::{self, Voting};
    let voting = if a.no_voting {
        if !a.yes_do_it && !super::prompt::ask_user(NO_VOTING_QUESTION) {
            return EXIT_FAILURE;
        }
        Voting::Skip
    } else {
        Voting::Vote
    };
    let rpc = match super::nodes::rpc_client(paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match master::master_failover(paths, &rpc, &crate::sys::cmd::RealRunner, voting) {
        Ok(r) => {
            for w in &r.warnings {
                eprintln!("{w}");
            }
            eprintln!(
                "Master failed over from {} to {}.",
                r.old_master, r.new_master
            );
            if r.master_started {
                EXIT_SUCCESS
            } else {
                EXIT_FAILURE
            }
        }
        Err(e) => {
            eprintln!("{}", super::format_failure(&e.to_failure()));
            EXIT_FAILURE
        }
    }
}

/// The nodes `-n`/`-g` select, online only, from masterd.
fn chosen_nodes(
    client: &mut Client,
    names: &[String],
    group: Option<&str>,
) -> Result<Vec<super::nodes::NodeRow>, u8> {
    let rows = super::nodes::query_nodes(client, &[])?;
    super::nodes::select_online(&rows, names, group).map_err(|e| {
        eprintln!("{e}");
        EXIT_FAILURE
    })
}

/// How long `gnt-cluster command` lets a command run on each node.
const COMMAND_TIMEOUT_SECS: f64 = 3600.0;

#[allow(clippy::print_stdout)]
fn run_command(paths: &Paths, client: &mut Client, a: &CommandArgs) -> u8 {
    use crate::rpc::NodeRpc;
    if a.command.is_empty() {
        eprintln!("Missing the command to run");
        return EXIT_FAILURE;
    }
    let nodes = match chosen_nodes(client, &a.node, a.node_group.as_deref()) {
        Ok(n) => super::nodes::master_last(n),
        Err(code) => return code,
    };
    let rpc = match super::nodes::rpc_client(paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let args = json!(crate::rpc::proto::RunCommandArgs {
        command: a.command.join(" "),
        timeout_secs: COMMAND_TIMEOUT_SECS,
    });
    let targets: Vec<_> = nodes
        .iter()
        .map(|n| n.target(super::nodes::Network::Primary))
        .collect();
    let timeout = std::time::Duration::from_secs_f64(COMMAND_TIMEOUT_SECS + 30.0);
    let mut all_ok = true;
    for (node, result) in rpc.call(crate::rpc::proto::RUN_COMMAND, &targets, &args, timeout) {
        let (text, ok) = super::nodes::format_command_result(&node, &result, a.show_machine_names);
        all_ok &= ok;
        if a.failure_only && ok {
            continue;
        }
        println!("{text}");
    }
    if all_ok {
        EXIT_SUCCESS
    } else {
        EXIT_FAILURE
    }
}

fn copyfile(paths: &Paths, client: &mut Client, a: &CopyfileArgs) -> u8 {
    use crate::rpc::NodeRpc;
    use std::os::unix::fs::PermissionsExt;
    let file = std::path::Path::new(&a.file);
    if !file.is_absolute() {
        eprintln!("File '{}' must be an absolute path", a.file);
        return EXIT_FAILURE;
    }
    let local = paths.under_root(&a.file);
    let (data, mode) = match std::fs::read(&local)
        .and_then(|d| std::fs::metadata(&local).map(|m| (d, m.permissions().mode() & 0o7777)))
    {
        Ok(x) => x,
        Err(e) => {
            eprintln!("Cannot read file '{}': {e}", a.file);
            return EXIT_FAILURE;
        }
    };
    let me = paths.hostname();
    let nodes = match chosen_nodes(client, &a.node, a.node_group.as_deref()) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let network = if a.use_replication_network {
        super::nodes::Network::Replication
    } else {
        super::nodes::Network::Primary
    };
    let targets: Vec<_> = nodes
        .iter()
        .filter(|n| n.name != me)
        .map(|n| n.target(network))
        .collect();
    let rpc = match super::nodes::rpc_client(paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let args = json!(crate::rpc::proto::UploadFilesArgs {
        files: vec![crate::rpc::proto::FileUpload {
            path: a.file.clone(),
            data: crate::rpc::b64::encode(&data),
            mode,
        }],
    });
    let mut code = EXIT_SUCCESS;
    for (node, r) in rpc.call(
        crate::rpc::proto::UPLOAD_FILES,
        &targets,
        &args,
        crate::rpc::DEFAULT_TIMEOUT,
    ) {
        if let Err(e) = r {
            eprintln!(
                "Copy of file {} to node {node} failed: {}",
                a.file,
                crate::error::chain(&e)
            );
            code = EXIT_FAILURE;
        }
    }
    code
}

/// `activate-master-ip`/`deactivate-master-ip`: the master IP facts from
/// ssconf and masterd, one `master_ip` call to the master's noded.
fn master_ip(paths: &Paths, client: &mut Client, action: &str) -> u8 {
    use crate::rpc::NodeRpc;
    let info = match client.call(Method::QueryClusterInfo, Value::Array(vec![])) {
        Ok(i) => i,
        Err(e) => return report_luxi_error(&e),
    };
    let args = match master_ip_args(paths, &info, action) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    let master = info["master"].as_str().unwrap_or_default().to_string();
    let rows = match super::nodes::query_nodes(client, std::slice::from_ref(&master)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let Some(node) = rows.iter().find(|r| r.name == master) else {
        eprintln!("The master node {master} is not in the node list");
        return EXIT_FAILURE;
    };
    let rpc = match super::nodes::rpc_client(paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match rpc.call_one(
        crate::rpc::proto::MASTER_IP,
        &node.target(super::nodes::Network::Primary),
        &json!(args),
        crate::rpc::DEFAULT_TIMEOUT,
    ) {
        Ok(_) => EXIT_SUCCESS,
        Err(e) => {
            eprintln!(
                "Failure: command execution error:\nCould not {} the master IP: {}",
                if action == "start" {
                    "activate"
                } else {
                    "deactivate"
                },
                crate::error::chain(&e)
            );
            EXIT_FAILURE
        }
    }
}

/// The `master_ip` arguments from the ssconf files and `QueryClusterInfo`.
fn master_ip_args(
    paths: &Paths,
    info: &Value,
    action: &str,
) -> Result<crate::rpc::proto::MasterIpArgs, String> {
    let ss = |k: &str| {
        crate::ssconf::read(paths, k)
            .map(|v| v.trim().to_string())
            .map_err(|e| crate::error::chain(&e))
    };
    let ip = ss("master_ip")?;
    let netmask = ss("master_netmask")?
        .parse::<u8>()
        .map_err(|_| "ssconf_master_netmask is not a prefix length".to_string())?;
    Ok(crate::rpc::proto::MasterIpArgs {
        action: action.to_string(),
        family: if ip.contains(':') { 6 } else { 4 },
        ip,
        netmask,
        netdev: ss("master_netdev")?,
        external_script: info["use_external_mip_script"].as_bool().unwrap_or(false),
    })
}

fn init(paths: &Paths, a: Box<InitArgs>) -> u8 {
    let a = *a;
    // --no-ssh-init is accepted so Ganeti scripts keep working; ganeti-rs
    // never changes SSH setup either way.
    let _ = a.no_ssh_init;
    let opts = InitOptions {
        cluster_name: a.cluster_name,
        enabled_hypervisors: a.enabled_hypervisors,
        enabled_disk_templates: a.enabled_disk_templates,
        master_netdev: a.master_netdev,
        master_netmask: a.master_netmask,
        secondary_ip: a.secondary_ip,
        primary_ip_version: a.primary_ip_version,
        hvparams: a.hypervisor_parameters,
        beparams: a.backend_parameters,
        nicparams: a.nic_parameters,
        diskparams: a.disk_parameters,
        ndparams: a.node_parameters,
        uid_pool: a.uid_pool,
        file_storage_dir: a.file_storage_dir,
        shared_file_storage_dir: a.shared_file_storage_dir,
        modify_etc_hosts: !a.no_etc_hosts,
        use_external_mip_script: a.use_external_mip_script,
        mac_prefix: a.mac_prefix,
        candidate_pool_size: a.candidate_pool_size,
        default_iallocator: a.default_iallocator,
        vg_name: a.vg_name,
        drbd_helper: a.drbd_usermode_helper,
        maintain_node_health: a.maintain_node_health,
        prealloc_wipe_disks: a.prealloc_wipe_disks,
        start_daemons: !a.no_start,
    };
    match bootstrap::init_cluster(paths, &opts, &crate::sys::cmd::RealRunner) {
        Ok(report) => {
            for line in report {
                eprintln!("{line}");
            }
            EXIT_SUCCESS
        }
        Err(e) => {
            eprintln!("{}", super::format_failure(&e.to_failure()));
            EXIT_FAILURE
        }
    }
}

/// Runs `f` with a connection to masterd's socket.
fn with_master(f: impl FnOnce(&mut Client) -> u8) -> u8 {
    match super::connect_master(super::MasterSocket::Master) {
        Ok(mut c) => f(&mut c),
        Err(code) => code,
    }
}

/// The arguments `add-tags` and `remove-tags` share.
struct TagChangeArgs<'a> {
    from: Option<&'a str>,
    tags: &'a [String],
    submit: bool,
    print_jobid: bool,
    priority: Option<&'a str>,
}

fn change_tags(client: &mut Client, op_id: &str, a: TagChangeArgs<'_>) -> u8 {
    let mut tags = a.tags.to_vec();
    match super::tags::tags_from_file(a.from) {
        Ok(extra) => tags.extend(extra),
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    }
    let opts = match super::tags::tag_job_opts(a.submit, a.print_jobid, a.priority) {
        Ok(o) => o,
        Err(code) => return code,
    };
    super::tags::change(client, op_id, "cluster", None, tags, &opts)
}

#[allow(clippy::print_stdout)]
fn queue(client: &mut Client, a: &QueueArgs) -> u8 {
    let result = match a.command.as_str() {
        "drain" | "undrain" => client
            .call(Method::SetDrainFlag, json!([a.command == "drain"]))
            .map(|_| ()),
        "info" => client
            .call(Method::QueryConfigValues, json!([["drain_flag"]]))
            .map(|v| {
                let set = v.get(0).and_then(Value::as_bool).unwrap_or(false);
                println!("The drain flag is {}", if set { "set" } else { "unset" });
            }),
        other => {
            eprintln!("Command '{other}' is not valid (use drain, undrain or info).");
            return EXIT_FAILURE;
        }
    };
    match result {
        Ok(()) => EXIT_SUCCESS,
        Err(e) => report_luxi_error(&e),
    }
}

/// Ganeti's `ParseTimespec`: seconds, or a number with s/m/h/d/w.
pub fn parse_timespec(text: &str) -> Result<u64, String> {
    let bad = || format!("Invalid time specification '{text}'");
    let (num, unit) = match text.chars().last() {
        None => return Err("Empty time specification passed".into()),
        Some(c @ ('s' | 'm' | 'h' | 'd' | 'w')) => (&text[..text.len() - 1], c),
        Some(_) => (text, 's'),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let factor = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => 1,
    };
    n.checked_mul(factor).ok_or_else(bad)
}

#[allow(clippy::print_stdout)]
fn show_watcher_pause(until: &Value) {
    match until.as_f64() {
        Some(t) if t >= crate::sys::time::now_secs() => {
            println!(
                "The watcher is paused until {}.",
                crate::sys::time::format_ctime(t)
            );
        }
        _ => println!("The watcher is not paused."),
    }
}

#[allow(clippy::print_stdout)]
fn watcher(client: &mut Client, a: &WatcherArgs) -> u8 {
    let result = match a.command.as_str() {
        "continue" => client
            .call(Method::SetWatcherPause, json!([null]))
            .map(|_| {
                println!("The watcher is no longer paused.");
            }),
        "pause" => {
            let Some(d) = &a.duration else {
                eprintln!("Missing pause duration");
                return EXIT_FAILURE;
            };
            let secs = match parse_timespec(d) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_FAILURE;
                }
            };
            #[allow(clippy::cast_precision_loss)] // durations far below 2^52 s
            let until = crate::sys::time::now_secs() + secs as f64;
            client
                .call(Method::SetWatcherPause, json!([until]))
                .map(|v| show_watcher_pause(&v))
        }
        "info" => client
            .call(Method::QueryConfigValues, json!([["watcher_pause"]]))
            .map(|v| show_watcher_pause(v.get(0).unwrap_or(&Value::Null))),
        other => {
            eprintln!("Command '{other}' is not valid (use pause, continue or info).");
            return EXIT_FAILURE;
        }
    };
    match result {
        Ok(()) => EXIT_SUCCESS,
        Err(e) => report_luxi_error(&e),
    }
}

fn uid_ranges(text: &str) -> Result<Value, String> {
    crate::bootstrap::parse_uid_pool(text)
        .map(|r| json!(r))
        .map_err(|e| e.to_string())
}

fn yes_no(option: &str, v: &str) -> Result<bool, String> {
    match v {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        other => Err(format!("{option} takes yes or no, not {other:?}")),
    }
}

/// `key=value` text typed into the parameter family's JSON values.
fn typed(
    option: &str,
    family: ParamFamily,
    sub: Option<&str>,
    text: &str,
) -> Result<Value, String> {
    let items = parse_keyval(text).map_err(|e| format!("{option}: {e}"))?;
    let items: Vec<(String, Option<String>)> =
        items.into_iter().map(|(k, v)| (k, v.as_text())).collect();
    params::params_from_text(family, sub, &items)
        .map(|m| Value::Object(m.into_iter().collect()))
        .map_err(|e| format!("{option}: {}", crate::error::chain(&e)))
}

fn modify_op(a: &ModifyArgs) -> Result<Value, String> {
    let mut op = json!({"OP_ID": "OP_CLUSTER_SET_PARAMS"});
    let set = |op: &mut Value, k: &str, v: Value| {
        op[k] = v;
    };
    if let Some(t) = &a.uid_pool {
        set(&mut op, "uid_pool", uid_ranges(t)?);
    }
    if let Some(t) = &a.add_uids {
        set(&mut op, "add_uids", uid_ranges(t)?);
    }
    if let Some(t) = &a.remove_uids {
        set(&mut op, "remove_uids", uid_ranges(t)?);
    }
    if let Some(t) = &a.default_iallocator {
        set(&mut op, "default_iallocator", json!(t));
    }
    if !a.hypervisor_parameters.is_empty() {
        let mut hvs = serde_json::Map::new();
        for entry in &a.hypervisor_parameters {
            match parse_ident_keyval(entry).map_err(|e| format!("-H: {e}"))? {
                IdentKv::Set(hv, items) => {
                    let text = items
                        .iter()
                        .map(|(k, v)| match v.as_text() {
                            Some(t) => format!("{k}={}", t.replace(',', "\\,")),
                            None => format!("-{k}"),
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    hvs.insert(hv.clone(), typed("-H", ParamFamily::Hv, Some(&hv), &text)?);
                }
                IdentKv::Remove(hv) | IdentKv::Reset(hv) => {
                    return Err(format!("-H: removing or resetting {hv:?} is not supported"));
                }
            }
        }
        set(&mut op, "hvparams", Value::Object(hvs));
    }
    if let Some(t) = &a.backend_parameters {
        set(&mut op, "beparams", typed("-B", ParamFamily::Be, None, t)?);
    }
    if let Some(t) = &a.nic_parameters {
        set(
            &mut op,
            "nicparams",
            typed("-N", ParamFamily::Nic, None, t)?,
        );
    }
    if let Some(t) = &a.node_parameters {
        set(
            &mut op,
            "ndparams",
            typed("--node-parameters", ParamFamily::Nd, None, t)?,
        );
    }
    if let Some(n) = a.candidate_pool_size {
        set(&mut op, "candidate_pool_size", json!(n));
    }
    if let Some(n) = a.max_running_jobs {
        set(&mut op, "max_running_jobs", json!(n));
    }
    if let Some(n) = a.max_tracked_jobs {
        set(&mut op, "max_tracked_jobs", json!(n));
    }
    if let Some(t) = &a.mac_prefix {
        set(&mut op, "mac_prefix", json!(t));
    }
    if let Some(t) = &a.enabled_hypervisors {
        let hvs: Vec<&str> = t
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        set(&mut op, "enabled_hypervisors", json!(hvs));
    }
    if let Some(t) = &a.maintain_node_health {
        set(
            &mut op,
            "maintain_node_health",
            json!(yes_no("--maintain-node-health", t)?),
        );
    }
    if let Some(t) = &a.prealloc_wipe_disks {
        set(
            &mut op,
            "prealloc_wipe_disks",
            json!(yes_no("--prealloc-wipe-disks", t)?),
        );
    }
    if op.as_object().is_some_and(|o| o.len() == 1) {
        return Err("Please give at least one of the parameters.".into());
    }
    Ok(op)
}

fn modify(client: &mut Client, a: &ModifyArgs) -> u8 {
    let op = match modify_op(a) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    let priority = match a.priority.as_deref().map(parse_priority).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    let opts = SubmitOpts {
        submit_only: a.submit,
        print_jobid: a.print_jobid,
        priority,
        dry_run: a.dry_run,
    };
    match submit_or_send(client, vec![op], &opts) {
        Ok(_) => EXIT_SUCCESS,
        Err(e) => report(&e),
    }
}

fn luxi_call(paths: &Paths, method: Method, args: Value) -> Result<Value, u8> {
    Client::connect(&paths.query_socket())
        .and_then(|mut c| c.call(method, args))
        .map_err(|e| report_luxi_error(&e))
}

#[allow(clippy::print_stdout)]
fn getmaster(paths: &Paths) -> u8 {
    match crate::ssconf::master_node(paths) {
        Ok(m) => {
            println!("{m}");
            EXIT_SUCCESS
        }
        Err(e) => {
            eprintln!(
                "Cannot determine the master node: {}",
                crate::error::chain(&e)
            );
            EXIT_FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn version(paths: &Paths) -> u8 {
    let r = match luxi_call(paths, Method::QueryClusterInfo, Value::Array(vec![])) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let s = |k: &str| python_repr(&r[k]);
    println!("Software version: {}", s("software_version"));
    println!("Internode protocol: {}", s("protocol_version"));
    println!("Configuration format: {}", s("config_version"));
    println!("OS api version: {}", s("os_api_version"));
    println!("Export interface: {}", s("export_version"));
    println!("VCS version: {}", s("vcs_version"));
    EXIT_SUCCESS
}

#[allow(clippy::print_stdout)]
fn info(paths: &Paths) -> u8 {
    match luxi_call(paths, Method::QueryClusterInfo, Value::Array(vec![])) {
        Ok(r) => {
            println!("{}", cluster_info_tree(&r).render());
            EXIT_SUCCESS
        }
        Err(code) => code,
    }
}

fn format_time(v: &Value) -> String {
    match v.as_f64() {
        Some(t) => crate::sys::time::format_local(t),
        None => "N/A".into(),
    }
}

fn comma_join(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(python_repr).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn format_uid_pool(v: &Value) -> String {
    let ranges: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let lo = r.get(0)?.as_u64()?;
                    let hi = r.get(1)?.as_u64()?;
                    Some(if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ranges.join(", ")
}

/// `gnt-cluster info` output from a `QueryClusterInfo` answer, in
/// Ganeti's order and wording.
fn cluster_info_tree(r: &Value) -> Info {
    let t = |k: &str| Info::text(python_repr(&r[k]));
    let tags = match r["tags"].as_array() {
        Some(a) if !a.is_empty() => {
            let mut v: Vec<String> = a.iter().map(python_repr).collect();
            v.sort();
            v.join(", ")
        }
        _ => "(none)".into(),
    };
    let reserved = match r["reserved_lvs"].as_array() {
        Some(a) if !a.is_empty() => comma_join(&r["reserved_lvs"]),
        _ => "(none)".into(),
    };
    let arch = &r["architecture"];
    let mut collectors = std::collections::BTreeMap::new();
    if let Some(m) = r["enabled_data_collectors"].as_object() {
        for (k, active) in m {
            let interval = r["data_collector_interval"][k].as_f64().unwrap_or(0.0) / 1e6;
            collectors.insert(
                k.clone(),
                Info::Dict(
                    [
                        ("active".to_string(), Info::text(python_repr(active))),
                        (
                            "interval".to_string(),
                            Info::text(format!("{interval:.3}s")),
                        ),
                    ]
                    .into(),
                ),
            );
        }
    }
    Info::Section(vec![
        ("Cluster name".into(), t("name")),
        ("Cluster UUID".into(), t("uuid")),
        ("Creation time".into(), Info::text(format_time(&r["ctime"]))),
        (
            "Modification time".into(),
            Info::text(format_time(&r["mtime"])),
        ),
        ("Master node".into(), t("master")),
        (
            "Architecture (this node)".into(),
            Info::text(format!(
                "{} ({})",
                python_repr(&arch[0]),
                python_repr(&arch[1])
            )),
        ),
        ("Tags".into(), Info::text(tags)),
        ("Default hypervisor".into(), t("default_hypervisor")),
        (
            "Enabled hypervisors".into(),
            Info::text(comma_join(&r["enabled_hypervisors"])),
        ),
        (
            "Hypervisor parameters".into(),
            Info::from_json_dict(&r["hvparams"]),
        ),
        (
            "OS-specific hypervisor parameters".into(),
            Info::from_json_dict(&r["os_hvp"]),
        ),
        ("OS parameters".into(), Info::from_json_dict(&r["osparams"])),
        (
            "Hidden OSes".into(),
            Info::text(comma_join(&r["hidden_os"])),
        ),
        (
            "Blacklisted OSes".into(),
            Info::text(comma_join(&r["blacklisted_os"])),
        ),
        (
            "Cluster parameters".into(),
            Info::Section(vec![
                ("candidate pool size".into(), t("candidate_pool_size")),
                (
                    "maximal number of jobs running simultaneously".into(),
                    t("max_running_jobs"),
                ),
                (
                    "maximal number of jobs simultaneously tracked by the scheduler".into(),
                    t("max_tracked_jobs"),
                ),
                ("mac prefix".into(), t("mac_prefix")),
                ("master netdev".into(), t("master_netdev")),
                ("master netmask".into(), t("master_netmask")),
                (
                    "use external master IP address setup script".into(),
                    t("use_external_mip_script"),
                ),
                ("lvm volume group".into(), t("volume_group_name")),
                ("lvm reserved volumes".into(), Info::text(reserved)),
                ("drbd usermode helper".into(), t("drbd_usermode_helper")),
                ("file storage path".into(), t("file_storage_dir")),
                (
                    "shared file storage path".into(),
                    t("shared_file_storage_dir"),
                ),
                ("gluster storage path".into(), t("gluster_storage_dir")),
                (
                    "maintenance of node health".into(),
                    t("maintain_node_health"),
                ),
                (
                    "uid pool".into(),
                    Info::text(format_uid_pool(&r["uid_pool"])),
                ),
                ("default instance allocator".into(), t("default_iallocator")),
                (
                    "default instance allocator parameters".into(),
                    Info::from_json_dict(&r["default_iallocator_params"]),
                ),
                ("primary ip version".into(), t("primary_ip_version")),
                ("preallocation wipe disks".into(), t("prealloc_wipe_disks")),
                (
                    "OS search path".into(),
                    Info::text(crate::constants::OS_SEARCH_PATH.join(", ")),
                ),
                (
                    "ExtStorage Providers search path".into(),
                    Info::text(crate::constants::ES_SEARCH_PATH.join(", ")),
                ),
                (
                    "enabled disk templates".into(),
                    Info::text(comma_join(&r["enabled_disk_templates"])),
                ),
                ("install image".into(), t("install_image")),
                (
                    "instance communication network".into(),
                    t("instance_communication_network"),
                ),
                ("zeroing image".into(), t("zeroing_image")),
                (
                    "compression tools".into(),
                    Info::text(python_repr(&r["compression_tools"])),
                ),
                ("enabled user shutdown".into(), t("enabled_user_shutdown")),
                ("modify ssh setup".into(), t("modify_ssh_setup")),
                ("ssh_key_type".into(), t("ssh_key_type")),
                ("ssh_key_bits".into(), t("ssh_key_bits")),
            ]),
        ),
        (
            "Default node parameters".into(),
            Info::from_json_dict(&r["ndparams"]),
        ),
        (
            "Default instance parameters".into(),
            Info::from_json_dict(&r["beparams"]),
        ),
        (
            "Default nic parameters".into(),
            Info::from_json_dict(&r["nicparams"]),
        ),
        (
            "Default disk parameters".into(),
            Info::from_json_dict(&r["diskparams"]),
        ),
        (
            "Instance policy - limits for instances".into(),
            ipolicy_tree(&r["ipolicy"]),
        ),
        ("Data collectors".into(), Info::Dict(collectors)),
    ])
}

/// A cluster-level instance policy in Ganeti's layout (`FormatPolicyInfo`).
fn ipolicy_tree(p: &Value) -> Info {
    let bounds: Vec<Info> = p["minmax"]
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, mm)| {
                    Info::Section(
                        ["max", "min"]
                            .iter()
                            .map(|k| (format!("{k}/{i}"), Info::from_json_dict(&mm[*k])))
                            .collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![("bounds specs".to_string(), Info::List(bounds))];
    out.push(("std".into(), Info::from_json_dict(&p["std"])));
    out.push((
        "allowed disk templates".into(),
        Info::text(comma_join(&p["disk-templates"])),
    ));
    for k in ["vcpu-ratio", "spindle-ratio"] {
        out.push((k.into(), Info::text(python_repr(&p[k]))));
    }
    Info::Section(out)
}

#[allow(clippy::print_stdout)]
fn destroy(paths: &Paths, a: DestroyArgs) -> u8 {
    if !a.yes_do_it {
        eprintln!(
            "Destroying a cluster is irreversible. If you really want to destroy this cluster, supply the --yes-do-it option."
        );
        return EXIT_FAILURE;
    }
    match bootstrap::destroy_cluster(paths, &crate::sys::cmd::RealRunner) {
        Ok(()) => EXIT_SUCCESS,
        Err(e) => {
            eprintln!("{}", super::format_failure(&e.to_failure()));
            EXIT_FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn parse(args: &[&str]) -> GntCluster {
        let args = command_argv(&v(args));
        let args = super::super::normalize_argv(&args, SHORT_WITH_VALUE);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        GntCluster::from_args(&["gnt-cluster"], &refs).unwrap()
    }

    fn valid(op: &Value) -> Value {
        let parsed = crate::opcodes::OpCode::from_json(op).unwrap();
        parsed.validate().unwrap();
        parsed.to_json()
    }

    #[test]
    fn command_takes_the_rest_as_the_command() {
        assert_eq!(
            command_argv(&v(&["command", "-n", "a", "-M", "ls", "-l", "/x"])),
            v(&["command", "-n", "a", "-M", "--", "ls", "-l", "/x"])
        );
        assert_eq!(
            command_argv(&v(&["command", "--", "uptime"])),
            v(&["command", "--", "uptime"])
        );
        assert_eq!(command_argv(&v(&["verify", "-v"])), v(&["verify", "-v"]));
        let Command::Run(c) = parse(&["command", "-n", "a", "-nb", "-g", "g1", "ls", "-l"]).command
        else {
            panic!("not command");
        };
        assert_eq!(c.node, v(&["a", "b"]));
        assert_eq!(c.node_group.as_deref(), Some("g1"));
        assert_eq!(c.command, v(&["ls", "-l"]));
    }

    #[test]
    fn verify_builds_op_cluster_verify() {
        let Command::Verify(a) = parse(&[
            "verify",
            "--no-nplus1-mem",
            "-I",
            "ENODEN1",
            "-g",
            "rack1",
            "-v",
        ])
        .command
        else {
            panic!("not verify");
        };
        let op = valid(&verify_op(&a));
        assert_eq!(op["OP_ID"], "OP_CLUSTER_VERIFY");
        assert_eq!(op["skip_checks"], json!(["nplusone_mem"]));
        assert_eq!(op["ignore_errors"], json!(["ENODEN1"]));
        assert_eq!(op["group_name"], "rack1");
        assert_eq!(op["verbose"], true);
        valid(&json!({"OP_ID": "OP_CLUSTER_REDIST_CONF"}));
    }

    #[test]
    fn verify_results() {
        assert_eq!(verify_result(&json!(true)), VerifyResult::Done(true));
        assert_eq!(verify_result(&json!(false)), VerifyResult::Done(false));
        assert_eq!(
            verify_result(&json!({"jobs": [[true, 5], [false, "queue full"], [true, 6]]})),
            VerifyResult::Jobs {
                ids: vec![5, 6],
                failed: 1
            }
        );
    }

    #[test]
    fn new_commands_parse() {
        let Command::JoinToken(j) = parse(&["join-token"]).command else {
            panic!("not join-token");
        };
        assert_eq!(j.ttl, 3600);
        let Command::JoinToken(j) = parse(&["join-token", "--ttl=60"]).command else {
            panic!("not join-token");
        };
        assert_eq!(j.ttl, 60);
        assert!(join_token_help(60).contains("/var/lib/ganeti/join-token"));
        let Command::MasterFailover(m) =
            parse(&["master-failover", "--no-voting", "--yes-do-it"]).command
        else {
            panic!("not master-failover");
        };
        assert!(m.no_voting && m.yes_do_it);
        let Command::Copyfile(c) = parse(&[
            "copyfile",
            "--use-replication-network",
            "-n",
            "n2",
            "/etc/hosts",
        ])
        .command
        else {
            panic!("not copyfile");
        };
        assert!(c.use_replication_network);
        assert_eq!(c.file, "/etc/hosts");
        assert!(matches!(
            parse(&["master-ping"]).command,
            Command::MasterPing(_)
        ));
        assert!(matches!(
            parse(&["deactivate-master-ip", "--yes"]).command,
            Command::DeactivateMasterIp(DeactivateMasterIpArgs { yes: true })
        ));
    }

    #[test]
    fn master_ip_args_come_from_ssconf() {
        let base = std::env::temp_dir().join(format!("ganeti-cli-mip-{}", std::process::id()));
        let root = base.join("node1.example.com");
        std::fs::create_dir_all(&root).unwrap();
        let paths = Paths::virtual_node(&root, "node1.example.com").unwrap();
        let config = crate::config::test_support::generated(1, 0);
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        crate::ssconf::write_all(&paths, &config).unwrap();
        let a = master_ip_args(&paths, &json!({"use_external_mip_script": true}), "stop").unwrap();
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(a.ip, "192.0.2.254");
        assert_eq!(a.netdev, "eth0");
        assert_eq!(a.family, 4);
        assert_eq!(a.action, "stop");
        assert!(a.external_script);
        assert_eq!(u32::from(a.netmask), config.cluster.master_netmask);
    }

    #[test]
    fn timespecs() {
        assert_eq!(parse_timespec("90"), Ok(90));
        assert_eq!(parse_timespec("2h"), Ok(7200));
        assert_eq!(parse_timespec("1w"), Ok(604_800));
        assert!(parse_timespec("").is_err());
        assert!(parse_timespec("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn modify_builds_typed_opcodes() {
        let args = ModifyArgs::from_args(
            &["modify"],
            &[
                "--uid-pool",
                "1000-1009",
                "-H",
                "kvm:migration_port=8200",
                "-B",
                "memory=1G",
                "--maintain-node-health",
                "yes",
            ],
        )
        .unwrap();
        let op = modify_op(&args).unwrap();
        assert_eq!(op["uid_pool"], json!([[1000, 1009]]));
        assert_eq!(op["hvparams"]["kvm"]["migration_port"], 8200);
        assert_eq!(op["beparams"]["maxmem"], 1024);
        assert_eq!(op["maintain_node_health"], true);
        let bad = ModifyArgs::from_args(&["modify"], &["-B", "vcpus=lots"]).unwrap();
        assert!(modify_op(&bad).unwrap_err().contains("vcpus"));
        let none = ModifyArgs::from_args(&["modify"], &[]).unwrap();
        assert!(modify_op(&none).is_err());
    }

    #[test]
    fn verify_disks_and_repair_parse() {
        let Command::VerifyDisks(v) = parse(&["verify-disks", "-g", "default"]).command else {
            panic!("not verify-disks");
        };
        assert_eq!(v.node_group.as_deref(), Some("default"));
        let Command::RepairDiskSizes(r) =
            parse(&["repair-disk-sizes", "--dry-run", "inst1", "inst2"]).command
        else {
            panic!("not repair-disk-sizes");
        };
        assert!(r.dry_run);
        assert_eq!(r.instances, vec!["inst1", "inst2"]);
        let op = json!({"OP_ID": "OP_CLUSTER_REPAIR_DISK_SIZES", "instances": r.instances});
        crate::opcodes::OpCode::from_json(&op).unwrap();
        let op = json!({"OP_ID": "OP_CLUSTER_REPAIR_DISK_SIZES", "instances": []});
        crate::opcodes::OpCode::from_json(&op).unwrap();
    }

    #[test]
    fn verify_disks_plans_follow_ganeti() {
        assert_eq!(
            verify_disks_plan(&json!([{}, [], {}])),
            VerifyDisksPlan {
                after: vec!["No disks need to be activated.".into()],
                ..Default::default()
            }
        );
        let plan = verify_disks_plan(&json!([
            {"n2": "Connection refused"},
            ["i1", "i2"],
            {"i2": [["n1", "/srv/ganeti/file-storage/i2/disk0"], ["n1", "xenvg/a.data"]],
             "i3": [["n2", "xenvg/b"]]}
        ]));
        assert_eq!(
            plan.before,
            vec![
                "Error gathering data on node n2: Connection refused",
                "You need to fix these nodes first before fixing instances"
            ]
        );
        assert_eq!(
            plan.activate,
            vec!["i1"],
            "instances with missing volumes are not activated"
        );
        assert_eq!(
            plan.after,
            vec![
                "Instance i2 has missing logical volumes:",
                "\tn1 /srv/ganeti/file-storage/i2/disk0",
                "\tn1 /dev/xenvg/a.data",
                "Instance i3 cannot be verified as it lives on broken nodes",
                "You need to replace or recreate disks for all the above instances if this message persists after fixing broken nodes.",
            ]
        );
        assert!(plan.failed);
        let plan = verify_disks_plan(&json!([{}, ["i1"], {}]));
        assert_eq!(plan.activate, vec!["i1"]);
        assert!(plan.after.is_empty() && !plan.failed);
        let long = "x".repeat(500);
        let plan = verify_disks_plan(&json!([{"n": long}, [], {}]));
        assert_eq!(
            plan.before[0].len(),
            "Error gathering data on node n: ".len() + 400
        );
    }
}
