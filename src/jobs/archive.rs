//! The job archive: `queue/archive/<id / 10000>/job-<id>`.
//!
//! Archived jobs are final and never change; archiving is a rename done by
//! the committer (see `queue.rs`). This file reads them back, finds the
//! highest id ever archived (so ids stay monotonic even if the serial file
//! is lost) and parses job file names.

use super::file::{JobId, QueuedJob};
use crate::paths::Paths;
use std::fs;
use std::path::Path;

/// The job id named by a queue file name (`job-<digits>`, Ganeti's
/// `JOB_FILE_RE`), if it is one.
pub fn job_id_of_file_name(name: &str) -> Option<JobId> {
    let digits = name.strip_prefix("job-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(JobId)
}

/// Reads an archived job; `None` if it is not archived or cannot be read.
pub fn load_archived(paths: &Paths, id: JobId) -> Option<QueuedJob> {
    let data = fs::read(paths.queue_archived_job_file(id.0)).ok()?;
    QueuedJob::from_json(&data).ok().filter(|j| j.id == id)
}

/// The highest job id present in the archive (0 when empty). Only the
/// highest-numbered subdirectory holding a job file is listed.
pub fn highest_archived_id(archive_dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(archive_dir) else {
        return 0;
    };
    let mut subdirs: Vec<u64> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    subdirs.sort_unstable_by(|a, b| b.cmp(a));
    for sub in subdirs {
        let Ok(files) = fs::read_dir(archive_dir.join(sub.to_string())) else {
            continue;
        };
        let max = files
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(job_id_of_file_name))
            .map(|id| id.0)
            .max();
        if let Some(max) = max {
            return max;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(job_id_of_file_name("job-12"), Some(JobId(12)));
        assert_eq!(job_id_of_file_name("job-"), None);
        assert_eq!(job_id_of_file_name("job-12.corrupt"), None);
        assert_eq!(job_id_of_file_name(".job-12.tmp-1-2"), None);
        assert_eq!(job_id_of_file_name("serial"), None);
    }

    #[test]
    fn highest_archived_looks_at_the_top_subdir() {
        let root = std::env::temp_dir().join(format!("ganeti-archive-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let paths = Paths::virtual_node(&root.join("node1"), "node1").unwrap();
        let dir = paths.queue_archive_dir();
        assert_eq!(highest_archived_id(&dir), 0);
        for id in [5u64, 9_999, 10_003] {
            let f = paths.queue_archived_job_file(id);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            crate::sys::fs::atomic_write(&f, b"{}", 0o600).unwrap();
        }
        fs::create_dir_all(dir.join("7")).unwrap(); // empty subdir is skipped
        assert_eq!(highest_archived_id(&dir), 10_003);
        assert!(paths
            .queue_archived_job_file(10_003)
            .ends_with("queue/archive/1/job-10003"));
        fs::remove_dir_all(&root).unwrap();
    }
}
