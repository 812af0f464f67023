//! `gnt-debug`: debugging commands (`delay`, `submit-job`).

use super::job::{parse_priority, poll_job, report, submit_or_send, JobError, SubmitOpts};
use super::output::python_repr;
use super::{parse_args, report_luxi_error, EXIT_FAILURE, EXIT_SUCCESS};
use crate::luxi::client::Client;
use crate::luxi::Method;
use argh::FromArgs;
use serde_json::{json, Value};
use std::time::Instant;

const SHORT_WITH_VALUE: &[char] = &['n', 'r'];

#[derive(FromArgs, Debug)]
/// Debugging commands (Ganeti's gnt-debug).
struct GntDebug {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Delay(DelayArgs),
    SubmitJob(SubmitJobArgs),
    Locks(LocksArgs),
}

#[derive(FromArgs, Debug)]
/// Shows the locks of the master daemon, their owners and waiters.
#[argh(subcommand, name = "locks")]
struct LocksArgs {
    /// fields to show (name, mode, owner, pending)
    #[argh(option, short = 'o')]
    output: Option<String>,
    /// do not print the header row
    #[argh(switch)]
    no_headers: bool,
    /// separate columns with this string instead of aligning them
    #[argh(option)]
    separator: Option<String>,
    /// repeat every N seconds until interrupted
    #[argh(option)]
    interval: Option<u64>,
}

#[derive(FromArgs, Debug)]
/// Executes an OP_TEST_DELAY opcode.
#[argh(subcommand, name = "delay")]
struct DelayArgs {
    /// do not sleep in the master code
    #[argh(switch)]
    no_master: bool,
    /// select a node to sleep on (repeatable)
    #[argh(option, short = 'n')]
    node: Vec<String>,
    /// number of times to repeat the sleep
    #[argh(option, short = 'r', default = "0")]
    repeat: u64,
    /// allow the opcode to be interrupted
    #[argh(switch, short = 'i')]
    interruptible: bool,
    /// do not take locks while sleeping
    #[argh(switch, short = 'l')]
    no_locks: bool,
    /// only check, do not run
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
    /// seconds to sleep (greater than zero)
    #[argh(positional)]
    duration: f64,
}

#[derive(FromArgs, Debug)]
/// Submits jobs built from JSON files holding lists of opcodes.
#[argh(subcommand, name = "submit-job")]
struct SubmitJobArgs {
    /// repeat the opcode list this many times in each job
    #[argh(option, default = "1")]
    op_repeat: usize,
    /// submit each file this many times
    #[argh(option, default = "1")]
    job_repeat: usize,
    /// show timing statistics
    #[argh(switch)]
    timing_stats: bool,
    /// submit the jobs one call each (default: one SubmitManyJobs)
    #[argh(switch)]
    each: bool,
    /// print more
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    priority: Option<String>,
    /// files with a JSON list of opcodes each
    #[argh(positional)]
    files: Vec<String>,
}

/// Entry point.
pub fn main(program: &str, args: &[String]) -> u8 {
    let cmd: GntDebug = match parse_args(program, args, SHORT_WITH_VALUE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut client = match super::connect_master(super::MasterSocket::Master) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cmd.command {
        Command::Delay(a) => delay(&mut client, a),
        Command::SubmitJob(a) => submit_job(&mut client, a),
        Command::Locks(a) => locks(&mut client, &a),
    }
}

fn priority(p: &Option<String>) -> Result<Option<i64>, u8> {
    match p {
        None => Ok(None),
        Some(name) => parse_priority(name).map(Some).map_err(|e| {
            eprintln!("{e}");
            EXIT_FAILURE
        }),
    }
}

fn delay(client: &mut Client, a: DelayArgs) -> u8 {
    let priority = match priority(&a.priority) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let op = json!({
        "OP_ID": "OP_TEST_DELAY",
        "duration": a.duration,
        "on_master": !a.no_master,
        "on_nodes": a.node,
        "repeat": a.repeat,
        "interruptible": a.interruptible,
        "no_locks": a.no_locks,
    });
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

#[allow(clippy::print_stdout)]
fn submit_job(client: &mut Client, a: SubmitJobArgs) -> u8 {
    let priority = match priority(&a.priority) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if a.files.is_empty() {
        eprintln!("submit-job needs at least one file with a JSON list of opcodes");
        return EXIT_FAILURE;
    }
    if a.timing_stats {
        println!("Loading...");
    }
    let opts = SubmitOpts {
        priority,
        ..Default::default()
    };
    let mut jobs: Vec<(String, Vec<Value>)> = Vec::new();
    for idx in 0..a.job_repeat {
        for file in &a.files {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("Cannot read {file}: {e}");
                    return EXIT_FAILURE;
                }
            };
            let ops = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(ops)) => ops,
                Ok(_) => {
                    eprintln!("{file}: expected a JSON list of opcodes");
                    return EXIT_FAILURE;
                }
                Err(e) => {
                    eprintln!("{file}: invalid JSON: {e}");
                    return EXIT_FAILURE;
                }
            };
            let mut ops: Vec<Value> = std::iter::repeat_n(ops, a.op_repeat).flatten().collect();
            opts.apply(&mut ops);
            jobs.push((format!("file {file}/{idx}"), ops));
        }
    }
    let op_count: usize = jobs.iter().map(|(_, o)| o.len()).sum();
    let t1 = Instant::now();
    if a.timing_stats {
        println!("Submitting...");
    }
    let mut ids = Vec::new();
    let mut failed = false;
    let submitted: Result<Vec<Value>, _> = if a.each {
        jobs.iter()
            .map(|(_, ops)| client.call(Method::SubmitJob, json!([ops])))
            .collect()
    } else {
        let all: Vec<&Vec<Value>> = jobs.iter().map(|(_, o)| o).collect();
        client.call(Method::SubmitManyJobs, json!([all])).map(|r| {
            // SubmitManyJobs answers [[ok, id-or-error], …].
            r.as_array().cloned().unwrap_or_default()
        })
    };
    let submitted = match submitted {
        Ok(s) => s,
        Err(e) => return report_luxi_error(&e),
    };
    for (entry, (name, _)) in submitted.iter().zip(jobs.iter()) {
        let (ok, id) = match entry {
            Value::Array(pair) if pair.len() == 2 => {
                (pair[0].as_bool().unwrap_or(false), pair[1].clone())
            }
            other => (true, other.clone()),
        };
        match (ok, id.as_u64()) {
            (true, Some(id)) => ids.push((name.clone(), id)),
            _ => {
                eprintln!("Failed to submit job for {name}: {}", python_repr(&id));
                failed = true;
            }
        }
    }
    println!(
        "Submitted jobs {}",
        ids.iter()
            .map(|(_, id)| id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let t2 = Instant::now();
    if a.timing_stats {
        println!("Executing...");
    }
    for (name, id) in &ids {
        if a.verbose {
            println!("Waiting for job {id} for {name} ...");
        }
        match poll_job(client, *id, &mut |line| println!("{line}")) {
            Ok(results) => {
                if a.verbose {
                    println!("{}: {name}", Value::Array(results));
                }
            }
            Err(JobError::Failed(f)) => {
                eprintln!("Job {id} for {name} has failed: {}", f.message());
                failed = true;
            }
            Err(e) => {
                report(&e);
                failed = true;
            }
        }
    }
    if a.timing_stats {
        let t3 = Instant::now();
        println!("C:op     {op_count:4}");
        println!("C:job    {:4}", jobs.len());
        println!("T:submit {:4.4}", (t2 - t1).as_secs_f64());
        println!("T:exec   {:4.4}", (t3 - t2).as_secs_f64());
        println!("T:total  {:4.4}", (t3 - t1).as_secs_f64());
    }
    if failed {
        EXIT_FAILURE
    } else {
        EXIT_SUCCESS
    }
}

/// `gnt-debug locks`: Ganeti's columns, owners joined by commas, pending
/// entries as `mode:owner,owner`.
#[allow(clippy::print_stdout)]
fn locks(client: &mut Client, a: &LocksArgs) -> u8 {
    let fields =
        super::list::selected_fields(a.output.as_deref(), &["name", "mode", "owner", "pending"]);
    loop {
        let answer = match client.call(Method::Query, json!(["lock", fields, null])) {
            Ok(v) => v,
            Err(e) => return report_luxi_error(&e),
        };
        let titles: Vec<(String, bool)> = answer["fields"]
            .as_array()
            .map(|f| {
                f.iter()
                    .map(|d| (d["title"].as_str().unwrap_or_default().to_string(), false))
                    .collect()
            })
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = answer["data"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        fields
                            .iter()
                            .zip(row.as_array().cloned().unwrap_or_default())
                            .map(|(f, cell)| lock_cell(f, &cell[1]))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        for line in
            super::output::format_table(&rows, &titles, !a.no_headers, a.separator.as_deref())
        {
            println!("{line}");
        }
        match a.interval {
            Some(secs) if secs > 0 => {
                println!();
                std::thread::sleep(std::time::Duration::from_secs(secs));
            }
            _ => return EXIT_SUCCESS,
        }
    }
}

fn lock_cell(field: &str, v: &Value) -> String {
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match field {
        "owner" => names(v).join(","),
        "pending" => v
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p[0].as_str().unwrap_or_default(),
                            names(&p[1]).join(",")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        _ if v.is_null() => "-".into(),
        _ => python_repr(v),
    }
}
