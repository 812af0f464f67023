//! Command-line front ends: one module per program, plus what they share.
//!
//! Front ends talk to masterd only through [`crate::luxi`]; they never
//! import the config store or the job machinery (`tests/layering.rs`).
//! Two programs run before any daemon exists and work on files directly,
//! as in Ganeti: `cfgupgrade` (through [`crate::config::upgrade`]) and
//! `gnt-cluster init`/`destroy` (through [`crate::bootstrap`]).

pub mod cfgupgrade;
pub mod confd_query;
pub mod gnt_backup;
pub mod gnt_cluster;
pub mod gnt_debug;
pub mod gnt_group;
pub mod gnt_instance;
pub mod gnt_job;
pub mod gnt_node;
pub mod gnt_os;
pub mod instance_create;
pub mod instance_info;
pub mod instance_select;
pub mod job;
pub mod kv;
pub mod list;
pub mod nodes;
pub mod output;
pub mod prompt;
pub mod tags;

use crate::error::{ErrorKind, OpFailure};
use crate::luxi::client::LuxiError;

/// Exit code of a successful command.
pub const EXIT_SUCCESS: u8 = 0;
/// Exit code of a failed command (Ganeti's `EXIT_FAILURE`).
pub const EXIT_FAILURE: u8 = 1;

/// The exit status for an error of `kind`: the one place that decides it.
/// Ganeti's commands exit 1 on every failure; we keep that.
pub fn exit_code(_kind: ErrorKind) -> u8 {
    EXIT_FAILURE
}

/// Rewrites argv into the shapes argh accepts, as Ganeti's optparse allows
/// more: `--opt=value` becomes `--opt value`; `-Xvalue` becomes `-X value`
/// for the short options in `short_with_value`; `-fq` becomes `-f -q` when
/// every letter is a flag. Arguments after `--` are left alone.
pub fn normalize_argv(args: &[String], short_with_value: &[char]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest_positional = false;
    for a in args {
        if rest_positional {
            out.push(a.clone());
            continue;
        }
        if a == "--" {
            rest_positional = true;
            out.push(a.clone());
        } else if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => {
                    out.push(format!("--{name}"));
                    out.push(value.to_string());
                }
                None => out.push(a.clone()),
            }
        } else if a.len() > 2 && a.starts_with('-') && !a.starts_with("--") {
            let body: Vec<char> = a[1..].chars().collect();
            if short_with_value.contains(&body[0]) {
                out.push(format!("-{}", body[0]));
                out.push(body[1..].iter().collect());
            } else if body
                .iter()
                .all(|c| c.is_ascii_alphabetic() && !short_with_value.contains(c))
            {
                out.extend(body.iter().map(|c| format!("-{c}")));
            } else {
                out.push(a.clone());
            }
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// Parses `args` as the argh command `T`, printing help or the error.
/// Returns `Err(exit code)` when the program should stop.
pub fn parse_args<T: argh::FromArgs>(
    program: &str,
    args: &[String],
    short_with_value: &[char],
) -> Result<T, u8> {
    let args = normalize_argv(args, short_with_value);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    T::from_args(&[program], &refs).map_err(|early| {
        #[allow(clippy::print_stdout)]
        if early.status.is_ok() {
            println!("{}", early.output);
            EXIT_SUCCESS
        } else {
            eprintln!("{}", early.output.trim_end());
            eprintln!("Run '{program} --help' for usage.");
            EXIT_FAILURE
        }
    })
}

/// Which of masterd's sockets a command talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterSocket {
    /// `ganeti-master`: commands that submit jobs.
    Master,
    /// `ganeti-query`: read-only queries (what Ganeti 3.0's clients use).
    Query,
}

/// Reads this node's paths from the environment and connects to masterd.
/// On failure prints why (in Ganeti's words) and returns the exit code.
pub fn connect_master(which: MasterSocket) -> Result<crate::luxi::client::Client, u8> {
    let paths = crate::paths::Paths::from_env().map_err(|e| {
        eprintln!("Error: {e}");
        EXIT_FAILURE
    })?;
    let socket = match which {
        MasterSocket::Master => paths.master_socket(),
        MasterSocket::Query => paths.query_socket(),
    };
    crate::luxi::client::Client::connect(&socket).map_err(|e| report_luxi_error(&e))
}

/// Formats an error as Ganeti's command line does (`cli.FormatError`).
pub fn format_failure(f: &OpFailure) -> String {
    match f.kind {
        ErrorKind::Inval
        | ErrorKind::State
        | ErrorKind::NoEnt
        | ErrorKind::Exists
        | ErrorKind::NotUnique => {
            format!(
                "Failure: prerequisites not met for this operation:\nerror type: {}, error details:\n{}",
                kind_name(f.kind),
                f.message
            )
        }
        ErrorKind::Resolver => format!("Failure: can't resolve hostname {}", f.message),
        _ => format!("Failure: command execution error:\n{}", f.message),
    }
}

fn kind_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Prints a LUXI failure in Ganeti's words and returns the exit code.
pub fn report_luxi_error(e: &LuxiError) -> u8 {
    match e {
        LuxiError::Connect { path, .. } => {
            let daemon = if path.ends_with("ganeti-master") || path.ends_with("ganeti-query") {
                "the master daemon".to_string()
            } else {
                format!("socket '{}'", path.display())
            };
            eprintln!("Cannot communicate with {daemon}.\nIs the process running and listening for connections?");
        }
        LuxiError::Failed(f) if f.class == "OpPrereqError" && f.args.len() == 2 => {
            eprintln!(
                "Failure: prerequisites not met for this operation:\nerror type: {}, error details:\n{}",
                f.args[1].as_str().unwrap_or_default(),
                f.message()
            );
        }
        LuxiError::Failed(f) if f.class == "JobQueueDrainError" => {
            eprintln!("Failure: the job queue is marked for drain and doesn't accept new requests");
        }
        LuxiError::Failed(f) if f.class == "OpExecError" => {
            eprintln!("Failure: command execution error:\n{}", f.message());
        }
        other => eprintln!("Error: {}", crate::error::chain(other)),
    }
    EXIT_FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalizes_ganeti_style_argv() {
        assert_eq!(
            normalize_argv(
                &v(&["--disk=0:size=1G", "-tplain", "-fq", "-B", "x", "--", "-tz"]),
                &['t', 'B']
            ),
            v(&[
                "--disk",
                "0:size=1G",
                "-t",
                "plain",
                "-f",
                "-q",
                "-B",
                "x",
                "--",
                "-tz"
            ])
        );
        assert_eq!(normalize_argv(&v(&["-1"]), &['t']), v(&["-1"]));
    }

    #[test]
    fn prerequisite_failures_read_like_ganeti() {
        let f = OpFailure {
            kind: ErrorKind::Inval,
            message: "bad mac prefix".into(),
        };
        assert_eq!(
            format_failure(&f),
            "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nbad mac prefix"
        );
    }
}
