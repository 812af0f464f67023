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
const SHORT_WITH_VALUE: &[char] = &['s', 'H', 'B', 'N', 'D', 'C', 'I', 'g'];

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
    let cmd: GntCluster = match parse_args(program, args, SHORT_WITH_VALUE) {
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
    }
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
}
