//! Choosing nodes and calling them over node RPC, for the commands that
//! act on nodes directly instead of through a job: `gnt-cluster command`,
//! `copyfile`, `activate-master-ip`, `deactivate-master-ip`.
//!
//! Which nodes exist comes from masterd (LUXI `Query`), as Ganeti's
//! `GetOnlineNodes` does; the calls themselves go straight to each node's
//! `ganeti-noded` with the cluster certificate ([`crate::rpc::client`]),
//! where Ganeti used SSH.

use super::{report_luxi_error, EXIT_FAILURE};
use crate::luxi::client::Client;
use crate::luxi::Method;
use crate::paths::Paths;
use crate::query::filter::{make_filter, FilterArgs, NameKind};
use crate::query::{QueryResponse, ResultStatus};
use crate::rpc::client::RpcClient;
use crate::rpc::proto::CommandOutput;
use crate::rpc::{NodeResult, Target};
use serde_json::{json, Value};

/// The facts about a node these commands need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// The node's name.
    pub name: String,
    /// Its primary IP.
    pub primary_ip: String,
    /// Its secondary IP.
    pub secondary_ip: String,
    /// Its group's name.
    pub group: String,
    /// Marked offline.
    pub offline: bool,
    /// The master node.
    pub master: bool,
}

impl NodeRow {
    /// As an RPC target (on the primary or, with `use_secondary`, the
    /// replication network).
    pub fn target(&self, network: Network) -> Target {
        Target {
            name: self.name.clone(),
            address: match network {
                Network::Primary => self.primary_ip.clone(),
                Network::Replication => self.secondary_ip.clone(),
            },
            offline: self.offline,
        }
    }
}

/// Which of a node's addresses to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The primary IP (the default).
    Primary,
    /// The secondary IP (`--use-replication-network`).
    Replication,
}

/// The Query fields [`NodeRow`] is built from.
pub const NODE_FIELDS: &[&str] = &["name", "pip", "sip", "group", "offline", "master"];

/// Asks masterd for the nodes named in `names` (all when empty).
pub fn query_nodes(client: &mut Client, names: &[String]) -> Result<Vec<NodeRow>, u8> {
    let filter = make_filter(names, FilterArgs::Detect, "name", NameKind::Text).map_err(|e| {
        eprintln!("Error: {}", crate::error::chain(&e));
        EXIT_FAILURE
    })?;
    let answer = client
        .call(Method::Query, json!(["node", NODE_FIELDS, filter]))
        .map_err(|e| report_luxi_error(&e))?;
    let response: QueryResponse = serde_json::from_value(answer).map_err(|e| {
        eprintln!("Malformed answer to Query from the master daemon: {e}");
        EXIT_FAILURE
    })?;
    Ok(rows_from_response(&response))
}

/// Node rows from a Query answer over [`NODE_FIELDS`].
pub fn rows_from_response(response: &QueryResponse) -> Vec<NodeRow> {
    response
        .data
        .iter()
        .map(|row| {
            let cell = |i: usize| {
                row.get(i)
                    .filter(|c| c.status == ResultStatus::Normal)
                    .map(|c| c.value.clone())
                    .unwrap_or(Value::Null)
            };
            let text = |i: usize| cell(i).as_str().unwrap_or_default().to_string();
            NodeRow {
                name: text(0),
                primary_ip: text(1),
                secondary_ip: text(2),
                group: text(3),
                offline: cell(4).as_bool().unwrap_or(false),
                master: cell(5).as_bool().unwrap_or(false),
            }
        })
        .collect()
}

/// Ganeti's `GetOnlineNodes`: the named nodes (all when none are named),
/// only those of `group` when given, without offline nodes (they are
/// reported on stderr as skipped, as Ganeti does). Unknown names are an
/// error naming them.
pub fn select_online(
    rows: &[NodeRow],
    names: &[String],
    group: Option<&str>,
) -> Result<Vec<NodeRow>, String> {
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !rows.iter().any(|r| &r.name == *n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!("Unknown node(s): {}", missing.join(", ")));
    }
    let chosen: Vec<NodeRow> = rows
        .iter()
        .filter(|r| names.is_empty() || names.contains(&r.name))
        .filter(|r| group.is_none_or(|g| r.group == g))
        .cloned()
        .collect();
    let offline: Vec<&str> = chosen
        .iter()
        .filter(|r| r.offline)
        .map(|r| r.name.as_str())
        .collect();
    if !offline.is_empty() {
        eprintln!("Note: skipping offline node(s): {}", offline.join(", "));
    }
    Ok(chosen.into_iter().filter(|r| !r.offline).collect())
}

/// The RPC client every command uses: the cluster certificate of this
/// node, noded's port.
pub fn rpc_client(paths: &Paths) -> Result<RpcClient, u8> {
    RpcClient::new(&paths.noded_cert(), crate::net::noded_port(paths)).map_err(|e| {
        eprintln!("Cannot prepare node RPC: {}", crate::error::chain(&e));
        EXIT_FAILURE
    })
}

/// One node's block of `gnt-cluster command` output (Ganeti's layout),
/// and whether the command succeeded there.
pub fn format_command_result(
    node: &str,
    result: &NodeResult,
    show_machine_names: bool,
) -> (String, bool) {
    let (output, code, ok) = match result {
        Ok(v) => match serde_json::from_value::<CommandOutput>(v.clone()) {
            Ok(o) => (o.output, o.exit_code.to_string(), o.exit_code == 0),
            Err(e) => (format!("malformed answer: {e}"), "None".into(), false),
        },
        Err(e) => (crate::error::chain(e), "None".into(), false),
    };
    let mut text = String::from("------------------------------------------------\n");
    if show_machine_names {
        for line in output.lines() {
            text.push_str(&format!("{node}: {line}\n"));
        }
    } else {
        text.push_str(&format!("node: {node}\n{output}\n"));
    }
    text.push_str(&format!("return code = {code}"));
    (text, ok)
}

/// Puts the master last, as Ganeti does, so a command that disturbs the
/// master (a reboot) runs there after everywhere else.
pub fn master_last(mut nodes: Vec<NodeRow>) -> Vec<NodeRow> {
    nodes.sort_by_key(|n| n.master);
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::RpcError;

    fn row(name: &str, group: &str, offline: bool, master: bool) -> NodeRow {
        NodeRow {
            name: name.into(),
            primary_ip: format!("ip-{name}"),
            secondary_ip: format!("sip-{name}"),
            group: group.into(),
            offline,
            master,
        }
    }

    fn names(v: &[NodeRow]) -> Vec<&str> {
        v.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn selects_online_nodes_by_name_and_group() {
        let rows = vec![
            row("a", "default", false, true),
            row("b", "default", true, false),
            row("c", "other", false, false),
        ];
        assert_eq!(names(&select_online(&rows, &[], None).unwrap()), ["a", "c"]);
        assert_eq!(
            names(&select_online(&rows, &[], Some("other")).unwrap()),
            ["c"]
        );
        assert_eq!(
            names(&select_online(&rows, &["b".into(), "c".into()], None).unwrap()),
            ["c"]
        );
        assert!(select_online(&rows, &["zz".into()], None)
            .unwrap_err()
            .contains("zz"));
        assert_eq!(names(&master_last(rows.clone())), ["b", "c", "a"]);
        assert_eq!(rows[1].target(Network::Replication).address, "sip-b");
        assert!(rows[1].target(Network::Primary).offline);
    }

    #[test]
    fn command_output_reads_like_ganeti() {
        let ok: NodeResult = Ok(json!({"exit_code": 0, "output": "hello"}));
        let (text, good) = format_command_result("node1", &ok, false);
        assert!(good);
        assert_eq!(
            text,
            "------------------------------------------------\nnode: node1\nhello\nreturn code = 0"
        );
        let (text, _) =
            format_command_result("n2", &Ok(json!({"exit_code": 3, "output": "x\ny"})), true);
        assert_eq!(
            text,
            "------------------------------------------------\nn2: x\nn2: y\nreturn code = 3"
        );
        let down: NodeResult = Err(RpcError::Timeout {
            node: "n3".into(),
            secs: 10.0,
        });
        let (text, good) = format_command_result("n3", &down, false);
        assert!(!good);
        assert!(text.contains("no answer within"));
        assert!(text.ends_with("return code = None"));
    }
}
