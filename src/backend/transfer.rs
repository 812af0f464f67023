//! Node side of the transfer procedures: `transfer_read` (the sending node
//! hands out one chunk of a disk or export file) and `transfer_pull` (the
//! receiving node copies a whole disk or file from another node, chunk by
//! chunk, over the cluster's mutual-TLS RPC).
//!
//! Pull model (ours; Ganeti uses socat-based import/export daemons): the
//! node that writes asks the node that reads, presenting the cluster
//! certificate every node holds. Memory stays bounded by one chunk
//! ([`TRANSFER_CHUNK_MAX_BYTES`]). A transfer end is either a disk, reached
//! through [`crate::storage`] (whose own checks decide which paths a disk
//! may have, e.g. `file-storage-paths`), or a file directly inside one
//! export directory ([`Paths::export_dir`]); no other path can be named.
//! Never reads the cluster config: the master puts both ends in the call.

use super::export;
use super::{decode, to_value};
use crate::error::chain;
use crate::paths::Paths;
use crate::rpc::b64;
use crate::rpc::proto::{
    TransferChunk, TransferDone, TransferEnd, TransferPullArgs, TransferReadArgs,
    TRANSFER_CHUNK_MAX_BYTES, TRANSFER_PULL, TRANSFER_READ,
};
use crate::storage;
use crate::sys::cmd::{RealRunner, Runner};
use serde_json::Value;
use sha1::{Digest, Sha1};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

/// How long one chunk may take to arrive (4 MiB over a slow link).
const CHUNK_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `procedure` if it is one of the transfer or export procedures;
/// `None` otherwise. Errors are the message for the RPC error reply.
pub fn handle(paths: &Paths, procedure: &str, args: Value) -> Option<Result<Value, String>> {
    handle_with(paths, &RealRunner, procedure, args)
}

/// [`handle`] with the runner for storage commands (tests record them).
pub fn handle_with(
    paths: &Paths,
    runner: &dyn Runner,
    procedure: &str,
    args: Value,
) -> Option<Result<Value, String>> {
    let result = match procedure {
        TRANSFER_READ => decode::<TransferReadArgs>(procedure, args)
            .and_then(|a| read(paths, runner, &a))
            .and_then(|c| to_value(&c)),
        TRANSFER_PULL => decode::<TransferPullArgs>(procedure, args)
            .and_then(|a| pull_over_rpc(paths, runner, &a))
            .and_then(|d| to_value(&d)),
        _ => return export::handle(paths, procedure, args),
    };
    Some(result)
}

/// A short name of a transfer end for messages.
pub fn end_label(end: &TransferEnd) -> String {
    match end {
        TransferEnd::Disk(d) => format!("disk {}", storage::disk_label(d)),
        TransferEnd::ExportFile { export, file } => format!("export file {export}/{file}"),
    }
}

/// Where `end` lives on this node: the disk's assembled device path, or
/// the export file's path (its name checked).
fn local_path(paths: &Paths, runner: &dyn Runner, end: &TransferEnd) -> Result<PathBuf, String> {
    match end {
        TransferEnd::Disk(disk) => {
            let dev = storage::for_disk(disk, paths, runner).map_err(|e| chain(&e))?;
            let access = dev
                .assemble()
                .map_err(|e| format!("assembling {}: {}", end_label(end), chain(&e)))?;
            if access.path.is_empty() {
                return Err(format!(
                    "{} has no local device path (userspace-only access cannot be copied)",
                    end_label(end)
                ));
            }
            Ok(PathBuf::from(access.path))
        }
        TransferEnd::ExportFile { export, file } => {
            export::check_name("export", export)?;
            export::check_name("export file", file)?;
            Ok(paths.export_dir().join(export).join(file))
        }
    }
}

fn io_msg(what: &str, path: &std::path::Path, e: &std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// `transfer_read`: up to `length` bytes of `source` from `offset`.
pub fn read(
    paths: &Paths,
    runner: &dyn Runner,
    a: &TransferReadArgs,
) -> Result<TransferChunk, String> {
    if a.length == 0 || a.length > TRANSFER_CHUNK_MAX_BYTES {
        return Err(format!(
            "invalid length {}: a chunk is 1 to {TRANSFER_CHUNK_MAX_BYTES} bytes",
            a.length
        ));
    }
    let path = local_path(paths, runner, &a.source)?;
    let mut f = File::open(&path).map_err(|e| io_msg("opening", &path, &e))?;
    // Seeking to the end measures block devices too (their metadata
    // length is 0).
    let size = f
        .seek(SeekFrom::End(0))
        .map_err(|e| io_msg("measuring", &path, &e))?;
    if a.offset >= size {
        return Ok(TransferChunk {
            data: String::new(),
            eof: true,
        });
    }
    f.seek(SeekFrom::Start(a.offset))
        .map_err(|e| io_msg("seeking in", &path, &e))?;
    let want = a.length.min(size - a.offset);
    let mut buf = Vec::new();
    f.take(want)
        .read_to_end(&mut buf)
        .map_err(|e| io_msg("reading", &path, &e))?;
    let end = a.offset + buf.len() as u64;
    Ok(TransferChunk {
        data: b64::encode(&buf),
        eof: end >= size,
    })
}

/// Opens the receiving end for writing: a disk in place (checked large
/// enough for `size_bytes`), an export file created or truncated.
fn open_dest(
    paths: &Paths,
    runner: &dyn Runner,
    dest: &TransferEnd,
    size_bytes: Option<u64>,
) -> Result<(File, PathBuf), String> {
    let path = local_path(paths, runner, dest)?;
    let f = match dest {
        TransferEnd::Disk(_) => {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_msg("opening", &path, &e))?;
            let have = f
                .seek(SeekFrom::End(0))
                .map_err(|e| io_msg("measuring", &path, &e))?;
            if let Some(want) = size_bytes.filter(|w| *w > have) {
                return Err(format!(
                    "{} is {have} bytes, too small for the {want} bytes to copy",
                    end_label(dest)
                ));
            }
            f.seek(SeekFrom::Start(0))
                .map_err(|e| io_msg("seeking in", &path, &e))?;
            f
        }
        TransferEnd::ExportFile { export, .. } => {
            let dir = paths.export_dir().join(export);
            crate::sys::fs::ensure_dir(&dir, 0o750).map_err(|e| chain(&e))?;
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| io_msg("creating", &path, &e))?
        }
    };
    Ok((f, path))
}

/// Copies into `dest` whatever `fetch(offset, length)` hands out, chunk by
/// chunk, until `size_bytes` are copied or the source ends. On failure an
/// export file is removed again; a disk is left as it is (the caller
/// removes disks it created).
pub fn pull_with(
    paths: &Paths,
    runner: &dyn Runner,
    dest: &TransferEnd,
    size_bytes: Option<u64>,
    mut fetch: impl FnMut(u64, u64) -> Result<TransferChunk, String>,
) -> Result<TransferDone, String> {
    let (mut f, path) = open_dest(paths, runner, dest, size_bytes)?;
    let mut copy = || -> Result<TransferDone, String> {
        let mut hash = Sha1::new();
        let mut offset = 0u64;
        loop {
            let length = match size_bytes {
                Some(total) if offset >= total => break,
                Some(total) => (total - offset).min(TRANSFER_CHUNK_MAX_BYTES),
                None => TRANSFER_CHUNK_MAX_BYTES,
            };
            let chunk = fetch(offset, length)?;
            let data = b64::decode(&chunk.data)
                .map_err(|e| format!("chunk at offset {offset} is not base64: {e}"))?;
            if data.len() as u64 > length {
                return Err(format!(
                    "the source sent {} bytes at offset {offset}, more than the {length} asked",
                    data.len()
                ));
            }
            f.write_all(&data)
                .map_err(|e| io_msg("writing", &path, &e))?;
            hash.update(&data);
            offset += data.len() as u64;
            if chunk.eof || data.is_empty() {
                if let Some(total) = size_bytes.filter(|t| offset < *t) {
                    return Err(format!("the source ended after {offset} of {total} bytes"));
                }
                break;
            }
        }
        f.sync_all().map_err(|e| io_msg("syncing", &path, &e))?;
        Ok(TransferDone {
            bytes: offset,
            sha1: hex(&hash.finalize()),
        })
    };
    let done = copy();
    if done.is_err() && matches!(dest, TransferEnd::ExportFile { .. }) {
        let _ = std::fs::remove_file(&path);
    }
    done
}

/// Size and SHA-1 of the file at `path`, read in chunks.
pub fn file_digest(path: &std::path::Path) -> Result<TransferDone, String> {
    let mut f = File::open(path).map_err(|e| io_msg("opening", path, &e))?;
    let mut hash = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| io_msg("reading", path, &e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(TransferDone {
        bytes,
        sha1: hex(&hash.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `transfer_pull`: [`pull_with`] reading from the source node over RPC,
/// presenting this node's copy of the cluster certificate.
fn pull_over_rpc(
    paths: &Paths,
    runner: &dyn Runner,
    a: &TransferPullArgs,
) -> Result<TransferDone, String> {
    use crate::rpc::{NodeRpc, Target};
    let port = if a.source_port == 0 {
        crate::net::noded_port(paths)
    } else {
        a.source_port
    };
    let client = crate::rpc::client::RpcClient::new(&paths.noded_cert(), port)
        .map_err(|e| format!("loading the cluster certificate: {}", chain(&e)))?;
    let target = Target::new(a.source_node.clone(), a.source_address.clone());
    let fetch = |offset: u64, length: u64| -> Result<TransferChunk, String> {
        let args = TransferReadArgs {
            source: a.source.clone(),
            offset,
            length,
        };
        let args = serde_json::to_value(&args).map_err(|e| e.to_string())?;
        let v = client
            .call_one(TRANSFER_READ, &target, &args, CHUNK_TIMEOUT)
            .map_err(|e| {
                format!(
                    "reading {} from node {} at offset {offset}: {}",
                    end_label(&a.source),
                    a.source_node,
                    chain(&e)
                )
            })?;
        serde_json::from_value(v)
            .map_err(|e| format!("unexpected answer from node {}: {e}", a.source_node))
    };
    pull_with(paths, runner, &a.dest, a.size_bytes, fetch)
        .map_err(|e| format!("copying into {}: {e}", end_label(&a.dest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::proto::DiskSpec;
    use crate::sys::cmd::RecordingRunner;
    use serde_json::json;

    fn node(tag: &str, name: &str) -> Paths {
        let p = crate::paths::test_support::temp_node(
            &format!("backend-transfer-{tag}"),
            name,
            &[
                "/etc/ganeti",
                "/srv/ganeti/file-storage",
                "/srv/ganeti/export",
            ],
        );
        let dir = p.under_root("/srv/ganeti/file-storage");
        crate::sys::fs::atomic_write(
            &p.file_storage_paths_file(),
            format!("{}\n", dir.display()).as_bytes(),
            0o644,
        )
        .unwrap();
        p
    }

    fn file_disk(p: &Paths, size_mib: u64) -> DiskSpec {
        DiskSpec {
            uuid: "uuid-0".into(),
            name: None,
            iv_name: "disk/0".into(),
            dev_type: "file".into(),
            logical_id: json!([
                "loop",
                p.under_root("/srv/ganeti/file-storage/inst1/disk0")
                    .display()
                    .to_string()
            ]),
            size_mib,
            mode: "rw".into(),
            params: Default::default(),
            children: vec![],
        }
    }

    fn make_disk(p: &Paths, d: &DiskSpec) -> PathBuf {
        let r = RecordingRunner::new();
        let dev = storage::for_disk(d, p, &r).unwrap();
        dev.create(d.size_mib).unwrap();
        PathBuf::from(dev.assemble().unwrap().path)
    }

    /// Bytes that differ at every position, so a misplaced chunk shows.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251).to_le_bytes()[0]).collect()
    }

    fn local_fetch<'a>(
        p: &'a Paths,
        source: TransferEnd,
        calls: &'a std::cell::Cell<u32>,
    ) -> impl FnMut(u64, u64) -> Result<TransferChunk, String> + 'a {
        move |offset, length| {
            calls.set(calls.get() + 1);
            read(
                p,
                &RecordingRunner::new(),
                &TransferReadArgs {
                    source: source.clone(),
                    offset,
                    length,
                },
            )
        }
    }

    #[test]
    fn disk_copies_between_nodes_in_chunks() {
        let a = node("copy", "node1");
        let b = node("copy", "node2");
        let src = file_disk(&a, 9);
        let src_path = make_disk(&a, &src);
        let data = pattern(9 << 20);
        crate::sys::fs::atomic_write(&src_path, &data, 0o600).unwrap();
        let dst = file_disk(&b, 9);
        let dst_path = make_disk(&b, &dst);
        let calls = std::cell::Cell::new(0);
        let done = pull_with(
            &b,
            &RecordingRunner::new(),
            &TransferEnd::Disk(dst.clone()),
            Some(9 << 20),
            local_fetch(&a, TransferEnd::Disk(src.clone()), &calls),
        )
        .unwrap();
        assert_eq!(done.bytes, 9 << 20);
        assert_eq!(done.sha1, crate::backend::sha1_hex(&data));
        assert_eq!(calls.get(), 3, "4 + 4 + 1 MiB");
        assert_eq!(std::fs::read(&dst_path).unwrap(), data);

        // Into an export file, until the source ends; then back out of it.
        let file = TransferEnd::ExportFile {
            export: "inst1.new".into(),
            file: "uuid-0".into(),
        };
        let done = pull_with(
            &b,
            &RecordingRunner::new(),
            &file,
            None,
            local_fetch(&a, TransferEnd::Disk(src), &calls),
        )
        .unwrap();
        assert_eq!(done.bytes, 9 << 20);
        let dump = b.export_dir().join("inst1.new/uuid-0");
        assert_eq!(std::fs::read(&dump).unwrap(), data);
        let chunk = read(
            &b,
            &RecordingRunner::new(),
            &TransferReadArgs {
                source: file,
                offset: (9 << 20) - 10,
                length: 100,
            },
        )
        .unwrap();
        assert!(chunk.eof);
        assert_eq!(b64::decode(&chunk.data).unwrap(), &data[data.len() - 10..]);
        crate::paths::test_support::remove_temp_node(&a);
        crate::paths::test_support::remove_temp_node(&b);
    }

    #[test]
    fn short_sources_and_small_disks_fail_and_leave_no_dump() {
        let a = node("short", "node1");
        let src = file_disk(&a, 1);
        make_disk(&a, &src);
        let small = file_disk(&a, 1);
        let e = pull_with(
            &a,
            &RecordingRunner::new(),
            &TransferEnd::Disk(small),
            Some(2 << 20),
            |_, _| Err("never called".to_string()),
        )
        .unwrap_err();
        assert!(e.contains("too small"), "{e}");

        let file = TransferEnd::ExportFile {
            export: "x.new".into(),
            file: "d0".into(),
        };
        let calls = std::cell::Cell::new(0);
        let e = pull_with(
            &a,
            &RecordingRunner::new(),
            &file,
            Some(2 << 20),
            local_fetch(&a, TransferEnd::Disk(src), &calls),
        )
        .unwrap_err();
        assert!(e.contains("ended after 1048576 of 2097152"), "{e}");
        assert!(!a.export_dir().join("x.new/d0").exists());

        // A source that answers too much is refused, not trusted.
        let e = pull_with(&a, &RecordingRunner::new(), &file, Some(3), |_, _| {
            Ok(TransferChunk {
                data: b64::encode(b"abcdef"),
                eof: false,
            })
        })
        .unwrap_err();
        assert!(e.contains("more than the 3 asked"), "{e}");
        crate::paths::test_support::remove_temp_node(&a);
    }

    #[test]
    fn reads_refuse_paths_outside_disks_and_exports() {
        let a = node("refuse", "node1");
        crate::sys::fs::atomic_write(&a.under_root("/etc/ganeti/secret"), b"x", 0o600).unwrap();
        let call = |args: Value| handle_with(&a, &RecordingRunner::new(), TRANSFER_READ, args);
        for (export, file) in [
            ("..", "etc/ganeti/secret"),
            ("../../etc/ganeti", "secret"),
            ("inst1", "../../../etc/ganeti/secret"),
            ("", "x"),
            ("inst1", "."),
        ] {
            let e = call(json!({
                "source": {"export_file": {"export": export, "file": file}},
                "offset": 0, "length": 10,
            }))
            .unwrap()
            .unwrap_err();
            assert!(e.contains("invalid"), "{export}/{file}: {e}");
        }
        let mut d = file_disk(&a, 1);
        d.logical_id = json!([
            "loop",
            a.under_root("/etc/ganeti/secret").display().to_string()
        ]);
        let e = call(json!({"source": {"disk": d}, "offset": 0, "length": 10}))
            .unwrap()
            .unwrap_err();
        assert!(e.contains("not acceptable for file storage"), "{e}");
        let e = call(json!({"source": {"disk": file_disk(&a, 1)}, "offset": 0, "length": 0}))
            .unwrap()
            .unwrap_err();
        assert!(e.contains("invalid length 0"), "{e}");
        let e = call(json!({"source": 1})).unwrap().unwrap_err();
        assert!(e.contains("invalid arguments for transfer_read"), "{e}");
        assert!(handle_with(&a, &RecordingRunner::new(), "instance_start", json!({})).is_none());
        crate::paths::test_support::remove_temp_node(&a);
    }
}
