//! `gnt-job`: the job queue seen from the shell (Ganeti's gnt-job).

use super::job::{parse_priority, poll_job, JobError};
use super::list::{generic_list, generic_list_fields, ListCmd, ListFieldsCmd};
use super::output::{python_repr, Info};
use super::{parse_args, report_luxi_error, EXIT_FAILURE, EXIT_SUCCESS};
use crate::luxi::client::Client;
use crate::luxi::Method;
use crate::query::filter::NameKind;
use crate::query::Resource;
use argh::FromArgs;
use serde_json::{json, Value};

/// Ganeti's default `gnt-job list` fields.
pub const LIST_DEFAULT_FIELDS: &[&str] = &["id", "status", "summary"];

#[derive(FromArgs, Debug)]
/// Job queue administration (Ganeti's gnt-job).
struct GntJob {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    List(ListCmd),
    ListFields(ListFieldsCmd),
    Info(IdsArgs),
    Watch(OneIdArgs),
    Wait(WaitArgs),
    Cancel(CancelArgs),
    Archive(ArchiveArgs),
    Autoarchive(AutoarchiveArgs),
    ChangePriority(ChangePriorityArgs),
}

#[derive(FromArgs, Debug)]
/// Shows detailed information about jobs.
#[argh(subcommand, name = "info")]
struct IdsArgs {
    /// job ids
    #[argh(positional)]
    ids: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Follows a job and prints its output as it arrives.
#[argh(subcommand, name = "watch")]
struct OneIdArgs {
    /// the job id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs, Debug)]
/// Waits for a job to finish, printing nothing.
#[argh(subcommand, name = "wait")]
struct WaitArgs {
    /// the job id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs, Debug)]
/// Cancels jobs that have not started.
#[argh(subcommand, name = "cancel")]
struct CancelArgs {
    /// job ids
    #[argh(positional)]
    ids: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Moves finished jobs to the archive.
#[argh(subcommand, name = "archive")]
struct ArchiveArgs {
    /// job ids
    #[argh(positional)]
    ids: Vec<String>,
}

#[derive(FromArgs, Debug)]
/// Archives finished jobs older than AGE (s/m/h/d/w suffixes, or "all").
#[argh(subcommand, name = "autoarchive")]
struct AutoarchiveArgs {
    /// the age
    #[argh(positional)]
    age: String,
}

#[derive(FromArgs, Debug)]
/// Changes the priority of queued or waiting jobs.
#[argh(subcommand, name = "change-priority")]
struct ChangePriorityArgs {
    /// the new priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// job ids
    #[argh(positional)]
    ids: Vec<String>,
}

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    let cmd: GntJob = match parse_args(program, args, &['o']) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut client = match super::connect_master(super::MasterSocket::Master) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let c = &mut client;
    match cmd.command {
        Command::List(l) => generic_list(
            c,
            Resource::Job,
            LIST_DEFAULT_FIELDS,
            &l.to_args(),
            NameKind::Numeric,
        ),
        Command::ListFields(f) => generic_list_fields(
            c,
            Resource::Job,
            &f.fields,
            f.no_headers,
            f.separator.as_deref(),
        ),
        Command::Info(a) => with_ids(&a.ids, |ids| info(c, ids)),
        Command::Watch(a) => with_ids(std::slice::from_ref(&a.id), |ids| {
            follow(c, ids[0], Output::Print)
        }),
        Command::Wait(a) => with_ids(std::slice::from_ref(&a.id), |ids| {
            follow(c, ids[0], Output::Quiet)
        }),
        Command::Cancel(a) => with_ids(&a.ids, |ids| {
            each(c, ids, |c, id| {
                c.call(Method::CancelJob, json!([id, false]))
            })
        }),
        Command::Archive(a) => with_ids(&a.ids, |ids| archive(c, ids)),
        Command::Autoarchive(a) => autoarchive(c, &a.age),
        Command::ChangePriority(a) => {
            let Some(p) = &a.priority else {
                eprintln!("--priority option must be given.");
                return EXIT_FAILURE;
            };
            match parse_priority(p) {
                Ok(prio) => with_ids(&a.ids, |ids| {
                    each(c, ids, |c, id| {
                        c.call(Method::ChangeJobPriority, json!([id, prio]))
                    })
                }),
                Err(e) => {
                    eprintln!("{e}");
                    EXIT_FAILURE
                }
            }
        }
    }
}

/// Parses job ids, refusing anything that is not a whole number.
fn with_ids(args: &[String], f: impl FnOnce(&[u64]) -> u8) -> u8 {
    let mut ids = Vec::with_capacity(args.len());
    for a in args {
        match a.parse::<u64>() {
            Ok(id) => ids.push(id),
            Err(_) => {
                eprintln!("Invalid job id {a:?}: expected a whole number");
                return EXIT_FAILURE;
            }
        }
    }
    if ids.is_empty() {
        eprintln!("At least one job id is needed");
        return EXIT_FAILURE;
    }
    f(&ids)
}

/// Runs an action answering `[success, message]` on each job.
#[allow(clippy::print_stdout)]
fn each(
    client: &mut Client,
    ids: &[u64],
    mut action: impl FnMut(&mut Client, u64) -> Result<Value, crate::luxi::client::LuxiError>,
) -> u8 {
    let mut code = EXIT_SUCCESS;
    for &id in ids {
        match action(client, id) {
            Ok(r) => {
                let ok = r.get(0).and_then(Value::as_bool).unwrap_or(false);
                let msg = r.get(1).map(python_repr).unwrap_or_default();
                println!("{msg}");
                if !ok {
                    code = EXIT_FAILURE;
                }
            }
            Err(e) => code = report_luxi_error(&e),
        }
    }
    code
}

fn archive(client: &mut Client, ids: &[u64]) -> u8 {
    let mut code = EXIT_SUCCESS;
    for &id in ids {
        match client.call(Method::ArchiveJob, json!([id])) {
            Ok(Value::Bool(true)) => {}
            Ok(_) => {
                eprintln!("Failed to archive job with ID '{id}'");
                code = EXIT_FAILURE;
            }
            Err(e) => code = report_luxi_error(&e),
        }
    }
    code
}

#[allow(clippy::print_stdout)]
fn autoarchive(client: &mut Client, age: &str) -> u8 {
    let age: i64 = if age == "all" {
        -1
    } else {
        match super::gnt_cluster::parse_timespec(age) {
            Ok(s) => i64::try_from(s).unwrap_or(i64::MAX),
            Err(e) => {
                eprintln!("{e}");
                return EXIT_FAILURE;
            }
        }
    };
    let timeout = (crate::constants::LUXI_DEFAULT_RWTO_SECS - 1) / 2;
    match client.call(Method::AutoArchiveJobs, json!([age, timeout])) {
        Ok(r) => {
            println!(
                "Archived {} jobs, {} unchecked left",
                python_repr(&r[0]),
                python_repr(&r[1])
            );
            EXIT_SUCCESS
        }
        Err(e) => report_luxi_error(&e),
    }
}

enum Output {
    Print,
    Quiet,
}

#[allow(clippy::print_stdout)]
fn follow(client: &mut Client, id: u64, output: Output) -> u8 {
    if let Output::Print = output {
        let msg = format!("Output from job {id} follows");
        println!("{msg}\n{}", "-".repeat(msg.len()));
    }
    let printing = matches!(output, Output::Print);
    match poll_job(client, id, &mut |line| {
        if printing {
            println!("{line}");
        }
    }) {
        Ok(_) => EXIT_SUCCESS,
        Err(JobError::Failed(f)) => {
            eprintln!("Job {id} failed: {}", f.message());
            EXIT_FAILURE
        }
        Err(e) => super::job::report(&e),
    }
}

/// `[secs, usecs]` as Ganeti's `FormatTimestamp` prints it.
fn format_ts(ts: &Value) -> Option<String> {
    let secs = ts.get(0)?.as_f64()?;
    let usecs = ts.get(1)?.as_f64()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // microseconds < 10^6
    let us = usecs as u64;
    Some(format!("{}.{us:06}", crate::sys::time::format_local(secs)))
}

fn delta(from: &Value, to: &Value) -> Option<f64> {
    let f = from.get(0)?.as_f64()? + from.get(1)?.as_f64()? / 1e6;
    let t = to.get(0)?.as_f64()? + to.get(1)?.as_f64()? / 1e6;
    Some(t - f)
}

/// Pads keys of one alignment group so their values line up (Ganeti's
/// alignment groups in `PrintGenericInfo`).
fn aligned(entries: Vec<(String, String)>) -> Vec<(String, Info)> {
    let width = entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    entries
        .into_iter()
        .map(|(k, v)| {
            let pad = " ".repeat(width - k.len());
            (k, Info::text(format!("{pad}{v}")))
        })
        .collect()
}

#[allow(clippy::print_stdout)]
fn info(client: &mut Client, ids: &[u64]) -> u8 {
    let fields = [
        "id",
        "status",
        "ops",
        "opresult",
        "opstatus",
        "oplog",
        "opstart",
        "opexec",
        "opend",
        "received_ts",
        "start_ts",
        "end_ts",
    ];
    let filter = json!(["|"]
        .into_iter()
        .map(Value::from)
        .chain(ids.iter().map(|id| json!(["==", "id", id])))
        .collect::<Vec<_>>());
    let answer = match client.call(Method::Query, json!(["job", fields, filter])) {
        Ok(a) => a,
        Err(e) => return report_luxi_error(&e),
    };
    let rows = answer["data"].as_array().cloned().unwrap_or_default();
    let mut jobs = Vec::new();
    for row in rows {
        let cell = |i: usize| {
            row.get(i)
                .and_then(|c| c.get(1))
                .cloned()
                .unwrap_or(Value::Null)
        };
        if row.get(1).and_then(|c| c.get(0)).and_then(Value::as_u64) != Some(0) {
            jobs.push(Info::text(format!(
                "Job ID {} not found",
                python_repr(&cell(0))
            )));
            continue;
        }
        let (recv, start, end) = (cell(9), cell(10), cell(11));
        let stamp = |ts: &Value, prior: Option<&Value>| match format_ts(ts) {
            Some(t) => match prior.and_then(|p| delta(p, ts)) {
                Some(d) => format!("{t} (delta {d:.6}s)"),
                None => t,
            },
            None => format!("unknown ({})", python_repr(ts)),
        };
        let mut section = vec![
            ("Job ID".to_string(), Info::text(python_repr(&cell(0)))),
            ("Status".into(), Info::text(python_repr(&cell(1)))),
        ];
        section.extend(aligned(vec![
            ("Received".into(), stamp(&recv, None)),
            ("Processing start".into(), stamp(&start, Some(&recv))),
            ("Processing end".into(), stamp(&end, Some(&start))),
        ]));
        section.push((
            "Total processing time".into(),
            Info::text(match delta(&recv, &end) {
                Some(d) => format!("{d:.6} seconds"),
                None => "N/A".into(),
            }),
        ));
        let (ops, results, statuses, logs) = (cell(2), cell(3), cell(4), cell(5));
        let (starts, execs, ends) = (cell(6), cell(7), cell(8));
        let mut opcodes = Vec::new();
        for (i, op) in ops
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let ts = |v: &Value| format_ts(&v[i]).unwrap_or_else(|| "N/A".into());
            let mut o = vec![
                ("Opcode".to_string(), Info::text(python_repr(&op["OP_ID"]))),
                ("Status".into(), Info::text(python_repr(&statuses[i]))),
            ];
            o.extend(aligned(vec![
                ("Processing start".into(), ts(&starts)),
                ("Execution start".into(), ts(&execs)),
                ("Processing end".into(), ts(&ends)),
            ]));
            o.push(("Input fields".into(), Info::from_json_dict(op)));
            o.push(("Result".into(), Info::text(python_repr(&results[i]))));
            let log: Vec<Info> = logs[i]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    Info::Section(vec![
                        (
                            "Time".into(),
                            Info::text(format_ts(&e[1]).unwrap_or_else(|| "?".into())),
                        ),
                        (
                            "Content".into(),
                            Info::text(format!(
                                "[{}, {}, {}]",
                                python_repr(&e[0]),
                                python_repr(&e[2]),
                                python_repr(&e[3])
                            )),
                        ),
                    ])
                })
                .collect();
            o.push(("Execution log".into(), Info::List(log)));
            opcodes.push(Info::Section(o));
        }
        section.push(("Opcodes".into(), Info::List(opcodes)));
        jobs.push(Info::Section(section));
    }
    println!("{}", Info::List(jobs).render());
    EXIT_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_alignment() {
        assert_eq!(
            format_ts(&json!([0, 5])).unwrap(),
            "1970-01-01 00:00:00.000005"
        );
        assert_eq!(delta(&json!([10, 0]), &json!([11, 500_000])), Some(1.5));
        let a = aligned(vec![
            ("Received".into(), "x".into()),
            ("Processing end".into(), "y".into()),
        ]);
        assert_eq!(a[0].1, Info::text("      x"));
        assert_eq!(a[1].1, Info::text("y"));
    }
}
