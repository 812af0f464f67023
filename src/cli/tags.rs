//! The tag commands every `gnt-*` program has: `list-tags`, `add-tags`,
//! `remove-tags` (and `gnt-cluster search-tags`), as Ganeti prints them.

use super::job::{report, submit_or_send, SubmitOpts};
use super::{report_luxi_error, EXIT_FAILURE, EXIT_SUCCESS};
use crate::luxi::client::Client;
use crate::luxi::Method;
use serde_json::{json, Value};

#[derive(argh::FromArgs, Debug)]
/// Adds tags (gnt-cluster: TAG...; others: NAME TAG...).
#[argh(subcommand, name = "add-tags")]
pub struct AddTagsArgs {
    /// read more tags from this file ("-": stdin), one per line
    #[argh(option)]
    pub from: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    pub submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    pub print_jobid: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    pub priority: Option<String>,
    /// the object's name (except for the cluster), then the tags
    #[argh(positional)]
    pub tags: Vec<String>,
}

#[derive(argh::FromArgs, Debug)]
/// Removes tags (gnt-cluster: TAG...; others: NAME TAG...).
#[argh(subcommand, name = "remove-tags")]
pub struct RemoveTagsArgs {
    /// read more tags from this file ("-": stdin), one per line
    #[argh(option)]
    pub from: Option<String>,
    /// submit the job and return its id without waiting
    #[argh(switch)]
    pub submit: bool,
    /// print the job id on stdout
    #[argh(switch)]
    pub print_jobid: bool,
    /// job priority: low, normal or high
    #[argh(option)]
    pub priority: Option<String>,
    /// the object's name (except for the cluster), then the tags
    #[argh(positional)]
    pub tags: Vec<String>,
}

#[derive(argh::FromArgs, Debug)]
/// Lists the tags of an object.
#[argh(subcommand, name = "list-tags")]
pub struct ObjectListTagsArgs {
    /// the object's name
    #[argh(positional)]
    pub name: String,
}

/// `add-tags`/`remove-tags` for a named object: the first argument is the
/// object, the rest (and `--from`) the tags. Returns the exit code.
pub fn change_object_tags(
    client: &mut Client,
    op_id: &str,
    kind: &str,
    args: &[String],
    from: Option<&str>,
    opts: &SubmitOpts,
) -> u8 {
    let Some((name, tags)) = args.split_first() else {
        eprintln!("The object's name is missing");
        return EXIT_FAILURE;
    };
    let mut tags = tags.to_vec();
    match tags_from_file(from) {
        Ok(extra) => tags.extend(extra),
        Err(e) => {
            eprintln!("{e}");
            return EXIT_FAILURE;
        }
    }
    change(client, op_id, kind, Some(name), tags, opts)
}

/// Reads extra tags from `--from FILE` (`-` for stdin), one per line.
pub fn tags_from_file(file: Option<&str>) -> Result<Vec<String>, String> {
    let Some(file) = file else {
        return Ok(Vec::new());
    };
    let text = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("reading tags from stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading tags from {file}: {e}"))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// `list-tags`: the object's tags, sorted, one per line.
#[allow(clippy::print_stdout)]
pub fn list(client: &mut Client, kind: &str, name: Option<&str>) -> u8 {
    match client.call(Method::QueryTags, json!([kind, name])) {
        Ok(v) => {
            let mut tags: Vec<String> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            tags.sort();
            for t in tags {
                println!("{t}");
            }
            EXIT_SUCCESS
        }
        Err(e) => report_luxi_error(&e),
    }
}

/// `add-tags` / `remove-tags`: one `OP_TAGS_SET`/`OP_TAGS_DEL` job.
pub fn change(
    client: &mut Client,
    op_id: &str,
    kind: &str,
    name: Option<&str>,
    tags: Vec<String>,
    opts: &SubmitOpts,
) -> u8 {
    if tags.is_empty() {
        eprintln!("No tags to change given");
        return EXIT_FAILURE;
    }
    let mut op = json!({"OP_ID": op_id, "kind": kind, "tags": tags});
    if let Some(n) = name {
        op["name"] = Value::String(n.to_string());
    }
    match submit_or_send(client, vec![op], opts) {
        Ok(_) => EXIT_SUCCESS,
        Err(e) => report(&e),
    }
}

/// `search-tags PATTERN`: `path tag` lines, sorted.
#[allow(clippy::print_stdout)]
pub fn search(client: &mut Client, pattern: &str) -> u8 {
    let op = json!({"OP_ID": "OP_TAGS_SEARCH", "pattern": pattern});
    match submit_or_send(client, vec![op], &SubmitOpts::default()) {
        Ok(results) => {
            let mut found: Vec<(String, String)> = results
                .first()
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| {
                            Some((
                                p.get(0)?.as_str()?.to_string(),
                                p.get(1)?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            for (path, tag) in found {
                println!("{path} {tag}");
            }
            EXIT_SUCCESS
        }
        Err(e) => report(&e),
    }
}

/// The job options of `add-tags`/`remove-tags`; prints the error and
/// returns the exit code for a bad `--priority`.
pub fn tag_job_opts(
    submit_only: bool,
    print_jobid: bool,
    priority: Option<&str>,
) -> Result<SubmitOpts, u8> {
    let priority = priority
        .map(super::job::parse_priority)
        .transpose()
        .map_err(|e| {
            eprintln!("{e}");
            EXIT_FAILURE
        })?;
    Ok(SubmitOpts {
        submit_only,
        print_jobid,
        priority,
        dry_run: false,
    })
}
