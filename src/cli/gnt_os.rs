//! `gnt-os`: OS definitions across the cluster (Ganeti's `gnt_os.py`).
//! `list`, `diagnose` and `info` submit `OP_OS_DIAGNOSE` with the fields
//! Ganeti's client asks for and print its answer in Ganeti's words;
//! `modify` submits `OP_CLUSTER_SET_PARAMS` with the per-OS settings
//! (`os_hvp`, `osparams`, `osparams_private_cluster`, `hidden_os`,
//! `blacklisted_os`).

use super::job::{parse_priority, report, submit_or_send, SubmitOpts};
use super::kv::{parse_ident_keyval, parse_keyval, IdentKv, KvValue};
use super::output::{python_repr, Info};
use super::{parse_args, EXIT_FAILURE, EXIT_SUCCESS};
use argh::FromArgs;
use serde_json::{json, Map, Value};

const SHORT_WITH_VALUE: &[char] = &['H', 'O'];

#[derive(FromArgs, Debug)]
/// OS definitions (Ganeti's gnt-os).
struct GntOs {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    List(ListArgs),
    Diagnose(DiagnoseArgs),
    Info(InfoArgs),
    Modify(ModifyArgs),
}

#[derive(FromArgs, Debug)]
/// Lists all valid operating systems on the cluster.
#[argh(subcommand, name = "list")]
struct ListArgs {
    /// do not print the header row
    #[argh(switch)]
    no_headers: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Diagnoses all operating systems.
#[argh(subcommand, name = "diagnose")]
struct DiagnoseArgs {
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Shows detailed information about operating systems.
#[argh(subcommand, name = "info")]
struct InfoArgs {
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// OS names (all when none)
    #[argh(positional)]
    names: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Modifies the OS parameters.
#[argh(subcommand, name = "modify")]
struct ModifyArgs {
    /// hypervisor parameters for this OS: hv:key=value,... (repeatable)
    #[argh(option, short = 'H')]
    hypervisor_parameters: Vec<String>,
    /// OS parameters: key=value,...
    #[argh(option, short = 'O')]
    os_parameters: Option<String>,
    /// private OS parameters: key=value,...
    #[argh(option)]
    os_parameters_private: Option<String>,
    /// hide the OS from listings (yes or no)
    #[argh(option)]
    hidden: Option<String>,
    /// refuse the OS for new instances (yes or no)
    #[argh(option)]
    blacklisted: Option<String>,
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
    /// the OS (with variant, as the settings apply to it)
    #[argh(positional)]
    os: String,
}

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    let cmd: GntOs = match parse_args(program, args, SHORT_WITH_VALUE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cmd.command {
        Command::List(a) => query(&a.priority, &["name", "variants"], &[], |rows| {
            print_lines(&format_list(rows, a.no_headers));
            EXIT_SUCCESS
        }),
        Command::Diagnose(a) => query(&a.priority, DIAGNOSE_FIELDS, &[], |rows| {
            let (text, bad) = format_diagnose(rows);
            print_lines(&text);
            if bad {
                EXIT_FAILURE
            } else {
                EXIT_SUCCESS
            }
        }),
        Command::Info(a) => query(&a.priority, INFO_FIELDS, &[], |rows| {
            print_lines(&format_info(rows, &a.names));
            EXIT_SUCCESS
        }),
        Command::Modify(a) => modify(a),
    }
}

/// The fields `gnt-os diagnose` asks for.
pub const DIAGNOSE_FIELDS: &[&str] = &[
    "name",
    "valid",
    "variants",
    "node_status",
    "hidden",
    "blacklisted",
];

/// The fields `gnt-os info` asks for.
pub const INFO_FIELDS: &[&str] = &[
    "name",
    "valid",
    "variants",
    "parameters",
    "api_versions",
    "blacklisted",
    "hidden",
    "os_hvp",
    "osparams",
    "trusted",
];

#[allow(clippy::print_stdout)]
fn print_lines(text: &str) {
    if !text.is_empty() {
        println!("{text}");
    }
}

fn opts_with_priority(priority: &Option<String>) -> Result<SubmitOpts, u8> {
    let priority = match priority.as_deref().map(parse_priority).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error: {e}");
            return Err(EXIT_FAILURE);
        }
    };
    Ok(SubmitOpts {
        priority,
        ..SubmitOpts::default()
    })
}

/// Submits `OP_OS_DIAGNOSE` for `fields` and hands the rows to `show`.
fn query(
    priority: &Option<String>,
    fields: &[&str],
    names: &[String],
    show: impl FnOnce(&[Value]) -> u8,
) -> u8 {
    let opts = match opts_with_priority(priority) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut client = match super::connect_master(super::MasterSocket::Master) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let op = json!({"OP_ID": "OP_OS_DIAGNOSE", "output_fields": fields, "names": names});
    match submit_or_send(&mut client, vec![op], &opts) {
        Ok(results) => match results.first().and_then(Value::as_array) {
            Some(rows) => show(rows),
            None => {
                eprintln!("Can't get the OS list");
                EXIT_FAILURE
            }
        },
        Err(e) => report(&e),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| python_repr(x), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn py_bool(v: &Value) -> &'static str {
    if v.as_bool().unwrap_or(false) {
        "True"
    } else {
        "False"
    }
}

/// `gnt-os list`: one line per OS name with variant (`CalculateOSNames`).
pub fn format_list(rows: &[Value], no_headers: bool) -> String {
    let mut lines = Vec::new();
    if !no_headers {
        lines.push("Name".to_string());
    }
    for row in rows {
        let name = row[0].as_str().unwrap_or_default();
        let variants = strings(&row[1]);
        if variants.is_empty() {
            lines.push(name.to_string());
        } else {
            lines.extend(variants.iter().map(|v| format!("{name}+{v}")));
        }
    }
    lines.join("\n")
}

fn os_status(valid: bool, diagnose: &str) -> String {
    if valid {
        "valid".into()
    } else {
        format!("invalid - {diagnose}")
    }
}

/// `gnt-os diagnose` (rows of [`DIAGNOSE_FIELDS`]); also whether any OS
/// is not valid everywhere (the exit status).
pub fn format_diagnose(rows: &[Value]) -> (String, bool) {
    let mut out = Vec::new();
    let mut has_bad = false;
    for row in rows {
        let name = row[0].as_str().unwrap_or_default();
        let variants = strings(&row[2]);
        let mut valid_nodes: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut bad_nodes: Vec<(String, String, Vec<String>)> = Vec::new();
        let empty = Map::new();
        for (node, defs) in row[3].as_object().unwrap_or(&empty) {
            let defs = defs.as_array().cloned().unwrap_or_default();
            let Some(first) = defs.first() else {
                bad_nodes.push((node.clone(), "OS not found".into(), Vec::new()));
                continue;
            };
            let ok = first[1].as_bool().unwrap_or(false);
            let mut msg = format!(
                "{} (path: {})",
                os_status(ok, first[2].as_str().unwrap_or_default()),
                first[0].as_str().unwrap_or_default()
            );
            let api: Vec<u64> = first[5]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let max_api = api.iter().copied().max().unwrap_or(0);
            if api.is_empty() {
                msg.push_str(" [no API versions declared]");
            } else {
                let list: Vec<String> = api.iter().map(u64::to_string).collect();
                msg.push_str(&format!(" [API versions: {}]", list.join(", ")));
            }
            if max_api >= 15 {
                let v = strings(&first[3]);
                if v.is_empty() {
                    msg.push_str(" [no variants]");
                } else {
                    msg.push_str(&format!(" [variants: {}]", v.join(", ")));
                }
            }
            if max_api >= 20 {
                let p: Vec<String> = first[4]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x[0].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if p.is_empty() {
                    msg.push_str(" [no parameters]");
                } else {
                    msg.push_str(&format!(" [parameters: {}]", p.join(", ")));
                }
            }
            msg.push_str(if first[6].as_bool().unwrap_or(true) {
                " [trusted]"
            } else {
                " [untrusted]"
            });
            let hidden: Vec<String> = defs[1..]
                .iter()
                .map(|d| {
                    format!(
                        "    [hidden] path: {}, status: {}",
                        d[0].as_str().unwrap_or_default(),
                        os_status(
                            d[1].as_bool().unwrap_or(false),
                            d[2].as_str().unwrap_or_default()
                        )
                    )
                })
                .collect();
            if ok {
                valid_nodes.push((node.clone(), msg, hidden));
            } else {
                bad_nodes.push((node.clone(), msg, hidden));
            }
        }
        let status = match (valid_nodes.is_empty(), bad_nodes.is_empty()) {
            (false, true) => "valid",
            (true, false) => {
                has_bad = true;
                "invalid"
            }
            _ => {
                has_bad = true;
                "partial valid"
            }
        };
        let mut st = format!("OS: {name} [global status: {status}]");
        if row[4].as_bool().unwrap_or(false) {
            st.push_str(" [hidden]");
        }
        if row[5].as_bool().unwrap_or(false) {
            st.push_str(" [blacklisted]");
        }
        out.push(st);
        if !variants.is_empty() {
            out.push(format!("  Variants: [{}]", variants.join(", ")));
        }
        for group in [&mut valid_nodes, &mut bad_nodes] {
            group.sort_by_key(|(n, _, _)| crate::query::nice_key(n));
            for (node, msg, hidden) in group.iter() {
                out.push(format!("  Node: {node}, status: {msg}"));
                out.extend(hidden.iter().cloned());
            }
        }
        out.push(String::new());
    }
    (out.join("\n"), has_bad)
}

/// `gnt-os info [NAME…]` (rows of [`INFO_FIELDS`]).
pub fn format_info(rows: &[Value], names: &[String]) -> String {
    let mut out = Vec::new();
    let mut left: Vec<String> = names.to_vec();
    let mut total_hvp = Map::new();
    let mut total_osp = Map::new();
    for row in rows {
        let name = row[0].as_str().unwrap_or_default();
        if let Some(m) = row[7].as_object() {
            total_hvp.extend(m.clone());
        }
        if let Some(m) = row[8].as_object() {
            total_osp.extend(m.clone());
        }
        if !names.is_empty() {
            match left.iter().position(|n| n == name) {
                Some(i) => {
                    left.remove(i);
                }
                None => continue,
            }
        }
        out.push(format!("{name}:"));
        out.push(format!("  - valid: {}", py_bool(&row[1])));
        out.push(format!("  - hidden: {}", py_bool(&row[6])));
        out.push(format!("  - blacklisted: {}", py_bool(&row[5])));
        if row[1].as_bool().unwrap_or(false) {
            out.push("  - API versions:".into());
            let mut api: Vec<u64> = row[4]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            api.sort_unstable();
            out.extend(api.iter().map(|v| format!("    - {v}")));
            out.push("  - variants:".into());
            out.extend(strings(&row[2]).iter().map(|v| format!("    - {v}")));
            out.push("  - parameters:".into());
            for p in row[3].as_array().cloned().unwrap_or_default() {
                out.push(format!(
                    "    - {}: {}",
                    p[0].as_str().unwrap_or_default(),
                    p[1].as_str().unwrap_or_default()
                ));
            }
        }
        out.push(format!("  - trusted: {}", py_bool(&row[9])));
        out.push(String::new());
    }
    for name in left {
        if !total_hvp.contains_key(&name) && !total_osp.contains_key(&name) {
            out.push(format!("{name}: "));
        } else {
            let section = |m: &Map<String, Value>| {
                Info::from_json_dict(m.get(&name).unwrap_or(&Value::Object(Map::new())))
            };
            let info = Info::List(vec![Info::Section(vec![(
                name.clone(),
                Info::Section(vec![
                    (
                        "OS-specific hypervisor parameters".into(),
                        section(&total_hvp),
                    ),
                    ("OS parameters".into(), section(&total_osp)),
                ]),
            )])]);
            out.push(info.render());
        }
        out.push(String::new());
    }
    out.join("\n")
}

fn kv_object(text: &str) -> Result<Map<String, Value>, String> {
    let items = parse_keyval(text).map_err(|e| e.to_string())?;
    Ok(items
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                KvValue::Str(s) => Value::String(s),
                KvValue::Bool(b) => Value::Bool(b),
                KvValue::Reset => Value::Null,
            };
            (k, v)
        })
        .collect())
}

fn yes_no(option: &str, v: &Option<String>) -> Result<Option<bool>, String> {
    match v.as_deref() {
        None => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(other) => Err(format!("--{option} takes yes or no, not {other:?}")),
    }
}

/// The `OP_CLUSTER_SET_PARAMS` a `gnt-os modify` stands for (Ganeti's
/// `ModifyOS`), or why there is none.
fn modify_opcode(a: &ModifyArgs) -> Result<Value, String> {
    let os = &a.os;
    let mut op = Map::new();
    op.insert("OP_ID".into(), json!("OP_CLUSTER_SET_PARAMS"));
    let mut any = false;
    if !a.hypervisor_parameters.is_empty() {
        let mut hvs = Map::new();
        for text in &a.hypervisor_parameters {
            match parse_ident_keyval(text).map_err(|e| e.to_string())? {
                IdentKv::Set(hv, items) => {
                    let params: Map<String, Value> = items
                        .into_iter()
                        .map(|(k, v)| (k, v.as_text().map_or(Value::Null, Value::String)))
                        .collect();
                    hvs.insert(hv, Value::Object(params));
                }
                IdentKv::Remove(hv) | IdentKv::Reset(hv) => {
                    return Err(format!(
                        "-H {text:?}: give parameters for hypervisor {hv}, not a removal"
                    ))
                }
            }
        }
        op.insert("os_hvp".into(), json!({ os: hvs }));
        any = true;
    }
    if let Some(t) = &a.os_parameters {
        op.insert("osparams".into(), json!({ os: kv_object(t)? }));
        any = true;
    }
    if let Some(t) = &a.os_parameters_private {
        op.insert(
            "osparams_private_cluster".into(),
            json!({ os: kv_object(t)? }),
        );
        any = true;
    }
    for (option, field) in [("hidden", "hidden_os"), ("blacklisted", "blacklisted_os")] {
        let value = if option == "hidden" {
            &a.hidden
        } else {
            &a.blacklisted
        };
        if let Some(set) = yes_no(option, value)? {
            let action = if set { "add" } else { "remove" };
            op.insert(field.into(), json!([[action, os]]));
            any = true;
        }
    }
    if !any {
        return Err("At least one of OS parameters or hypervisor parameters must be passed".into());
    }
    Ok(Value::Object(op))
}

fn modify(a: ModifyArgs) -> u8 {
    let op = match modify_opcode(&a) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    };
    let mut opts = match opts_with_priority(&a.priority) {
        Ok(o) => o,
        Err(code) => return code,
    };
    opts.submit_only = a.submit;
    opts.print_jobid = a.print_jobid;
    opts.dry_run = a.dry_run;
    let mut client = match super::connect_master(super::MasterSocket::Master) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match submit_or_send(&mut client, vec![op], &opts) {
        Ok(_) => EXIT_SUCCESS,
        Err(e) => report(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_expands_variants() {
        let rows = vec![json!(["deb", ["buster", "wheezy"]]), json!(["noop", []])];
        assert_eq!(
            format_list(&rows, false),
            "Name\ndeb+buster\ndeb+wheezy\nnoop"
        );
        assert_eq!(format_list(&rows, true), "deb+buster\ndeb+wheezy\nnoop");
    }

    #[test]
    fn diagnose_reads_like_ganeti() {
        let rows = vec![
            json!(["deb", true, ["buster"], {
                "node2": [["/srv/ganeti/os/deb", true, "", ["buster"], [["dhcp", "d"]], [15, 20], true],
                          ["/usr/share/ganeti/os/deb", false, "broken", [], [], [], true]],
                "node1": [["/srv/ganeti/os/deb", true, "", ["buster"], [], [10], false]],
            }, false, false]),
            json!(["half", false, [], {"node1": [], "node2": [["/x/half", true, "", [], [], [10], true]]}, true, true]),
        ];
        let (text, bad) = format_diagnose(&rows);
        let want = "\
OS: deb [global status: valid]
  Variants: [buster]
  Node: node1, status: valid (path: /srv/ganeti/os/deb) [API versions: 10] [untrusted]
  Node: node2, status: valid (path: /srv/ganeti/os/deb) [API versions: 15, 20] [variants: buster] [parameters: dhcp] [trusted]
    [hidden] path: /usr/share/ganeti/os/deb, status: invalid - broken

OS: half [global status: partial valid] [hidden] [blacklisted]
  Node: node2, status: valid (path: /x/half) [API versions: 10] [trusted]
  Node: node1, status: OS not found
";
        assert_eq!(text, want);
        assert!(bad);
    }

    #[test]
    fn info_lists_details_and_parameters() {
        let rows = vec![json!([
            "deb", true, ["buster"], [["dhcp", "use DHCP"]], [20, 15], false, false,
            {"deb+buster": {"kvm": {"kernel_path": ""}}}, {"deb+buster": {"dhcp": "no"}}, true
        ])];
        let text = format_info(&rows, &[]);
        let want = "\
deb:
  - valid: True
  - hidden: False
  - blacklisted: False
  - API versions:
    - 15
    - 20
  - variants:
    - buster
  - parameters:
    - dhcp: use DHCP
  - trusted: True
";
        assert_eq!(text, want);
        let text = format_info(&rows, &["deb+buster".to_string(), "ghost".to_string()]);
        assert!(text.contains("- deb+buster:"), "{text}");
        assert!(text.contains("OS parameters:"), "{text}");
        assert!(text.contains("dhcp: no"), "{text}");
        assert!(text.contains("ghost: "), "{text}");
        assert!(!text.contains("deb:\n"), "{text}");
    }

    fn modify_args(args: &[&str]) -> ModifyArgs {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let norm = crate::cli::normalize_argv(&argv, SHORT_WITH_VALUE);
        let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
        ModifyArgs::from_args(&["modify"], &refs).unwrap()
    }

    #[test]
    fn modify_builds_cluster_set_params() {
        let op = modify_opcode(&modify_args(&[
            "-H",
            "kvm:kernel_path=/vmlinuz",
            "-O",
            "dhcp=no,-size",
            "--hidden",
            "yes",
            "--blacklisted",
            "no",
            "deb+buster",
        ]))
        .unwrap();
        assert_eq!(op["OP_ID"], "OP_CLUSTER_SET_PARAMS");
        assert_eq!(op["os_hvp"]["deb+buster"]["kvm"]["kernel_path"], "/vmlinuz");
        assert_eq!(
            op["osparams"],
            json!({"deb+buster": {"dhcp": "no", "size": null}})
        );
        assert_eq!(op["hidden_os"], json!([["add", "deb+buster"]]));
        assert_eq!(op["blacklisted_os"], json!([["remove", "deb+buster"]]));
        let e = modify_opcode(&modify_args(&["deb"])).unwrap_err();
        assert!(e.starts_with("At least one of"), "{e}");
        let e = modify_opcode(&modify_args(&["--hidden", "maybe", "deb"])).unwrap_err();
        assert!(e.contains("maybe"), "{e}");
    }
}
