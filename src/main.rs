//! The `ganeti` multicall binary: every program of the cluster in one file.
//!
//! `main` only reads argv and the environment, hands them to
//! [`ganeti::applets::dispatch`] and exits with the code it returns.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    ExitCode::from(ganeti::applets::dispatch(args))
}
