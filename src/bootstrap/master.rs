//! The master role: who is master, and moving the role to another node.
//!
//! Two callers, both without a running masterd to ask:
//! - `gnt-cluster master-failover`, run on a master candidate, moves the
//!   role to that node ([`master_failover`], Ganeti's
//!   `bootstrap.MasterFailover` and `MajorityHealthy`);
//! - `ganeti-masterd` at start-up checks that the other nodes agree it is
//!   the master ([`confirm_master_role`], Ganeti's `CheckAgreement`).
//!
//! Both gather the nodes' votes with the `master_info` RPC (each node
//! answers with its `ssconf_master_node` and the serial of its config copy)
//! and decide with pure functions ([`failover_verdict`],
//! [`startup_verdict`]) so the rules are tested on vote lists alone.

use super::BootstrapError;
use crate::config::objects::{ConfigData, Node};
use crate::config::store::{load_file, ConfigStore, CONFIG_FILE_MODE};
use crate::paths::Paths;
use crate::rpc::proto::{self, DaemonsArgs, FileUpload, MasterInfo, MasterIpArgs, UploadFilesArgs};
use crate::rpc::{NodeRpc, Target, DEFAULT_TIMEOUT};
use crate::sys::cmd::Runner;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long one vote may take; a dead node must not stall the election.
pub const VOTE_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times masterd asks for votes when too few nodes answer.
pub const STARTUP_VOTE_ATTEMPTS: u32 = 5;
/// The wait between two such attempts (about 10 s in all, as Ganeti).
pub const STARTUP_VOTE_INTERVAL: Duration = Duration::from_millis(2500);
/// The daemons the old master is asked to stop.
pub const MASTER_DAEMONS: &[&str] = &["ganeti-masterd", "ganeti-rapi"];

/// The answers of one vote: the nodes asked, and what each answering
/// node said (nodes that failed to answer are only counted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Votes {
    /// How many nodes were asked.
    pub asked: usize,
    /// The answers, one per node that answered.
    pub answers: Vec<MasterInfo>,
    /// The nodes that did not answer, with why.
    pub silent: Vec<(String, String)>,
}

impl Votes {
    /// Votes per named master, highest first (ties by name); nodes that
    /// name no master abstain.
    pub fn tally(&self) -> Vec<(String, usize)> {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &self.answers {
            if let Some(m) = a.master.as_deref().filter(|m| !m.is_empty()) {
                *count.entry(m).or_default() += 1;
            }
        }
        let mut v: Vec<(String, usize)> =
            count.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// Asks `targets` for their vote, all at once.
pub fn gather_votes(rpc: &dyn NodeRpc, targets: &[Target], timeout: Duration) -> Votes {
    let results = rpc.call(
        proto::MASTER_INFO,
        targets,
        &Value::Object(Default::default()),
        timeout,
    );
    let mut votes = Votes {
        asked: targets.len(),
        ..Votes::default()
    };
    for (node, r) in results {
        match r.map(serde_json::from_value::<MasterInfo>) {
            Ok(Ok(info)) => votes.answers.push(info),
            Ok(Err(e)) => votes
                .silent
                .push((node, format!("malformed master_info answer: {e}"))),
            Err(e) => votes.silent.push((node, crate::error::chain(&e))),
        }
    }
    votes
}

/// What masterd concludes from the other nodes' votes at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupVerdict {
    /// No other node, or no majority of the answering ones against us.
    Confirmed,
    /// Fewer than half of the other nodes answered; ask again.
    TooFewAnswers {
        /// Nodes that answered.
        answered: usize,
        /// Nodes asked.
        asked: usize,
    },
    /// A majority of the answering nodes names another master.
    NotMaster {
        /// The node most of them name.
        voted: String,
        /// Votes against us.
        against: usize,
        /// Nodes that answered.
        answered: usize,
    },
}

/// Decides whether `me` may start as master from the other nodes' votes
/// (Ganeti's `CheckAgreement`: more answers than silences, and the
/// answering majority must not name someone else).
pub fn startup_verdict(me: &str, votes: &Votes) -> StartupVerdict {
    if votes.asked == 0 {
        return StartupVerdict::Confirmed;
    }
    let answered = votes.answers.len();
    if 2 * answered < votes.asked {
        return StartupVerdict::TooFewAnswers {
            answered,
            asked: votes.asked,
        };
    }
    let against: usize = votes
        .answers
        .iter()
        .filter(|a| {
            a.master
                .as_deref()
                .is_some_and(|m| !m.is_empty() && m != me)
        })
        .count();
    if 2 * against > answered {
        let voted = votes
            .tally()
            .into_iter()
            .find(|(m, _)| m != me)
            .map(|(m, _)| m)
            .unwrap_or_default();
        return StartupVerdict::NotMaster {
            voted,
            against,
            answered,
        };
    }
    StartupVerdict::Confirmed
}

/// The other nodes of `config` as RPC targets (offline ones marked).
pub fn other_nodes(config: &ConfigData, me: &str) -> Vec<Target> {
    config
        .nodes
        .values()
        .filter(|n| n.name.as_str() != me)
        .map(node_target)
        .collect()
}

fn node_target(n: &Node) -> Target {
    Target {
        name: n.name.to_string(),
        address: n.primary_ip.clone(),
        offline: n.offline,
    }
}

/// Masterd's start-up check: asks the other nodes whom they think the
/// master is, up to [`STARTUP_VOTE_ATTEMPTS`] times while too few answer
/// (calling `wait` between attempts). Returns a warning to log when it
/// gives up waiting and starts anyway, as Ganeti does; refuses when the
/// majority names another node.
pub fn confirm_master_role(
    rpc: &dyn NodeRpc,
    config: &ConfigData,
    me: &str,
    wait: &mut dyn FnMut(Duration),
) -> Result<Option<String>, BootstrapError> {
    let targets = other_nodes(config, me);
    let mut attempt = 1;
    loop {
        let votes = gather_votes(rpc, &targets, VOTE_TIMEOUT);
        match startup_verdict(me, &votes) {
            StartupVerdict::Confirmed => return Ok(None),
            StartupVerdict::NotMaster {
                voted,
                against,
                answered,
            } => {
                return Err(BootstrapError::State(format!(
                    "this node is not the master according to the majority: \
                     {against} of {answered} answering nodes name {voted}; \
                     use --no-voting --yes-do-it only if you are sure"
                )))
            }
            StartupVerdict::TooFewAnswers { answered, asked } => {
                if attempt >= STARTUP_VOTE_ATTEMPTS {
                    return Ok(Some(format!(
                        "Cluster inconsistent, most nodes did not answer the vote \
                         ({answered} of {asked} after {attempt} attempts); starting anyway"
                    )));
                }
                attempt += 1;
                wait(STARTUP_VOTE_INTERVAL);
            }
        }
    }
}

/// Why `master-failover` refuses to go on, before anything changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverRefusal {
    /// Fewer than a majority of all nodes answered.
    Inconsistent {
        /// Nodes that answered.
        answered: usize,
        /// All nodes.
        total: usize,
        /// Nodes that did not answer.
        silent: Vec<String>,
    },
    /// The nodes name another master than our config does.
    WrongMaster {
        /// The master in our config.
        ours: String,
        /// The master most nodes name.
        voted: String,
    },
    /// A candidate holds a newer config than ours.
    NewerConfig {
        /// The node.
        node: String,
        /// Its serial.
        serial: u64,
        /// Ours.
        ours: u64,
    },
}

impl std::fmt::Display for FailoverRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailoverRefusal::Inconsistent {
                answered,
                total,
                silent,
            } => write!(
                f,
                "Cluster is inconsistent, most nodes did not respond ({answered} of {total} \
                 answered). Master-failover with voting is only possible if the majority of \
                 nodes are still healthy; use the --no-voting option after ensuring by other \
                 means that you won't end up in a dual-master scenario. Unhealthy nodes: {}",
                silent.join(", ")
            ),
            FailoverRefusal::WrongMaster { ours, voted } => write!(
                f,
                "I have a wrong configuration, I believe the master is {ours} but the other \
                 nodes voted {voted}. Please resync the configuration of this node."
            ),
            FailoverRefusal::NewerConfig { node, serial, ours } => write!(
                f,
                "Node {node} has a newer configuration (serial {serial}) than this node \
                 ({ours}); refusing to take over with an outdated configuration. Please \
                 resync the configuration of this node or fail over to {node}."
            ),
        }
    }
}

/// Decides whether a voting failover may go on: a majority of all
/// `total` nodes answered, they agree with our idea of the old master,
/// and no answering master candidate has a newer config than `my_serial`.
pub fn failover_verdict(
    votes: &Votes,
    total: usize,
    old_master: &str,
    my_serial: u64,
    candidates: &[String],
) -> Result<(), FailoverRefusal> {
    let answered = votes.answers.len();
    if 2 * answered <= total {
        return Err(FailoverRefusal::Inconsistent {
            answered,
            total,
            silent: votes.silent.iter().map(|(n, _)| n.clone()).collect(),
        });
    }
    if let Some((voted, _)) = votes.tally().into_iter().next() {
        if voted != old_master {
            return Err(FailoverRefusal::WrongMaster {
                ours: old_master.to_string(),
                voted,
            });
        }
    }
    let newest = votes
        .answers
        .iter()
        .filter(|a| candidates.contains(&a.name))
        .filter_map(|a| a.config_serial.map(|s| (s, &a.name)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    if let Some((serial, node)) = newest {
        if serial > my_serial {
            return Err(FailoverRefusal::NewerConfig {
                node: node.clone(),
                serial,
                ours: my_serial,
            });
        }
    }
    Ok(())
}

/// Whether a failover asks the other nodes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voting {
    /// Ask every node (the default).
    Vote,
    /// Skip the vote (`--no-voting`; the caller has the confirmation).
    Skip,
}

/// What a finished failover reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailoverReport {
    /// The master before.
    pub old_master: String,
    /// This node.
    pub new_master: String,
    /// Steps that failed without stopping the failover (Ganeti's warnings).
    pub warnings: Vec<String>,
    /// Whether masterd was started here (Ganeti exits 1 when not).
    pub master_started: bool,
}

fn state(msg: String) -> BootstrapError {
    BootstrapError::State(msg)
}

/// Production path of a file under `paths`, as the nodes expect it.
fn production_path(paths: &Paths, local: &std::path::Path) -> String {
    paths
        .strip_root(local)
        .unwrap_or_else(|| local.to_path_buf())
        .display()
        .to_string()
}

/// The master IP parameters of the cluster, for the `master_ip` call.
pub fn master_ip_args(config: &ConfigData, action: &str) -> MasterIpArgs {
    let cl = &config.cluster;
    let family = if cl.master_ip.contains(':') { 6 } else { 4 };
    MasterIpArgs {
        action: action.to_string(),
        ip: cl.master_ip.clone(),
        netmask: u8::try_from(cl.master_netmask).unwrap_or(u8::MAX),
        netdev: cl.master_netdev.clone(),
        family,
        external_script: cl.use_external_mip_script,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Moves the master role to this node (`gnt-cluster master-failover`).
/// Runs where masterd is not running; reads and writes the local
/// `config.data` directly, as Ganeti's bootstrap does.
pub fn master_failover(
    paths: &Paths,
    rpc: &dyn NodeRpc,
    runner: &dyn Runner,
    voting: Voting,
) -> Result<FailoverReport, BootstrapError> {
    let me = paths.hostname();
    if !paths.config_file().exists() {
        return Err(state(format!(
            "This node ({me}) is not a master candidate: it holds no copy of the cluster \
             configuration ({} is missing); only master candidates can become master",
            paths.config_file().display()
        )));
    }
    let config = load_file(&paths.config_file()).map_err(BootstrapError::Config)?;
    let old_master = config
        .master_node()
        .map(|n| n.name.to_string())
        .unwrap_or_default();
    if old_master == me {
        return Err(BootstrapError::Invalid(format!(
            "This commands must be run on the node where you want the new master to be. \
             {me} is already the master"
        )));
    }
    let Some((my_uuid, my_node)) = config.node_by_name(&me) else {
        return Err(state(format!(
            "This node ({me}) is not in the cluster configuration"
        )));
    };
    let my_uuid = my_uuid.clone();
    let mut candidates: Vec<String> = config
        .nodes
        .values()
        .filter(|n| n.master_candidate)
        .map(|n| n.name.to_string())
        .collect();
    candidates.sort();
    if !my_node.master_candidate {
        let others: Vec<&str> = candidates
            .iter()
            .map(String::as_str)
            .filter(|n| *n != old_master)
            .collect();
        return Err(state(format!(
            "This node ({me}) is not among the nodes marked as master candidates. Only these \
             nodes can become masters. Current list of master candidates is:\n{}",
            others.join("\n")
        )));
    }
    if voting == Voting::Vote {
        let all: Vec<Target> = config.nodes.values().map(node_target).collect();
        let votes = gather_votes(rpc, &all, VOTE_TIMEOUT);
        failover_verdict(
            &votes,
            all.len(),
            &old_master,
            config.serial_no,
            &candidates,
        )
        .map_err(|r| state(r.to_string()))?;
    }
    let mut report = FailoverReport {
        old_master: old_master.clone(),
        new_master: me.clone(),
        warnings: Vec::new(),
        master_started: true,
    };
    log::info!("master failover: old_master={old_master} new_master={me}");

    // The old master gives up the role first, when it can still be asked.
    if let Some(old) = config.master_node() {
        let target = node_target(old);
        let ip_args = to_json(&master_ip_args(&config, "stop"));
        if let Err(e) = rpc.call_one(proto::MASTER_IP, &target, &ip_args, DEFAULT_TIMEOUT) {
            report.warnings.push(format!(
                "Could not disable the master IP: {}",
                crate::error::chain(&e)
            ));
        }
        let stop = to_json(&DaemonsArgs {
            action: "stop".into(),
            daemons: MASTER_DAEMONS.iter().map(|s| s.to_string()).collect(),
        });
        if let Err(e) = rpc.call_one(proto::DAEMONS, &target, &stop, DEFAULT_TIMEOUT) {
            report.warnings.push(format!(
                "Could not disable the master role on the old master {old_master}, please \
                 disable manually: {}",
                crate::error::chain(&e)
            ));
        }
    }

    // Our copy now names us; the store bumps the serial and rewrites ssconf.
    let store = ConfigStore::open(paths).map_err(BootstrapError::Config)?;
    store
        .update(|d| {
            d.cluster.master_node = my_uuid.clone();
            d.cluster.serial_no += 1;
            Ok(())
        })
        .map_err(BootstrapError::Config)?;
    let new = store.snapshot();
    distribute(paths, rpc, &new, &me, &mut report.warnings);

    let mut start = vec!["start".to_string(), "ganeti-masterd".to_string()];
    if voting == Voting::Skip {
        start.extend(["--no-voting".to_string(), "--yes-do-it".to_string()]);
    }
    if let Err(e) = super::daemon_util_args(runner, start) {
        report.master_started = false;
        report.warnings.push(format!(
            "Could not start the master role on the new master {me}, please check: {}",
            crate::error::chain(&e)
        ));
    }
    if let Some((_, node)) = new.node_by_name(&me) {
        let ip_args = to_json(&master_ip_args(&new, "start"));
        if let Err(e) = rpc.call_one(
            proto::MASTER_IP,
            &node_target(node),
            &ip_args,
            DEFAULT_TIMEOUT,
        ) {
            report.warnings.push(format!(
                "Could not activate the master IP on {me}; the cluster should still be working \
                 and reachable via {me}, but not via the master IP address: {}",
                crate::error::chain(&e)
            ));
        }
    }
    Ok(report)
}

/// Pushes `config.data` to the other master candidates and the ssconf
/// files to every other online node; failures become warnings.
fn distribute(
    paths: &Paths,
    rpc: &dyn NodeRpc,
    config: &ConfigData,
    me: &str,
    warnings: &mut Vec<String>,
) {
    let others: Vec<&Node> = config
        .nodes
        .values()
        .filter(|n| n.name.as_str() != me && !n.offline)
        .collect();
    let candidates: Vec<Target> = others
        .iter()
        .filter(|n| n.master_candidate)
        .map(|n| node_target(n))
        .collect();
    let upload = to_json(&UploadFilesArgs {
        files: vec![FileUpload {
            path: production_path(paths, &paths.config_file()),
            data: crate::rpc::b64::encode(&config.to_json()),
            mode: CONFIG_FILE_MODE,
        }],
    });
    for (node, r) in rpc.call(proto::UPLOAD_FILES, &candidates, &upload, DEFAULT_TIMEOUT) {
        if let Err(e) = r {
            warnings.push(format!(
                "Could not copy the configuration to {node}: {}",
                crate::error::chain(&e)
            ));
        }
    }
    let all: Vec<Target> = others.iter().map(|n| node_target(n)).collect();
    let ssconf = to_json(&proto::WriteSsconfArgs {
        files: crate::ssconf::render(config),
    });
    for (node, r) in rpc.call(proto::WRITE_SSCONF, &all, &ssconf, DEFAULT_TIMEOUT) {
        if let Err(e) = r {
            warnings.push(format!(
                "Could not update the ssconf files on {node}: {}",
                crate::error::chain(&e)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{NodeResult, RpcError};
    use std::sync::Mutex;

    fn info(name: &str, master: Option<&str>, serial: Option<u64>) -> MasterInfo {
        MasterInfo {
            name: name.into(),
            master: master.map(str::to_string),
            config_serial: serial,
        }
    }

    fn votes(asked: usize, answers: Vec<MasterInfo>) -> Votes {
        Votes {
            asked,
            answers,
            silent: Vec::new(),
        }
    }

    #[test]
    fn single_node_clusters_start_without_votes() {
        assert_eq!(
            startup_verdict("a", &votes(0, vec![])),
            StartupVerdict::Confirmed
        );
    }

    #[test]
    fn startup_needs_half_the_nodes_and_no_majority_against() {
        let me = "n1";
        // 4 others, only 1 answered: too few.
        assert_eq!(
            startup_verdict(me, &votes(4, vec![info("n2", Some("n1"), None)])),
            StartupVerdict::TooFewAnswers {
                answered: 1,
                asked: 4
            }
        );
        // Half answered, all for us.
        assert_eq!(
            startup_verdict(
                me,
                &votes(
                    4,
                    vec![info("n2", Some("n1"), None), info("n3", Some("n1"), None)]
                )
            ),
            StartupVerdict::Confirmed
        );
        // Two of three name n2.
        assert_eq!(
            startup_verdict(
                me,
                &votes(
                    3,
                    vec![
                        info("n2", Some("n2"), None),
                        info("n3", Some("n2"), None),
                        info("n4", Some("n1"), None)
                    ]
                )
            ),
            StartupVerdict::NotMaster {
                voted: "n2".into(),
                against: 2,
                answered: 3
            }
        );
        // A tie is not a majority against us; abstentions do not count against.
        assert_eq!(
            startup_verdict(
                me,
                &votes(
                    3,
                    vec![
                        info("n2", Some("n2"), None),
                        info("n3", Some("n1"), None),
                        info("n4", None, None)
                    ]
                )
            ),
            StartupVerdict::Confirmed
        );
        // Two-node cluster: the other node names itself.
        assert!(matches!(
            startup_verdict(me, &votes(1, vec![info("n2", Some("n2"), None)])),
            StartupVerdict::NotMaster { .. }
        ));
    }

    fn cands(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn failover_needs_a_strict_majority_of_all_nodes() {
        let v = Votes {
            asked: 4,
            answers: vec![
                info("n1", Some("n1"), Some(5)),
                info("n2", Some("n1"), Some(5)),
            ],
            silent: vec![("n3".into(), "down".into()), ("n4".into(), "down".into())],
        };
        let r = failover_verdict(&v, 4, "n1", 5, &cands(&["n1", "n2"])).unwrap_err();
        assert!(matches!(
            r,
            FailoverRefusal::Inconsistent {
                answered: 2,
                total: 4,
                ..
            }
        ));
        let text = r.to_string();
        assert!(text.contains("Cluster is inconsistent, most nodes did not respond"));
        assert!(text.contains("n3, n4"));
    }

    #[test]
    fn failover_refuses_a_newer_config_elsewhere_and_a_different_master() {
        let answers = vec![
            info("n1", Some("n1"), Some(7)),
            info("n2", Some("n1"), Some(9)),
            info("n3", Some("n1"), None),
        ];
        let v = votes(3, answers.clone());
        let r = failover_verdict(&v, 3, "n1", 8, &cands(&["n1", "n2", "n3"])).unwrap_err();
        assert_eq!(
            r,
            FailoverRefusal::NewerConfig {
                node: "n2".into(),
                serial: 9,
                ours: 8
            }
        );
        assert!(r.to_string().contains("Node n2 has a newer configuration"));
        // A non-candidate's serial does not count.
        failover_verdict(&v, 3, "n1", 8, &cands(&["n1", "n3"])).unwrap();
        // Equal is fine.
        failover_verdict(&v, 3, "n1", 9, &cands(&["n1", "n2"])).unwrap();
        let wrong = votes(
            3,
            vec![info("n1", Some("n2"), None), info("n2", Some("n2"), None)],
        );
        assert_eq!(
            failover_verdict(&wrong, 3, "n1", 1, &[]).unwrap_err(),
            FailoverRefusal::WrongMaster {
                ours: "n1".into(),
                voted: "n2".into()
            }
        );
    }

    /// A fake node RPC: each node answers from a table; unknown nodes are down.
    struct FakeRpc {
        answers: BTreeMap<String, Value>,
        calls: Mutex<Vec<(String, String, Value)>>,
    }

    impl FakeRpc {
        fn new(answers: &[(&str, Value)]) -> Self {
            FakeRpc {
                answers: answers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect(),
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl NodeRpc for FakeRpc {
        fn call_each(
            &self,
            procedure: &str,
            calls: &[(Target, Value)],
            _timeout: Duration,
        ) -> Vec<(String, NodeResult)> {
            calls
                .iter()
                .map(|(t, args)| {
                    self.calls.lock().unwrap().push((
                        procedure.to_string(),
                        t.name.clone(),
                        args.clone(),
                    ));
                    let r = match self.answers.get(&t.name) {
                        Some(v) if procedure == proto::MASTER_INFO => Ok(v.clone()),
                        Some(_) => Ok(Value::Null),
                        None => Err(RpcError::Connect {
                            node: t.name.clone(),
                            address: t.address.clone(),
                            message: "refused".into(),
                        }),
                    };
                    (t.name.clone(), r)
                })
                .collect()
        }
    }

    fn vote_json(name: &str, master: &str) -> Value {
        to_json(&info(name, Some(master), Some(1)))
    }

    #[test]
    fn masterd_retries_then_starts_with_a_warning() {
        let config = crate::config::test_support::generated(5, 0);
        let rpc = FakeRpc::new(&[(
            "node2.example.com",
            vote_json("node2.example.com", "node1.example.com"),
        )]);
        let mut waits = 0;
        let w = confirm_master_role(&rpc, &config, "node1.example.com", &mut |_| waits += 1)
            .unwrap()
            .unwrap();
        assert_eq!(waits, STARTUP_VOTE_ATTEMPTS - 1);
        assert!(w.contains("1 of 4"), "{w}");
    }

    #[test]
    fn masterd_refuses_when_the_majority_names_another() {
        let config = crate::config::test_support::generated(3, 0);
        let m = "node2.example.com";
        let rpc = FakeRpc::new(&[
            ("node2.example.com", vote_json("node2.example.com", m)),
            ("node3.example.com", vote_json("node3.example.com", m)),
        ]);
        let e = confirm_master_role(&rpc, &config, "node1.example.com", &mut |_| {}).unwrap_err();
        assert!(e
            .to_string()
            .contains("not the master according to the majority"));
        assert!(e.to_string().contains(m));
        let ok = FakeRpc::new(&[
            (
                "node2.example.com",
                vote_json("node2.example.com", "node1.example.com"),
            ),
            (
                "node3.example.com",
                vote_json("node3.example.com", "node1.example.com"),
            ),
        ]);
        assert_eq!(
            confirm_master_role(&ok, &config, "node1.example.com", &mut |_| {}).unwrap(),
            None
        );
    }

    struct TempRoot(std::path::PathBuf);

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn node_root(tag: &str, node: &str, config: ConfigData) -> (TempRoot, Paths) {
        let base =
            std::env::temp_dir().join(format!("ganeti-failover-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let root = base.join(node);
        std::fs::create_dir_all(&root).unwrap();
        let paths = Paths::virtual_node(&root, node).unwrap();
        ConfigStore::create(&paths, config).unwrap();
        (TempRoot(base), paths)
    }

    #[test]
    fn failover_moves_the_role_and_tells_every_node() {
        let config = crate::config::test_support::generated(3, 0);
        let serial = config.serial_no;
        let (_root, paths) = node_root("ok", "node2.example.com", config);
        let m = "node1.example.com";
        let rpc = FakeRpc::new(&[
            ("node1.example.com", vote_json("node1.example.com", m)),
            ("node2.example.com", vote_json("node2.example.com", m)),
            ("node3.example.com", vote_json("node3.example.com", m)),
        ]);
        let runner = crate::sys::cmd::RecordingRunner::new();
        runner.push_answer(Ok(""));
        let report = master_failover(&paths, &rpc, &runner, Voting::Vote).unwrap();
        assert_eq!(report.old_master, m);
        assert!(report.master_started);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let after = load_file(&paths.config_file()).unwrap();
        assert_eq!(
            after.master_node().unwrap().name.as_str(),
            "node2.example.com"
        );
        assert_eq!(after.serial_no, serial + 1);
        assert_eq!(
            crate::ssconf::master_node(&paths).unwrap(),
            "node2.example.com"
        );
        let calls = rpc.calls.lock().unwrap().clone();
        let seen = |proc_: &str, node: &str| calls.iter().any(|(p, n, _)| p == proc_ && n == node);
        assert!(seen(proto::DAEMONS, m));
        assert!(seen(proto::MASTER_IP, m));
        assert!(seen(proto::UPLOAD_FILES, "node3.example.com"));
        assert!(seen(proto::WRITE_SSCONF, "node1.example.com"));
        assert!(seen(proto::MASTER_IP, "node2.example.com"));
        let start = calls
            .iter()
            .find(|(p, n, _)| p == proto::MASTER_IP && n == "node2.example.com")
            .unwrap();
        assert_eq!(start.2["action"], "start");
        let upload = calls
            .iter()
            .find(|(p, _, _)| p == proto::UPLOAD_FILES)
            .unwrap();
        assert_eq!(upload.2["files"][0]["path"], "/var/lib/ganeti/config.data");
        let cmd = runner.calls();
        assert!(cmd[0]
            .argv
            .ends_with(&["start".to_string(), "ganeti-masterd".to_string()]));
    }

    #[test]
    fn failover_refuses_without_majority_and_on_the_master() {
        let config = crate::config::test_support::generated(3, 0);
        let (_root, paths) = node_root("refuse", "node2.example.com", config.clone());
        let rpc = FakeRpc::new(&[]);
        let runner = crate::sys::cmd::RecordingRunner::new();
        let e = master_failover(&paths, &rpc, &runner, Voting::Vote).unwrap_err();
        assert!(e.to_string().contains("most nodes did not respond"), "{e}");
        // Nothing changed.
        let after = load_file(&paths.config_file()).unwrap();
        assert_eq!(after.serial_no, config.serial_no);
        let (_root1, master_paths) = node_root("onmaster", "node1.example.com", config);
        let e = master_failover(&master_paths, &rpc, &runner, Voting::Skip).unwrap_err();
        assert!(e.to_string().contains("is already the master"));
    }

    #[test]
    fn failover_refuses_on_a_non_candidate() {
        let mut config = crate::config::test_support::generated(3, 0);
        for n in config.nodes.values_mut() {
            if n.name.as_str() == "node3.example.com" {
                n.master_candidate = false;
            }
        }
        let (_root, paths) = node_root("noncand", "node3.example.com", config);
        let e = master_failover(
            &paths,
            &FakeRpc::new(&[]),
            &crate::sys::cmd::RecordingRunner::new(),
            Voting::Skip,
        )
        .unwrap_err();
        assert!(e.to_string().contains("node3.example.com"));
        assert!(e
            .to_string()
            .contains("not among the nodes marked as master candidates"));
    }
}
