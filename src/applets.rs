//! The program table: which entry function runs for which installed name.
//!
//! The binary is started as `gnt-cluster`, `ganeti-noded`, … through
//! symlinks; the basename of `argv[0]` picks the program. `ganeti PROGRAM
//! args…` does the same, `ganeti --list` prints the table, and
//! `ganeti daemon-util …` manages the daemons. Programs that later issues
//! will build are listed, and say so when run, exiting non-zero.

use std::ffi::OsString;

/// Exit code of a program that is listed but not built yet.
pub const EXIT_NOT_IMPLEMENTED: u8 = 2;
/// Exit code for an unknown program name or a bad invocation of `ganeti`.
pub const EXIT_UNKNOWN_PROGRAM: u8 = 1;

/// An entry function: receives the program name and its arguments (without
/// `argv[0]`) and returns the exit code.
pub type Entry = fn(program: &str, args: &[String]) -> u8;

/// What kind of program an applet is (where `make install` puts its link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A daemon, installed in sbin.
    Daemon,
    /// An administrator's command, installed in sbin.
    Admin,
    /// An htools program, installed in bin.
    Tool,
}

/// One installed program name.
#[derive(Debug, Clone, Copy)]
pub struct Applet {
    /// The installed name (`argv[0]` basename).
    pub name: &'static str,
    /// Where it is installed.
    pub kind: Kind,
    /// One line for `ganeti --list`.
    pub summary: &'static str,
    /// The entry function; `None` while the program is not built yet, with
    /// the issue that brings it.
    pub entry: Result<Entry, &'static str>,
}

/// Every program of the cluster, in the order `ganeti --list` prints them.
pub const APPLETS: &[Applet] = &[
    Applet {
        name: "ganeti-masterd",
        kind: Kind::Daemon,
        summary: "master daemon: LUXI socket, job queue, config writer",
        entry: Ok(crate::daemons::masterd::main),
    },
    Applet {
        name: "ganeti-noded",
        kind: Kind::Daemon,
        summary: "node daemon: RPC server on every node",
        entry: Ok(crate::daemons::noded::main),
    },
    Applet {
        name: "ganeti-confd",
        kind: Kind::Daemon,
        summary: "configuration query daemon (UDP, HMAC-signed)",
        entry: Ok(crate::daemons::confd::main),
    },
    Applet {
        name: "ganeti-rapi",
        kind: Kind::Daemon,
        summary: "remote API daemon (HTTPS REST v2)",
        entry: Err("the remote API"),
    },
    Applet {
        name: "ganeti-watcher",
        kind: Kind::Daemon,
        summary: "periodic watcher: restarts daemons and instances",
        entry: Err("the watcher"),
    },
    Applet {
        name: "gnt-cluster",
        kind: Kind::Admin,
        summary: "cluster administration",
        entry: Ok(crate::cli::gnt_cluster::main),
    },
    Applet {
        name: "gnt-node",
        kind: Kind::Admin,
        summary: "node administration (list, list-fields so far)",
        entry: Ok(crate::cli::gnt_node::main),
    },
    Applet {
        name: "gnt-instance",
        kind: Kind::Admin,
        summary: "instance administration",
        entry: Ok(crate::cli::gnt_instance::main),
    },
    Applet {
        name: "gnt-job",
        kind: Kind::Admin,
        summary: "job queue administration",
        entry: Ok(crate::cli::gnt_job::main),
    },
    Applet {
        name: "gnt-os",
        kind: Kind::Admin,
        summary: "OS definitions",
        entry: Ok(crate::cli::gnt_os::main),
    },
    Applet {
        name: "gnt-backup",
        kind: Kind::Admin,
        summary: "instance export and import (export, import, remove so far)",
        entry: Ok(crate::cli::gnt_backup::main),
    },
    Applet {
        name: "gnt-group",
        kind: Kind::Admin,
        summary: "node group administration (list, list-fields so far)",
        entry: Ok(crate::cli::gnt_group::main),
    },
    Applet {
        name: "gnt-debug",
        kind: Kind::Admin,
        summary: "debugging commands",
        entry: Ok(crate::cli::gnt_debug::main),
    },
    Applet {
        name: "gnt-storage",
        kind: Kind::Admin,
        summary: "storage units",
        entry: Err("storage administration"),
    },
    Applet {
        name: "cfgupgrade",
        kind: Kind::Admin,
        summary: "upgrade config.data from Ganeti 2.7 ... 3.0",
        entry: Ok(crate::cli::cfgupgrade::main),
    },
    Applet {
        name: "hail",
        kind: Kind::Tool,
        summary: "iallocator plugin",
        entry: Err("htools"),
    },
    Applet {
        name: "hbal",
        kind: Kind::Tool,
        summary: "cluster balancer",
        entry: Err("htools"),
    },
    Applet {
        name: "hspace",
        kind: Kind::Tool,
        summary: "capacity planning",
        entry: Err("htools"),
    },
];

/// Finds an applet by installed name.
pub fn find(name: &str) -> Option<&'static Applet> {
    APPLETS.iter().find(|a| a.name == name)
}

/// Runs the program named by `argv[0]`, or by `argv[1]` when started as
/// `ganeti`. Returns the process exit code.
pub fn dispatch(argv: Vec<OsString>) -> u8 {
    let mut args = Vec::with_capacity(argv.len());
    for (i, a) in argv.into_iter().enumerate() {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(bad) => {
                eprintln!("argument {i} is not valid UTF-8: {}", bad.to_string_lossy());
                return EXIT_UNKNOWN_PROGRAM;
            }
        }
    }
    let argv0 = args.first().map(String::as_str).unwrap_or("ganeti");
    let name = std::path::Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("ganeti")
        .to_string();
    if name == "ganeti" || name == "ganeti-rs" {
        return dispatch_multicall(&args[1.min(args.len())..]);
    }
    run_applet(&name, &args[1.min(args.len())..])
}

fn dispatch_multicall(args: &[String]) -> u8 {
    match args.first().map(String::as_str) {
        None | Some("-h") | Some("--help") | Some("help") => {
            print_usage();
            if args.is_empty() {
                EXIT_UNKNOWN_PROGRAM
            } else {
                0
            }
        }
        Some("--list") if args.get(1).map(String::as_str) == Some("--names") => {
            print_names();
            0
        }
        Some("--list") => {
            print_list();
            0
        }
        Some("--version") => {
            print_version("ganeti");
            0
        }
        Some("daemon-util") => crate::daemons::daemon_util::main("daemon-util", &args[1..]),
        Some(prog) => run_applet(prog, &args[1..]),
    }
}

fn run_applet(name: &str, args: &[String]) -> u8 {
    let Some(applet) = find(name) else {
        eprintln!("ganeti: unknown program {name:?}; valid programs are:");
        for a in APPLETS {
            eprintln!("  {}", a.name);
        }
        eprintln!("  daemon-util (as `ganeti daemon-util`)");
        return EXIT_UNKNOWN_PROGRAM;
    };
    if matches!(args.first().map(String::as_str), Some("--version")) {
        print_version(name);
        return 0;
    }
    match applet.entry {
        Ok(entry) => entry(name, args),
        Err(comes_with) => {
            eprintln!(
                "{name}: not implemented yet in ganeti-rs {}; it comes with {comes_with}",
                crate::constants::RELEASE_VERSION
            );
            EXIT_NOT_IMPLEMENTED
        }
    }
}

#[allow(clippy::print_stdout)]
fn print_list() {
    for a in APPLETS {
        let state = if a.entry.is_ok() {
            ""
        } else {
            " (not built yet)"
        };
        println!("{:<16} {}{state}", a.name, a.summary);
    }
}

/// `ganeti --list --names`: `name kind` lines (kind: `daemon`, `admin`,
/// `tool`), every program whether built or not, for `make install` and
/// `install.sh`, so the installed links always match this table.
#[allow(clippy::print_stdout)]
fn print_names() {
    for a in APPLETS {
        let kind = match a.kind {
            Kind::Daemon => "daemon",
            Kind::Admin => "admin",
            Kind::Tool => "tool",
        };
        println!("{} {kind}", a.name);
    }
}

#[allow(clippy::print_stdout)]
fn print_version(name: &str) {
    println!(
        "{name} (ganeti-rs) {}\nCompatible with Ganeti {}",
        crate::constants::RELEASE_VERSION,
        crate::constants::GANETI_COMPAT_VERSION
    );
}

#[allow(clippy::print_stdout)]
fn print_usage() {
    println!(
        "usage: ganeti PROGRAM [ARGS...]\n       ganeti --list\n       ganeti daemon-util start|stop|check|start-all|stop-all|check-all [DAEMON]\n\n\
         The binary also runs as PROGRAM when started under that name (a symlink)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn unknown_program_exits_1() {
        assert_eq!(
            dispatch(argv(&["/usr/sbin/gnt-frobnicate"])),
            EXIT_UNKNOWN_PROGRAM
        );
        assert_eq!(
            dispatch(argv(&["ganeti", "gnt-frobnicate"])),
            EXIT_UNKNOWN_PROGRAM
        );
    }

    #[test]
    fn unbuilt_programs_refuse() {
        assert_eq!(dispatch(argv(&["/usr/bin/hbal"])), EXIT_NOT_IMPLEMENTED);
        assert_eq!(
            dispatch(argv(&["ganeti", "hspace", "--simulate"])),
            EXIT_NOT_IMPLEMENTED
        );
    }

    #[test]
    fn names_are_unique_and_complete() {
        let mut names: Vec<_> = APPLETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 18);
    }
}
