//! `plain` disks: LVM logical volumes (Ganeti's `LogicalVolume` in
//! `storage/bdev.py`).
//!
//! **Not exercised on this machine**: the kernel has no device-mapper, so
//! `lvcreate` cannot work here. The command lines are tested through the
//! recording runner and the `lvs` parser on the real output in Ganeti's test
//! suite (`test/data/lvs_lv.txt`).
//!
//! `logical_id` is `[vg, lv]`; the device is `/dev/<vg>/<lv>`. Commands:
//! `lvcreate -Wn -L<size>m -n<lv> -i<stripes> <vg>`, `lvremove -f <vg>/<lv>`,
//! `lvchange -ay /dev/<vg>/<lv>` (assemble; shutdown leaves the LV active,
//! as Ganeti), `lvextend -L +<n>m [--test] /dev/<vg>/<lv>`,
//! `lvchange --deltag/--addtag` for the owner tag, and `lvs` with the
//! field list below for existence, size and state.

use super::{
    id_list, id_str, param_text, run_tool, Access, BlockDevice, DeviceStatus, GrowLayer, GrowMode,
    LocalDiskStatus, StorageError,
};
use crate::rpc::proto::DiskSpec;
use crate::sys::cmd::{Command, Runner};

/// Fields asked of `lvs`, in order (the layout of Ganeti's LV data
/// collector, which `lvs_lv.txt` records).
pub const LVS_FIELDS: &[&str] = &[
    "lv_uuid",
    "lv_name",
    "lv_attr",
    "lv_major",
    "lv_minor",
    "lv_kernel_major",
    "lv_kernel_minor",
    "lv_size",
    "seg_count",
    "lv_tags",
    "modules",
    "vg_uuid",
    "vg_name",
    "segtype",
    "seg_start",
    "seg_start_pe",
    "seg_size",
    "seg_tags",
    "seg_pe_ranges",
    "devices",
];
/// Separator asked of `lvs`.
pub const LVS_SEPARATOR: &str = ";";

/// One line of `lvs` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvInfo {
    /// LV UUID.
    pub uuid: String,
    /// LV name.
    pub name: String,
    /// `lv_attr` (`-wi-ao`: first char `v` means virtual, i.e. its disk
    /// is gone; fifth `a` means active).
    pub attr: String,
    /// Kernel major number (-1 when inactive).
    pub kernel_major: i64,
    /// Kernel minor number.
    pub kernel_minor: i64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Tags.
    pub tags: Vec<String>,
    /// Volume group.
    pub vg_name: String,
    /// Segment type (`linear`, `striped`, …).
    pub segtype: String,
    /// Devices (`/dev/sda5(0)`).
    pub devices: String,
}

impl LvInfo {
    /// Whether the LV lost its backing disk (`v`irtual).
    pub fn is_virtual(&self) -> bool {
        self.attr.starts_with('v')
    }

    /// Whether the LV is active.
    pub fn is_active(&self) -> bool {
        self.attr.chars().nth(4) == Some('a')
    }
}

/// The `lvs` command listing the volumes of `vg`.
pub fn lvs_command(vg: &str) -> Command {
    Command::new([
        "lvs".to_string(),
        "--noheadings".into(),
        "--units=b".into(),
        format!("--separator={LVS_SEPARATOR}"),
        format!("-o{}", LVS_FIELDS.join(",")),
        vg.to_string(),
    ])
}

/// Parses `lvs` output asked with [`LVS_FIELDS`] and `--units=b`.
pub fn parse_lvs(output: &str) -> Result<Vec<LvInfo>, StorageError> {
    let mut out = Vec::new();
    for (n, line) in output.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parse = |reason: String| StorageError::Parse {
            what: format!("lvs output line {}", n + 1),
            reason,
        };
        let f: Vec<&str> = line.split(LVS_SEPARATOR).collect();
        if f.len() != LVS_FIELDS.len() {
            return Err(parse(format!(
                "{} fields instead of {}",
                f.len(),
                LVS_FIELDS.len()
            )));
        }
        let int = |i: usize| -> Result<i64, StorageError> {
            f[i].trim()
                .parse()
                .map_err(|_| parse(format!("{} {:?} is not a number", LVS_FIELDS[i], f[i])))
        };
        let size_text = f[7].trim().trim_end_matches('B');
        let size_bytes = size_text
            .parse()
            .map_err(|_| parse(format!("lv_size {:?} is not a byte count", f[7])))?;
        if f[2].len() < 6 {
            return Err(parse(format!("lv_attr {:?} is shorter than 6", f[2])));
        }
        out.push(LvInfo {
            uuid: f[0].to_string(),
            name: f[1].to_string(),
            attr: f[2].to_string(),
            kernel_major: int(5)?,
            kernel_minor: int(6)?,
            size_bytes,
            tags: f[9]
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            vg_name: f[12].to_string(),
            segtype: f[13].to_string(),
            devices: f[19].to_string(),
        });
    }
    Ok(out)
}

/// Ganeti's rule for VG and LV names (`_ValidateName`).
pub fn valid_lvm_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c))
        && ![".", "..", "snapshot", "pvmove"].contains(&name)
        && !name.contains("_mlog")
        && !name.contains("_mimage")
}

/// A logical volume.
pub struct LogicalVolume<'a> {
    vg: String,
    lv: String,
    stripes: u32,
    runner: &'a dyn Runner,
}

impl<'a> LogicalVolume<'a> {
    /// Decodes `disk` (`[vg, lv]`, disk parameter `stripes`).
    pub fn new(disk: &DiskSpec, runner: &'a dyn Runner) -> Result<Self, StorageError> {
        let items = id_list(disk, 2)?;
        let vg = id_str(disk, items, 0)?;
        let lv = id_str(disk, items, 1)?;
        for name in [&vg, &lv] {
            if !valid_lvm_name(name) {
                return Err(super::bad_id(disk, format!("invalid LVM name {name:?}")));
            }
        }
        let stripes = match param_text(disk, "stripes") {
            None => 1,
            Some(s) => {
                s.parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| StorageError::BadParam {
                        disk: super::disk_label(disk),
                        param: "stripes".into(),
                        reason: format!("{s:?} is not a positive integer"),
                    })?
            }
        };
        Ok(LogicalVolume {
            vg,
            lv,
            stripes,
            runner,
        })
    }

    /// `/dev/<vg>/<lv>`.
    pub fn dev_path(&self) -> String {
        format!("/dev/{}/{}", self.vg, self.lv)
    }

    /// The LV's `lvs` record, if it exists.
    pub fn info(&self) -> Result<Option<LvInfo>, StorageError> {
        let out = run_tool(self.runner, &lvs_command(&self.vg), || {
            format!("listing the logical volumes of {}", self.vg)
        })?;
        Ok(parse_lvs(&out.stdout)?
            .into_iter()
            .find(|i| i.name == self.lv))
    }

    fn require(&self) -> Result<LvInfo, StorageError> {
        self.info()?.ok_or_else(|| StorageError::Missing {
            device: self.dev_path(),
        })
    }

    fn run(&self, argv: Vec<String>, what: &str) -> Result<String, StorageError> {
        let out = run_tool(self.runner, &Command::new(argv), || {
            format!("{what} {}", self.dev_path())
        })?;
        Ok(out.stdout)
    }
}

impl BlockDevice for LogicalVolume<'_> {
    fn dev_type(&self) -> &'static str {
        "plain"
    }

    fn create(&self, size_mib: u64) -> Result<(), StorageError> {
        if self.info()?.is_some() {
            return Err(StorageError::Exists {
                device: self.dev_path(),
            });
        }
        self.run(
            vec![
                "lvcreate".into(),
                "-Wn".into(),
                format!("-L{size_mib}m"),
                format!("-n{}", self.lv),
                format!("-i{}", self.stripes),
                self.vg.clone(),
            ],
            "creating logical volume",
        )?;
        Ok(())
    }

    fn remove(&self) -> Result<(), StorageError> {
        if self.info()?.is_none() {
            return Ok(());
        }
        self.run(
            vec![
                "lvremove".into(),
                "-f".into(),
                format!("{}/{}", self.vg, self.lv),
            ],
            "removing logical volume",
        )?;
        Ok(())
    }

    fn exists(&self) -> Result<bool, StorageError> {
        Ok(self.info()?.is_some())
    }

    fn assemble(&self) -> Result<Access, StorageError> {
        self.require()?;
        // Always activate: VGs have been seen inactive after boot (Ganeti).
        self.run(
            vec!["lvchange".into(), "-ay".into(), self.dev_path()],
            "activating logical volume",
        )?;
        Ok(Access {
            path: self.dev_path(),
            uris: Vec::new(),
        })
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        // LVs stay active (Ganeti: Shutdown is a no-op).
        Ok(())
    }

    fn grow(
        &self,
        _current_size_mib: u64,
        amount_mib: u64,
        mode: GrowMode,
        layer: GrowLayer,
    ) -> Result<(), StorageError> {
        if layer == GrowLayer::Device {
            return Ok(());
        }
        self.require()?;
        let mut argv = vec![
            "lvextend".to_string(),
            "-L".into(),
            format!("+{amount_mib}m"),
        ];
        if mode == GrowMode::DryRun {
            argv.push("--test".into());
        }
        argv.push(self.dev_path());
        self.run(argv, "growing logical volume")?;
        Ok(())
    }

    fn size_bytes(&self) -> Result<u64, StorageError> {
        Ok(self.require()?.size_bytes)
    }

    fn status(&self) -> Result<DeviceStatus, StorageError> {
        let info = self.require()?;
        let mut st = DeviceStatus::healthy(self.dev_path());
        if info.is_virtual() {
            st.is_degraded = true;
            st.ldisk = LocalDiskStatus::Faulty;
        }
        Ok(st)
    }

    fn set_info(&self, text: &str) -> Result<(), StorageError> {
        let info = self.require()?;
        let tag = super::ext::sanitize_metadata(text);
        for old in &info.tags {
            self.run(
                vec![
                    "lvchange".into(),
                    "--deltag".into(),
                    old.clone(),
                    self.dev_path(),
                ],
                "removing a tag from logical volume",
            )?;
        }
        self.run(
            vec!["lvchange".into(), "--addtag".into(), tag, self.dev_path()],
            "tagging logical volume",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::disk;
    use super::*;
    use crate::paths::Paths;
    use crate::storage::for_disk;
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    const TESTSUITE_LVS: &str = "/usr/share/ganeti/testsuite/test/data/lvs_lv.txt";

    fn fixture() -> Option<String> {
        match std::fs::read_to_string(TESTSUITE_LVS) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("skipping: {TESTSUITE_LVS} unavailable ({e}); install ganeti-testsuite");
                None
            }
        }
    }

    #[test]
    fn parses_ganetis_lvs_fixture() {
        let Some(text) = fixture() else { return };
        let lvs = parse_lvs(&text).unwrap();
        assert_eq!(lvs.len(), 2);
        let data = &lvs[0];
        assert_eq!(data.name, "df9ff3f6-a833-48ff-8bd5-bff2eaeab759.disk0_data");
        assert_eq!(data.vg_name, "xenvg");
        assert_eq!(data.size_bytes, 1024 * 1024 * 1024);
        assert_eq!((data.kernel_major, data.kernel_minor), (253, 0));
        assert_eq!(data.tags, vec!["originstname+instance1.example.com"]);
        assert_eq!(data.segtype, "linear");
        assert_eq!(data.devices, "/dev/sda5(0)");
        assert!(data.is_active() && !data.is_virtual());
        assert_eq!(lvs[1].size_bytes, 128 * 1024 * 1024);
        assert_eq!(lvs[1].kernel_minor, 1);
    }

    #[test]
    fn rejects_malformed_lvs_lines() {
        assert!(parse_lvs("a;b;c\n").is_err());
        let Some(text) = fixture() else { return };
        let line = text
            .lines()
            .next()
            .unwrap()
            .replace("1073741824B;1;", "lots;1;");
        let err = parse_lvs(&line).unwrap_err();
        assert!(err.to_string().contains("lv_size"), "{err}");
    }

    #[test]
    fn command_lines() {
        let Some(text) = fixture() else { return };
        let r = RecordingRunner::new();
        let mut d = disk(
            "plain",
            json!(["xenvg", "df9ff3f6-a833-48ff-8bd5-bff2eaeab759.disk0_data"]),
        );
        d.params.insert("stripes".into(), json!(2));
        let dev = for_disk(&d, &Paths::production(), &r).unwrap();
        let path = "/dev/xenvg/df9ff3f6-a833-48ff-8bd5-bff2eaeab759.disk0_data";
        // create: absent (empty lvs), then lvcreate; assemble: lvs,
        // lvchange; size: lvs.
        for a in ["", "", &text, "", &text] {
            r.push_answer(Ok(a));
        }
        dev.create(1024).unwrap();
        assert_eq!(dev.assemble().unwrap().path, path);
        assert_eq!(dev.size_bytes().unwrap(), 1 << 30);
        let all: Vec<String> = r.calls().iter().map(|c| c.display()).collect();
        let lvs = lvs_command("xenvg").display();
        assert_eq!(
            all,
            vec![
                lvs.clone(),
                "lvcreate -Wn -L1024m -ndf9ff3f6-a833-48ff-8bd5-bff2eaeab759.disk0_data -i2 xenvg"
                    .to_string(),
                lvs.clone(),
                format!("lvchange -ay {path}"),
                lvs.clone(),
            ]
        );
    }

    #[test]
    fn grow_remove_tag_and_status_command_lines() {
        let Some(text) = fixture() else { return };
        let r = RecordingRunner::new();
        let d = disk(
            "plain",
            json!(["xenvg", "df9ff3f6-a833-48ff-8bd5-bff2eaeab759.disk0_meta"]),
        );
        let dev = for_disk(&d, &Paths::production(), &r).unwrap();
        let path = "/dev/xenvg/df9ff3f6-a833-48ff-8bd5-bff2eaeab759.disk0_meta";
        let virt = text.replace("-wi-ao", "vwi-ao");
        let answers: [&str; 9] = [&text, "", &text, "", &text, "", "", &virt, &text];
        for a in answers {
            r.push_answer(Ok(a));
        }
        dev.grow(128, 64, GrowMode::DryRun, GrowLayer::BackingStore)
            .unwrap();
        dev.grow(128, 64, GrowMode::Apply, GrowLayer::BackingStore)
            .unwrap();
        dev.set_info("originstname+inst2").unwrap();
        let st = dev.status().unwrap();
        assert!(st.is_degraded && st.ldisk == LocalDiskStatus::Faulty);
        dev.remove().unwrap();
        dev.grow(128, 64, GrowMode::Apply, GrowLayer::Device)
            .unwrap();
        let all: Vec<String> = r.calls().iter().map(|c| c.display()).collect();
        let lvs = lvs_command("xenvg").display();
        assert_eq!(
            all,
            vec![
                lvs.clone(),
                format!("lvextend -L +64m --test {path}"),
                lvs.clone(),
                format!("lvextend -L +64m {path}"),
                lvs.clone(),
                format!("lvchange --deltag originstname+instance1.example.com {path}"),
                format!("lvchange --addtag originstname+inst2 {path}"),
                lvs.clone(),
                lvs.clone(),
                "lvremove -f xenvg/df9ff3f6-a833-48ff-8bd5-bff2eaeab759.disk0_meta".to_string(),
            ]
        );
        // A missing LV: removal is done already.
        r.push_answer(Ok(""));
        dev.remove().unwrap();
    }

    #[test]
    fn lvm_names_are_checked() {
        let r = RecordingRunner::new();
        for bad in [
            json!(["xenvg", "a b"]),
            json!(["xenvg", "x_mlog"]),
            json!(["..", "lv"]),
        ] {
            assert!(for_disk(&disk("plain", bad), &Paths::production(), &r).is_err());
        }
        let mut d = disk("plain", json!(["xenvg", "lv"]));
        d.params.insert("stripes".into(), json!(0));
        assert!(for_disk(&d, &Paths::production(), &r).is_err());
    }
}
