//! Runs the built `ganeti cfgupgrade` on copies of Ganeti's own config
//! fixtures (package ganeti-testsuite) and on broken files, checking the
//! exit status, the messages, and what is (and is not) left on disk.

#[cfg(test)]
mod tests {
    use ganeti::config::upgrade::{inventory, CONFIG_VERSION};
    use serde_json::Value;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Output, Stdio};

    const FIXTURE_DIR: &str = "/usr/share/ganeti/testsuite/test/data";
    const FIXTURE_VERSIONS: &[&str] = &[
        "2.7", "2.8", "2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "2.15", "2.16",
    ];

    /// A scratch data directory, removed on drop.
    struct DataDir(PathBuf);

    impl DataDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("ganeti-cfgupgrade-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            DataDir(dir)
        }

        fn config(&self) -> PathBuf {
            self.0.join("config.data")
        }

        fn put_config(&self, data: &[u8], mode: u32) {
            // Test setup, not a config write by the system under test.
            #[allow(clippy::disallowed_methods)]
            fs::write(self.config(), data).unwrap();
            fs::set_permissions(self.config(), fs::Permissions::from_mode(mode)).unwrap();
        }

        fn backups(&self) -> Vec<PathBuf> {
            let mut out: Vec<PathBuf> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("config.data.backup-")
                })
                .collect();
            out.sort();
            out
        }

        fn entries(&self) -> usize {
            fs::read_dir(&self.0).unwrap().count()
        }
    }

    impl Drop for DataDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn cfgupgrade(dir: &Path, extra: &[&str]) -> Output {
        // Tests run the real binary as a child, which sys::cmd::Runner exists to
        // do for production code; here std's Command is the plain tool.
        #[allow(clippy::disallowed_methods)]
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ganeti"));
        cmd.arg("cfgupgrade")
            .arg("--path")
            .arg(dir)
            .arg("--ignore-hostname")
            .args(extra)
            .env_remove("GANETI_ROOTDIR")
            .env_remove("GANETI_HOSTNAME")
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }

    fn stderr(out: &Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn fixtures() -> Option<PathBuf> {
        let dir = Path::new(FIXTURE_DIR);
        if dir.is_dir() {
            Some(dir.to_path_buf())
        } else {
            eprintln!("skipping: {FIXTURE_DIR} not installed (apt-get install ganeti-testsuite)");
            None
        }
    }

    fn fixture_bytes(dir: &Path, version: &str) -> Vec<u8> {
        fs::read(dir.join(format!("cluster_config_{version}.json"))).unwrap()
    }

    #[test]
    fn upgrades_every_fixture_once_and_then_does_nothing() {
        let Some(fixtures) = fixtures() else { return };
        for version in FIXTURE_VERSIONS {
            let data = DataDir::new(&format!("fixture-{version}"));
            let original = fixture_bytes(&fixtures, version);
            data.put_config(&original, 0o640);

            let out = cfgupgrade(&data.0, &["-f"]);
            assert!(out.status.success(), "{version}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("Configuration successfully upgraded to version 3.0"),
                "{version}: {}",
                stderr(&out)
            );
            let written = fs::read(data.config()).unwrap();
            assert!(written.ends_with(b"\n"));
            let new: Value = serde_json::from_slice(&written).unwrap();
            let old: Value = serde_json::from_slice(&original).unwrap();
            assert_eq!(new["version"], CONFIG_VERSION, "{version}");
            let lost = inventory(&old).missing_from(&inventory(&new));
            assert!(lost.is_empty(), "{version} lost {lost:?}");
            let mode = fs::metadata(data.config()).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o640, "{version}: file mode not kept");

            let backups = data.backups();
            assert_eq!(backups.len(), 1, "{version}: {backups:?}");
            assert_eq!(fs::read(&backups[0]).unwrap(), original, "{version}");

            // Second run: nothing to do, nothing written, no second backup.
            let out = cfgupgrade(&data.0, &["-f", "--verbose"]);
            assert!(out.status.success(), "{version}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("already at version 3.0"),
                "{}",
                stderr(&out)
            );
            assert_eq!(fs::read(data.config()).unwrap(), written, "{version}");
            assert_eq!(data.backups().len(), 1, "{version}");
        }
    }

    #[test]
    fn dry_run_writes_nothing() {
        let Some(fixtures) = fixtures() else { return };
        let data = DataDir::new("dry-run");
        let original = fixture_bytes(&fixtures, "2.7");
        data.put_config(&original, 0o600);
        let out = cfgupgrade(&data.0, &["-f", "--dry-run", "-v"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("Dry run"), "{}", stderr(&out));
        assert!(stderr(&out).contains("Found configuration version 2070000"));
        assert_eq!(fs::read(data.config()).unwrap(), original);
        assert_eq!(data.entries(), 1, "no backup or temporary file left");
    }

    #[test]
    fn truncated_file_is_reported_and_left_alone() {
        let data = DataDir::new("truncated");
        let original = br#"{"version": 2160000, "cluster": {"cluster_name": "#.to_vec();
        data.put_config(&original, 0o600);
        let out = cfgupgrade(&data.0, &["-f"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        let path = data.config().display().to_string();
        assert!(err.contains(&format!("{path}:1:")), "{err}");
        assert!(err.contains("not valid JSON"), "{err}");
        assert_eq!(err.lines().count(), 1, "the error is printed once: {err}");
        assert_eq!(fs::read(data.config()).unwrap(), original);
        assert_eq!(data.entries(), 1);
    }

    #[test]
    fn future_version_is_refused() {
        let data = DataDir::new("future");
        let original = br#"{"version": 3010000, "cluster": {}}"#.to_vec();
        data.put_config(&original, 0o600);
        let out = cfgupgrade(&data.0, &["-f"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("3.1.0") && err.contains("3010000"), "{err}");
        assert!(err.contains("2.7.0") && err.contains("3.0.0"), "{err}");
        assert_eq!(fs::read(data.config()).unwrap(), original);
        assert_eq!(data.entries(), 1);
    }

    #[test]
    fn missing_config_names_the_file() {
        let data = DataDir::new("missing");
        let out = cfgupgrade(&data.0, &["-f"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains(&data.config().display().to_string()), "{err}");
        assert_eq!(data.entries(), 0);
    }

    #[test]
    fn without_force_and_without_a_terminal_it_refuses() {
        let data = DataDir::new("no-force");
        let original = br#"{"version": 2160000}"#.to_vec();
        data.put_config(&original, 0o600);
        let out = cfgupgrade(&data.0, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("-f"), "{}", stderr(&out));
        assert_eq!(fs::read(data.config()).unwrap(), original);
    }

    #[test]
    fn downgrade_is_not_supported() {
        let data = DataDir::new("downgrade");
        let out = cfgupgrade(&data.0, &["-f", "--downgrade"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("not supported"), "{}", stderr(&out));
    }

    #[test]
    fn wrong_master_is_refused_unless_ignored() {
        let Some(fixtures) = fixtures() else { return };
        let data = DataDir::new("master");
        let original = fixture_bytes(&fixtures, "2.16");
        data.put_config(&original, 0o600);
        #[allow(clippy::disallowed_methods)]
        fs::write(
            data.0.join("ssconf_master_node"),
            b"not-this-host.invalid\n",
        )
        .unwrap();
        #[allow(clippy::disallowed_methods)]
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ganeti"))
            .args(["cfgupgrade", "-f", "--path"])
            .arg(&data.0)
            .env_remove("GANETI_ROOTDIR")
            .env_remove("GANETI_HOSTNAME")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("--ignore-hostname"),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read(data.config()).unwrap(), original);
    }
}
