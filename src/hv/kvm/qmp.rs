//! QMP client: QEMU's JSON monitor protocol over the instance's unix
//! socket (`RUN_DIR/kvm-hypervisor/ctrl/<name>.qmp`).
//!
//! One request at a time: read the greeting, negotiate with
//! `qmp_capabilities`, then send `{"execute": …}` lines and read until the
//! `return` or `error` answer, skipping asynchronous `event` messages.
//! Blocking, with a read timeout so a wedged QEMU cannot hang noded.

use crate::rpc::proto::MigrationStatus;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A failed QMP exchange.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Connecting, reading or writing the socket failed.
    #[error("QMP socket {path}: {what}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// QEMU said something we did not expect.
    #[error("QMP socket {path}: {reason}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// QEMU refused a command.
    #[error("QMP command {command} failed: {class}: {desc}")]
    Command {
        /// The command.
        command: String,
        /// QEMU's error class (`GenericError`, `CommandNotFound`, …).
        class: String,
        /// QEMU's message.
        desc: String,
    },
}

/// QEMU's version from the greeting or `--version`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct QemuVersion {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Micro.
    pub micro: u64,
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

impl QemuVersion {
    /// Parses `qemu-system-x86_64 --version` output
    /// (`QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1)`).
    pub fn from_version_output(text: &str) -> Option<QemuVersion> {
        let rest = text.split("version").nth(1)?;
        let word = rest.split_whitespace().next()?;
        let mut parts = word.split('.').map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u64>()
        });
        Some(QemuVersion {
            major: parts.next()?.ok()?,
            minor: parts.next()?.ok()?,
            micro: parts.next().and_then(Result::ok).unwrap_or(0),
        })
    }
}

/// An open, negotiated QMP connection.
#[derive(Debug)]
pub struct QmpClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    version: Option<QemuVersion>,
}

impl QmpClient {
    /// Connects to `path`, reads the greeting and leaves capabilities
    /// negotiation mode. Each later read waits at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<QmpClient, QmpError> {
        let io = |what: &'static str| {
            let path = path.to_path_buf();
            move |source| QmpError::Io { path, what, source }
        };
        let stream = UnixStream::connect(path).map_err(io("connecting"))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(io("setting the timeout"))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(io("setting the timeout"))?;
        let writer = stream.try_clone().map_err(io("cloning the socket"))?;
        let mut client = QmpClient {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
            version: None,
        };
        let greeting = client.read_message()?;
        let Some(qmp) = greeting.get("QMP") else {
            return Err(client.protocol(format!("expected a greeting, got {greeting}")));
        };
        let v = &qmp["version"]["qemu"];
        client.version = match (
            v["major"].as_u64(),
            v["minor"].as_u64(),
            v["micro"].as_u64(),
        ) {
            (Some(major), Some(minor), Some(micro)) => Some(QemuVersion {
                major,
                minor,
                micro,
            }),
            _ => None,
        };
        client.execute("qmp_capabilities", None)?;
        Ok(client)
    }

    /// QEMU's version as its greeting gave it.
    pub fn version(&self) -> Option<QemuVersion> {
        self.version
    }

    fn protocol(&self, reason: String) -> QmpError {
        QmpError::Protocol {
            path: self.path.clone(),
            reason,
        }
    }

    fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                what: "reading",
                source,
            })?;
        if n == 0 {
            return Err(self.protocol("QEMU closed the connection".into()));
        }
        serde_json::from_str(line.trim())
            .map_err(|e| self.protocol(format!("invalid JSON {:?}: {e}", line.trim())))
    }

    /// Runs `command` with `arguments`, returning its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut req = json!({ "execute": command });
        if let Some(a) = arguments {
            req["arguments"] = a;
        }
        let mut line = req.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                what: "writing",
                source,
            })?;
        loop {
            let msg = self.read_message()?;
            if msg.get("event").is_some() {
                continue;
            }
            if let Some(ret) = msg.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = msg.get("error") {
                return Err(QmpError::Command {
                    command: command.to_string(),
                    class: err["class"].as_str().unwrap_or("unknown").to_string(),
                    desc: err["desc"].as_str().unwrap_or("").to_string(),
                });
            }
            return Err(self.protocol(format!("unexpected answer to {command}: {msg}")));
        }
    }

    /// `query-status`: QEMU's run state (`running`, `paused`, `inmigrate`,
    /// `postmigrate`, `shutdown`, `guest-panicked`, …).
    pub fn query_status(&mut self) -> Result<String, QmpError> {
        let r = self.execute("query-status", None)?;
        r["status"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.protocol(format!("query-status without a status: {r}")))
    }

    /// `system_powerdown`: ACPI power button.
    pub fn system_powerdown(&mut self) -> Result<(), QmpError> {
        self.execute("system_powerdown", None).map(drop)
    }

    /// `system_reset`: hard reset of the guest.
    pub fn system_reset(&mut self) -> Result<(), QmpError> {
        self.execute("system_reset", None).map(drop)
    }

    /// `quit`: QEMU exits at once.
    pub fn quit(&mut self) -> Result<(), QmpError> {
        self.execute("quit", None).map(drop)
    }

    /// `stop`: pause the CPUs.
    pub fn stop(&mut self) -> Result<(), QmpError> {
        self.execute("stop", None).map(drop)
    }

    /// `cont`: resume the CPUs.
    pub fn cont(&mut self) -> Result<(), QmpError> {
        self.execute("cont", None).map(drop)
    }

    /// `balloon`: set the guest's memory target.
    pub fn balloon(&mut self, memory_mib: u64) -> Result<(), QmpError> {
        let bytes = memory_mib.saturating_mul(1024 * 1024);
        self.execute("balloon", Some(json!({ "value": bytes })))
            .map(drop)
    }

    /// `query-balloon`: the guest's current memory, MiB.
    pub fn query_balloon_mib(&mut self) -> Result<u64, QmpError> {
        let r = self.execute("query-balloon", None)?;
        r["actual"]
            .as_u64()
            .map(|b| b / (1024 * 1024))
            .ok_or_else(|| self.protocol(format!("query-balloon without actual: {r}")))
    }

    /// `migrate-set-parameters` for bandwidth (MiB/s) and downtime (ms).
    pub fn set_migration_limits(
        &mut self,
        bandwidth_mib_per_sec: Option<u64>,
        downtime_ms: Option<u64>,
    ) -> Result<(), QmpError> {
        let mut args = serde_json::Map::new();
        if let Some(b) = bandwidth_mib_per_sec {
            args.insert("max-bandwidth".into(), json!(b.saturating_mul(1024 * 1024)));
        }
        if let Some(d) = downtime_ms {
            args.insert("downtime-limit".into(), json!(d));
        }
        if args.is_empty() {
            return Ok(());
        }
        self.execute("migrate-set-parameters", Some(Value::Object(args)))
            .map(drop)
    }

    /// `migrate` to `uri` (`tcp:HOST:PORT`).
    pub fn migrate(&mut self, uri: &str) -> Result<(), QmpError> {
        self.execute("migrate", Some(json!({ "uri": uri })))
            .map(drop)
    }

    /// `migrate-incoming` on a QEMU started with `-incoming defer`.
    pub fn migrate_incoming(&mut self, uri: &str) -> Result<(), QmpError> {
        self.execute("migrate-incoming", Some(json!({ "uri": uri })))
            .map(drop)
    }

    /// `query-migrate`, in the contract's terms.
    pub fn query_migrate(&mut self) -> Result<MigrationStatus, QmpError> {
        let r = self.execute("query-migrate", None)?;
        Ok(migration_status_of(&r))
    }
}

/// Maps a `query-migrate` answer to [`MigrationStatus`]: QEMU's
/// `completed`, `failed` and `cancelled` pass through, every in-between
/// state (`setup`, `active`, `device`, …) is `active`; no status at all
/// (nothing started) counts as `active` too, the caller polls again.
pub fn migration_status_of(r: &Value) -> MigrationStatus {
    let qemu = r["status"].as_str().unwrap_or("active");
    let status = match qemu {
        "completed" | "failed" | "cancelled" => qemu,
        _ => "active",
    };
    MigrationStatus {
        status: status.to_string(),
        transferred_bytes: r["ram"]["transferred"].as_u64().unwrap_or(0),
        total_bytes: r["ram"]["total"].as_u64().unwrap_or(0),
        message: r["error-desc"].as_str().map(str::to_string),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake QMP server on `path`: greets with version 10.0.2, answers
    /// each command with `answer(command, arguments)`, and records the
    /// requests. Serves one connection per call of the returned handle's
    /// loop until `connections` have been served.
    pub(crate) fn fake_qmp_server(
        path: &Path,
        connections: usize,
        answer: impl Fn(&str, &Value) -> Value + Send + 'static,
    ) -> std::thread::JoinHandle<Vec<Value>> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..connections {
                let (stream, _) = listener.accept().unwrap();
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                writeln!(
                    w,
                    r#"{{"QMP": {{"version": {{"qemu": {{"micro": 2, "minor": 0, "major": 10}}, "package": ""}}, "capabilities": []}}}}"#
                )
                .unwrap();
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let req: Value = serde_json::from_str(line.trim()).unwrap();
                    let cmd = req["execute"].as_str().unwrap_or("").to_string();
                    // An event first, which the client must skip.
                    writeln!(w, r#"{{"event": "RESUME", "timestamp": {{}}}}"#).unwrap();
                    let a = answer(&cmd, &req["arguments"]);
                    writeln!(w, "{a}").unwrap();
                    seen.push(req);
                    line.clear();
                }
            }
            seen
        })
    }

    fn sock(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ganeti-qmp-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn negotiates_and_executes() {
        let path = sock("exec");
        let server = fake_qmp_server(&path, 1, |cmd, args| match cmd {
            "query-status" => json!({"return": {"status": "running", "running": true}}),
            "balloon" => {
                assert_eq!(args["value"], 256 * 1024 * 1024);
                json!({"return": {}})
            }
            "nope" => {
                json!({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})
            }
            _ => json!({"return": {}}),
        });
        let mut c = QmpClient::connect(&path, Duration::from_secs(10)).unwrap();
        assert_eq!(
            c.version(),
            Some(QemuVersion {
                major: 10,
                minor: 0,
                micro: 2
            })
        );
        assert_eq!(c.query_status().unwrap(), "running");
        c.balloon(256).unwrap();
        let e = c.execute("nope", None).unwrap_err().to_string();
        assert_eq!(
            e,
            "QMP command nope failed: CommandNotFound: The command nope has not been found"
        );
        drop(c);
        let seen = server.join().unwrap();
        let cmds: Vec<_> = seen.iter().map(|r| r["execute"].clone()).collect();
        assert_eq!(
            cmds,
            vec![
                json!("qmp_capabilities"),
                json!("query-status"),
                json!("balloon"),
                json!("nope")
            ]
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn garbage_and_missing_greeting_are_protocol_errors() {
        let path = sock("garbage");
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            writeln!(s, "{{\"return\": {{}}}}").unwrap();
            let (mut s, _) = listener.accept().unwrap();
            writeln!(s, "not json").unwrap();
        });
        let e = QmpClient::connect(&path, Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a greeting"), "{e}");
        let e = QmpClient::connect(&path, Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid JSON"), "{e}");
        t.join().unwrap();
        let e = QmpClient::connect(&sock("absent"), Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("connecting"), "{e}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn migration_status_mapping() {
        let s = migration_status_of(
            &json!({"status": "active", "ram": {"transferred": 10, "total": 100}}),
        );
        assert_eq!(
            (s.status.as_str(), s.transferred_bytes, s.total_bytes),
            ("active", 10, 100)
        );
        let s =
            migration_status_of(&json!({"status": "failed", "error-desc": "connection refused"}));
        assert_eq!(s.status, "failed");
        assert_eq!(s.message.as_deref(), Some("connection refused"));
        assert_eq!(
            migration_status_of(&json!({"status": "device"})).status,
            "active"
        );
        assert_eq!(
            migration_status_of(&json!({"status": "completed"})).status,
            "completed"
        );
    }

    #[test]
    fn version_output_parses() {
        let v = QemuVersion::from_version_output(
            "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)\nCopyright (c) 2003-2025",
        )
        .unwrap();
        assert_eq!(v.to_string(), "10.0.2");
        let v = QemuVersion::from_version_output("QEMU emulator version 7.2.15").unwrap();
        assert_eq!((v.major, v.minor), (7, 2));
        assert!(QemuVersion::from_version_output("bash: qemu: not found").is_none());
    }
}
