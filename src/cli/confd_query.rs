//! `gnt-cluster confd-query`: asks the master candidates' confd directly,
//! without masterd, through the [`crate::confd::client`] library (so shell
//! scripts can ask what Ganeti's confd clients ask).
//!
//! `TYPE` is a request name (`node-role-byname`, `cluster-master`, …) or
//! its number; `QUERY` its argument. `--json` prints one JSON object with
//! the status, answer, serial and who answered, for scripts.

use argh::FromArgs;
use serde_json::{json, Value};

use super::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::confd::client::ConfdClient;
use crate::confd::codec::{DictQuery, Query};
use crate::confd::{ReplyStatus, ReqField, RequestType};
use crate::paths::Paths;

#[derive(FromArgs, Debug)]
/// Asks confd on the master candidates (request types: ping,
/// node-role-byname, node-pip-by-instance-ip, cluster-master, node-pip-list,
/// mc-pip-list, instances-ips-list, node-drbd, node-instances,
/// instance-disks, config-query, data-collectors).
#[argh(subcommand, name = "confd-query")]
pub struct ConfdQueryArgs {
    /// the request type, by name or number
    #[argh(positional)]
    pub kind: String,
    /// the argument: a node or instance name, a link, an IP (several
    /// comma-separated for node-pip-by-instance-ip), a config path
    #[argh(positional)]
    pub query: Option<String>,
    /// the NIC link for instance IP queries (default: the cluster's)
    #[argh(option)]
    pub link: Option<String>,
    /// cluster-master: the fields wanted, comma-separated from name, ip,
    /// mnode_pip
    #[argh(option)]
    pub fields: Option<String>,
    /// print one JSON object (status, answer, serial, server, replies,
    /// the serials of all replies)
    #[argh(switch)]
    pub json: bool,
    /// seconds to wait for the candidates' replies (default 2)
    #[argh(option, default = "2.0")]
    pub timeout: f64,
    /// confd port (default: ganeti-confd in /etc/services, else 1814)
    #[argh(option)]
    pub port: Option<u16>,
}

/// Builds the wire query for `kind` from the command line.
pub fn build_query(kind: RequestType, a: &ConfdQueryArgs) -> Result<Query, String> {
    match kind {
        RequestType::NodePipByInstanceIp => {
            let ips = a
                .query
                .as_deref()
                .ok_or("node-pip-by-instance-ip needs an instance IP")?;
            let list: Vec<String> = ips.split(',').map(str::to_string).collect();
            let mut d = DictQuery {
                link: a.link.clone(),
                ..Default::default()
            };
            if list.len() == 1 {
                d.ip = list.into_iter().next();
            } else {
                d.ip_list = list;
            }
            Ok(Query::Dict(d))
        }
        RequestType::ClusterMaster if a.fields.is_some() => {
            let fields = a
                .fields
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(|f| match f.trim() {
                    "name" => Ok(ReqField::Name),
                    "ip" => Ok(ReqField::Ip),
                    "mnode_pip" => Ok(ReqField::MnodePip),
                    other => Err(format!(
                        "unknown cluster-master field {other:?} (name, ip, mnode_pip)"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Query::Dict(DictQuery {
                fields,
                ..Default::default()
            }))
        }
        RequestType::InstancesIpsList => Ok(a
            .query
            .clone()
            .or(a.link.clone())
            .map_or(Query::Empty, Query::Plain)),
        _ => Ok(a.query.clone().map_or(Query::Empty, Query::Plain)),
    }
}

/// Runs the command; returns the exit code.
#[allow(clippy::print_stdout)]
pub fn run(paths: &Paths, a: &ConfdQueryArgs) -> u8 {
    let Some(kind) = RequestType::parse(&a.kind) else {
        eprintln!(
            "Error: unknown confd request type {:?}; known: {}",
            a.kind,
            RequestType::ALL.map(RequestType::cli_name).join(", ")
        );
        return EXIT_FAILURE;
    };
    let query = match build_query(kind, a) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("Error: {e}");
            return EXIT_FAILURE;
        }
    };
    if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 3600.0) {
        eprintln!("Error: --timeout must be between 0 and 3600 seconds");
        return EXIT_FAILURE;
    }
    let mut client = match ConfdClient::from_cluster(paths, a.port) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {}", crate::error::chain(&e));
            return EXIT_FAILURE;
        }
    };
    client.timeout = std::time::Duration::from_secs_f64(a.timeout);
    let out = match client.query(kind, query) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("Error: {}", crate::error::chain(&e));
            return EXIT_FAILURE;
        }
    };
    let ok = out.best.status == ReplyStatus::Ok;
    if a.json {
        println!(
            "{}",
            json!({
                "type": kind.number(),
                "status": out.best.status.number(),
                "answer": out.best.answer,
                "serial": out.best.serial,
                "server": out.from.to_string(),
                "replies": out.replies.len(),
                "serials": out.replies.iter().map(|(_, r)| r.serial).collect::<Vec<_>>(),
                "asked": out.asked,
                "quorum": !out.timed_out,
            })
        );
    } else if ok {
        match &out.best.answer {
            Value::String(s) => println!("{s}"),
            Value::Array(items) if items.iter().all(|v| v.is_string()) => {
                for i in items {
                    println!("{}", i.as_str().unwrap_or_default());
                }
            }
            other => println!("{other}"),
        }
    } else {
        eprintln!(
            "Error: confd answered status {} ({}) with serial {}",
            out.best.status.number(),
            out.best.answer,
            out.best.serial
        );
    }
    if ok {
        EXIT_SUCCESS
    } else {
        EXIT_FAILURE
    }
}
