//! Choosing instances for the multi-instance commands (`startup`,
//! `shutdown`, `reboot`, `reinstall`) and running one job per instance
//! (Ganeti's `_ExpandMultiNames`, `GenericManyOps` and `JobExecutor`).
//!
//! [`expand`] is a pure function over instance and node rows, so the
//! selection rules are tested without a cluster; [`fetch_rows`] reads the
//! rows from masterd with LUXI `Query`.

use super::job::{poll_job, report, JobError, SubmitOpts};
use super::{report_luxi_error, EXIT_FAILURE, EXIT_SUCCESS};
use crate::luxi::client::{Client, LuxiError};
use crate::luxi::Method;
use crate::query::{QueryResponse, ResultStatus};
use serde_json::{json, Value};

/// How the arguments select instances (Ganeti's `_EXPAND_*` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Arguments are instance names (the default).
    Instances,
    /// `--all`: every instance; no arguments.
    Cluster,
    /// `--node`: instances with a named node as primary or secondary.
    NodesBoth,
    /// `--primary`: instances with a named node as primary.
    NodesPrimary,
    /// `--secondary`: instances with a named node as secondary.
    NodesSecondary,
    /// `--node-tags`: as `--node`, nodes chosen by tag.
    NodeTagsBoth,
    /// `--pri-node-tags`.
    NodeTagsPrimary,
    /// `--sec-node-tags`.
    NodeTagsSecondary,
    /// `--tags`: instances carrying one of the tags.
    InstanceTags,
}

impl Selection {
    /// Whether the command works on several instances by nature (and so
    /// asks for confirmation even for one).
    pub fn is_multi(self) -> bool {
        self != Selection::Instances
    }

    fn needs_nodes(self) -> bool {
        !matches!(
            self,
            Selection::Instances | Selection::Cluster | Selection::InstanceTags
        )
    }
}

/// The selector switches of a command, at most one of which may be given.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelectorFlags {
    /// `--instance`.
    pub instance: bool,
    /// `--all`.
    pub all: bool,
    /// `--node`.
    pub node: bool,
    /// `--primary`.
    pub primary: bool,
    /// `--secondary`.
    pub secondary: bool,
    /// `--node-tags`.
    pub node_tags: bool,
    /// `--pri-node-tags`.
    pub pri_node_tags: bool,
    /// `--sec-node-tags`.
    pub sec_node_tags: bool,
    /// `--tags`.
    pub tags: bool,
}

impl SelectorFlags {
    /// The one selection mode given (Ganeti keeps the last one; argh does
    /// not keep the order, so more than one is refused).
    pub fn selection(&self) -> Result<Selection, String> {
        let all = [
            (self.instance, Selection::Instances, "--instance"),
            (self.all, Selection::Cluster, "--all"),
            (self.node, Selection::NodesBoth, "--node"),
            (self.primary, Selection::NodesPrimary, "--primary"),
            (self.secondary, Selection::NodesSecondary, "--secondary"),
            (self.node_tags, Selection::NodeTagsBoth, "--node-tags"),
            (
                self.pri_node_tags,
                Selection::NodeTagsPrimary,
                "--pri-node-tags",
            ),
            (
                self.sec_node_tags,
                Selection::NodeTagsSecondary,
                "--sec-node-tags",
            ),
            (self.tags, Selection::InstanceTags, "--tags"),
        ];
        let given: Vec<_> = all.iter().filter(|(on, _, _)| *on).collect();
        match given.as_slice() {
            [] => Ok(Selection::Instances),
            [(_, s, _)] => Ok(*s),
            many => Err(format!(
                "Only one of the selection options may be given, not {}",
                many.iter()
                    .map(|(_, _, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// One instance as the selection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    /// Full name.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
}

/// One node as the selection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// Full name.
    pub name: String,
    /// Instances with this node as primary.
    pub pinst: Vec<String>,
    /// Instances with this node as secondary.
    pub sinst: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
}

/// Finds `given` among `names`: the exact name, or the one name of which
/// it is the first dot-separated part(s), as Ganeti expands short names.
fn resolve<'a>(given: &str, names: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    let mut prefix_match = None;
    for n in names {
        if n == given {
            return Some(n);
        }
        if n.starts_with(given) && n[given.len()..].starts_with('.') {
            if prefix_match.is_some() {
                return None;
            }
            prefix_match = Some(n);
        }
    }
    prefix_match
}

/// The instances `names` select under `mode`, in Ganeti's order.
pub fn expand(
    mode: Selection,
    names: &[String],
    instances: &[InstanceRow],
    nodes: &[NodeRow],
) -> Result<Vec<String>, String> {
    let has_tag = |tags: &[String]| tags.iter().any(|t| names.contains(t));
    let from_nodes = |chosen: Vec<&NodeRow>, pri: bool, sec: bool| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if pri {
            out.extend(chosen.iter().flat_map(|n| n.pinst.iter().cloned()));
        }
        if sec {
            out.extend(chosen.iter().flat_map(|n| n.sinst.iter().cloned()));
        }
        out
    };
    let (pri, sec) = match mode {
        Selection::NodesBoth | Selection::NodeTagsBoth => (true, true),
        Selection::NodesPrimary | Selection::NodeTagsPrimary => (true, false),
        _ => (false, true),
    };
    match mode {
        Selection::Cluster => {
            if !names.is_empty() {
                return Err("Cluster filter mode takes no arguments".into());
            }
            Ok(instances.iter().map(|i| i.name.clone()).collect())
        }
        Selection::Instances => {
            if names.is_empty() {
                return Err("No instance names passed".into());
            }
            names
                .iter()
                .map(|n| {
                    resolve(n, instances.iter().map(|i| &i.name))
                        .cloned()
                        .ok_or_else(|| format!("Instance '{n}' not known"))
                })
                .collect()
        }
        Selection::InstanceTags => {
            if names.is_empty() {
                return Err("No instance tags passed".into());
            }
            Ok(instances
                .iter()
                .filter(|i| has_tag(&i.tags))
                .map(|i| i.name.clone())
                .collect())
        }
        Selection::NodesBoth | Selection::NodesPrimary | Selection::NodesSecondary => {
            if names.is_empty() {
                return Err("No node names passed".into());
            }
            let chosen = names
                .iter()
                .map(|n| {
                    let name = resolve(n, nodes.iter().map(|x| &x.name))
                        .ok_or_else(|| format!("Node '{n}' not known"))?;
                    nodes
                        .iter()
                        .find(|x| &x.name == name)
                        .ok_or_else(|| format!("Node '{n}' not known"))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(from_nodes(chosen, pri, sec))
        }
        Selection::NodeTagsBoth | Selection::NodeTagsPrimary | Selection::NodeTagsSecondary => {
            if names.is_empty() {
                return Err("No node tags passed".into());
            }
            let chosen = nodes.iter().filter(|n| has_tag(&n.tags)).collect();
            Ok(from_nodes(chosen, pri, sec))
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn query(client: &mut Client, resource: &str, fields: &[&str]) -> Result<Vec<Vec<Value>>, u8> {
    let answer = client
        .call(Method::Query, json!([resource, fields, null]))
        .map_err(|e| report_luxi_error(&e))?;
    let r: QueryResponse = serde_json::from_value(answer).map_err(|e| {
        eprintln!("Malformed answer to Query from the master daemon: {e}");
        EXIT_FAILURE
    })?;
    Ok(r.data
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|c| {
                    if c.status == ResultStatus::Normal {
                        c.value
                    } else {
                        Value::Null
                    }
                })
                .collect()
        })
        .collect())
}

/// Reads the rows [`expand`] needs for `mode` from masterd.
pub fn fetch_rows(
    client: &mut Client,
    mode: Selection,
) -> Result<(Vec<InstanceRow>, Vec<NodeRow>), u8> {
    let instances = query(client, "instance", &["name", "tags"])?
        .into_iter()
        .map(|r| InstanceRow {
            name: r.first().and_then(Value::as_str).unwrap_or_default().into(),
            tags: r.get(1).map(strings).unwrap_or_default(),
        })
        .collect();
    let nodes = if mode.needs_nodes() {
        query(
            client,
            "node",
            &["name", "pinst_list", "sinst_list", "tags"],
        )?
        .into_iter()
        .map(|r| NodeRow {
            name: r.first().and_then(Value::as_str).unwrap_or_default().into(),
            pinst: r.get(1).map(strings).unwrap_or_default(),
            sinst: r.get(2).map(strings).unwrap_or_default(),
            tags: r.get(3).map(strings).unwrap_or_default(),
        })
        .collect()
    } else {
        Vec::new()
    };
    Ok((instances, nodes))
}

/// Ganeti's `ConfirmOperation` question for `names`. (Ganeti offers a
/// "view" choice above 20 names instead of listing them; we always list.)
pub fn confirmation_text(names: &[String], operation: &str, extra: &str) -> String {
    let mut q = format!(
        "The {operation} will operate on {} instances.\n{extra}Do you want to continue?\n\
         Affected instances:",
        names.len()
    );
    for n in names {
        q.push_str("\n  ");
        q.push_str(n);
    }
    q
}

/// Selects, confirms and runs `build(name)` as one job per instance,
/// waiting for all unless `--submit`; returns the exit code.
pub fn run_many(
    operation: &str,
    mode: Selection,
    names: &[String],
    force_multiple: bool,
    opts: &SubmitOpts,
    build: impl Fn(&str) -> Value,
) -> u8 {
    let mut client = match super::connect_master(super::MasterSocket::Master) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (instances, nodes) = match fetch_rows(&mut client, mode) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let selected = match expand(mode, names, &instances, &nodes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Failure: prerequisites not met for this operation:\n{e}");
            return EXIT_FAILURE;
        }
    };
    if selected.is_empty() {
        if mode == Selection::Cluster {
            #[allow(clippy::print_stdout)]
            {
                println!("Cluster is empty, no instances to {operation}");
            }
            return EXIT_SUCCESS;
        }
        eprintln!("Failure: prerequisites not met for this operation:\nSelection filter does not match any instances");
        return EXIT_FAILURE;
    }
    let multi = mode.is_multi() || selected.len() > 1;
    if multi
        && !force_multiple
        && !super::prompt::ask_user(&confirmation_text(&selected, operation, ""))
    {
        return EXIT_FAILURE;
    }
    let jobs: Vec<(String, Value)> = selected.iter().map(|n| (n.clone(), build(n))).collect();
    run_jobs(&mut client, jobs, multi, opts)
}

/// Submits one job per `(name, op)` and waits for them in order, as
/// Ganeti's `JobExecutor`; returns the exit code (failure if any failed).
#[allow(clippy::print_stdout)]
pub fn run_jobs(
    client: &mut Client,
    jobs: Vec<(String, Value)>,
    verbose: bool,
    opts: &SubmitOpts,
) -> u8 {
    let mut submitted = Vec::new();
    let mut ok = true;
    for (name, op) in jobs {
        let mut ops = vec![op];
        opts.apply(&mut ops);
        match client.call(Method::SubmitJob, json!([ops])) {
            Ok(id) => match id
                .as_u64()
                .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
            {
                Some(id) => submitted.push((id, name)),
                None => {
                    eprintln!("Failed to submit job for {name}: SubmitJob returned {id}");
                    ok = false;
                }
            },
            Err(LuxiError::Failed(f)) => {
                eprintln!("Failed to submit job for {name}: {}", f.message());
                ok = false;
            }
            Err(e) => return report_luxi_error(&e),
        }
    }
    if opts.print_jobid {
        for (id, _) in &submitted {
            println!("{id}");
        }
    }
    if opts.submit_only {
        for (id, name) in &submitted {
            println!("{id}: {name}");
        }
        return if ok { EXIT_SUCCESS } else { EXIT_FAILURE };
    }
    if verbose && !submitted.is_empty() {
        let ids: Vec<String> = submitted.iter().map(|(id, _)| id.to_string()).collect();
        println!("Submitted jobs {}", ids.join(", "));
    }
    for (id, name) in submitted {
        println!("Waiting for job {id} for {name} ...");
        match poll_job(client, id, &mut |line| println!("{line}")) {
            Ok(_) => {}
            Err(JobError::Lost(_)) => {
                eprintln!("Job {id} for {name} has been archived, cannot check its result");
                ok = false;
            }
            Err(e) => {
                eprintln!("Job {id} for {name} has failed:");
                report(&e);
                ok = false;
            }
        }
    }
    if ok {
        EXIT_SUCCESS
    } else {
        EXIT_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn fixture() -> (Vec<InstanceRow>, Vec<NodeRow>) {
        let i = |n: &str, t: &[&str]| InstanceRow {
            name: n.into(),
            tags: s(t),
        };
        let n = |name: &str, p: &[&str], sec: &[&str], t: &[&str]| NodeRow {
            name: name.into(),
            pinst: s(p),
            sinst: s(sec),
            tags: s(t),
        };
        (
            vec![
                i("web1.example.com", &["web"]),
                i("web2.example.com", &["web", "prod"]),
                i("db1.example.com", &["prod"]),
            ],
            vec![
                n(
                    "node1.example.com",
                    &["web1.example.com", "db1.example.com"],
                    &["web2.example.com"],
                    &["rack1"],
                ),
                n(
                    "node2.example.com",
                    &["web2.example.com"],
                    &["db1.example.com"],
                    &["rack2"],
                ),
            ],
        )
    }

    #[test]
    fn selection_modes() {
        let (i, n) = fixture();
        let e = |m, names: &[&str]| expand(m, &s(names), &i, &n);
        assert_eq!(e(Selection::Cluster, &[]).unwrap().len(), 3);
        assert!(e(Selection::Cluster, &["x"]).is_err());
        assert_eq!(
            e(Selection::Instances, &["web2", "db1.example.com"]).unwrap(),
            s(&["web2.example.com", "db1.example.com"])
        );
        assert_eq!(
            e(Selection::Instances, &["web9"]).unwrap_err(),
            "Instance 'web9' not known"
        );
        assert_eq!(
            e(Selection::Instances, &[]).unwrap_err(),
            "No instance names passed"
        );
        assert_eq!(
            e(Selection::NodesPrimary, &["node1"]).unwrap(),
            s(&["web1.example.com", "db1.example.com"])
        );
        assert_eq!(
            e(Selection::NodesSecondary, &["node1"]).unwrap(),
            s(&["web2.example.com"])
        );
        assert_eq!(
            e(Selection::NodesBoth, &["node2"]).unwrap(),
            s(&["web2.example.com", "db1.example.com"])
        );
        assert_eq!(
            e(Selection::NodesBoth, &["node7"]).unwrap_err(),
            "Node 'node7' not known"
        );
        assert_eq!(
            e(Selection::InstanceTags, &["prod"]).unwrap(),
            s(&["web2.example.com", "db1.example.com"])
        );
        assert_eq!(
            e(Selection::NodeTagsPrimary, &["rack2"]).unwrap(),
            s(&["web2.example.com"])
        );
        assert!(e(Selection::NodeTagsBoth, &["rack9"]).unwrap().is_empty());
        assert_eq!(
            e(Selection::NodeTagsBoth, &[]).unwrap_err(),
            "No node tags passed"
        );
    }

    #[test]
    fn short_names_must_be_unambiguous() {
        let rows = vec![
            InstanceRow {
                name: "a.one".into(),
                tags: vec![],
            },
            InstanceRow {
                name: "a.two".into(),
                tags: vec![],
            },
        ];
        assert!(expand(Selection::Instances, &s(&["a"]), &rows, &[]).is_err());
        assert_eq!(
            expand(Selection::Instances, &s(&["a.two"]), &rows, &[]).unwrap(),
            s(&["a.two"])
        );
    }

    #[test]
    fn selector_flags() {
        assert_eq!(
            SelectorFlags::default().selection(),
            Ok(Selection::Instances)
        );
        let f = SelectorFlags {
            primary: true,
            ..Default::default()
        };
        assert_eq!(f.selection(), Ok(Selection::NodesPrimary));
        assert!(f.selection().unwrap().is_multi());
        let both = SelectorFlags {
            all: true,
            tags: true,
            ..Default::default()
        };
        assert!(both.selection().unwrap_err().contains("--all, --tags"));
    }

    #[test]
    fn confirmation_lists_the_instances() {
        assert_eq!(
            confirmation_text(&s(&["a", "b"]), "shutdown", ""),
            "The shutdown will operate on 2 instances.\nDo you want to continue?\n\
             Affected instances:\n  a\n  b"
        );
    }
}
