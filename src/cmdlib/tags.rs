//! Tag LUs: get, set, delete and search tags of the cluster, nodes,
//! instances, node groups and networks (`gnt-* tags`, `add-tags`,
//! `remove-tags`, `gnt-cluster search-tags`).

use super::{LockNeed, LogicalUnit, LuContext, LuError};
use crate::config::objects::{ConfigData, Tags};
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::locking::Level;
use crate::locking::LockMode;
use crate::opcodes::params::TagKind;
use crate::opcodes::{OpTagsDel, OpTagsGet, OpTagsSearch, OpTagsSet};
use serde_json::{json, Value};

/// Longest tag Ganeti accepts (`MAX_TAG_LEN`).
pub const MAX_TAG_LEN: usize = 128;
/// Most tags one object may carry (`MAX_TAGS_PER_OBJ`).
pub const MAX_TAGS_PER_OBJ: usize = 4096;

/// Checks one tag against Ganeti's rules: 1–128 characters of letters,
/// digits and `_ . + * / : @ -`.
pub fn validate_tag(tag: &str) -> Result<(), LuError> {
    if tag.is_empty() {
        return Err(LuError::prereq(ErrorKind::Inval, "Tags cannot be empty"));
    }
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(LuError::prereq(
            ErrorKind::Inval,
            format!("Tag too long (>{MAX_TAG_LEN} characters): {tag}"),
        ));
    }
    if !tag
        .chars()
        .all(|c| c.is_alphanumeric() || "_.+*/:@-".contains(c))
    {
        return Err(LuError::prereq(
            ErrorKind::Inval,
            format!("Invalid tag name: {tag:?}"),
        ));
    }
    Ok(())
}

fn kind_name(kind: TagKind) -> &'static str {
    match kind {
        TagKind::Cluster => "cluster",
        TagKind::Node => "node",
        TagKind::Instance => "instance",
        TagKind::NodeGroup => "nodegroup",
        TagKind::Network => "network",
    }
}

/// The tags of the object named by `kind`/`name`.
fn tags_of<'a>(
    cfg: &'a ConfigData,
    kind: TagKind,
    name: Option<&str>,
) -> Result<&'a Tags, LuError> {
    let missing = |what: &str| {
        LuError::prereq(
            ErrorKind::NoEnt,
            format!("{what} {:?} does not exist", name.unwrap_or("")),
        )
    };
    let n = name.unwrap_or("");
    match kind {
        TagKind::Cluster => Ok(&cfg.cluster.tags),
        TagKind::Node => cfg
            .node_by_name(n)
            .map(|(_, o)| &o.tags)
            .ok_or_else(|| missing("Node")),
        TagKind::Instance => cfg
            .instance_by_name(n)
            .map(|(_, o)| &o.tags)
            .ok_or_else(|| missing("Instance")),
        TagKind::NodeGroup => cfg
            .group_by_name(n)
            .map(|(_, o)| &o.tags)
            .ok_or_else(|| missing("Node group")),
        TagKind::Network => cfg
            .networks
            .values()
            .find(|o| o.name == n)
            .map(|o| &o.tags)
            .ok_or_else(|| missing("Network")),
    }
}

fn tags_of_mut<'a>(
    cfg: &'a mut ConfigData,
    kind: TagKind,
    name: Option<&str>,
) -> Option<&'a mut Tags> {
    let n = name.unwrap_or("");
    match kind {
        TagKind::Cluster => Some(&mut cfg.cluster.tags),
        TagKind::Node => cfg
            .nodes
            .values_mut()
            .find(|o| o.name.as_str() == n)
            .map(|o| &mut o.tags),
        TagKind::Instance => cfg
            .instances
            .values_mut()
            .find(|o| o.name.as_str() == n)
            .map(|o| &mut o.tags),
        TagKind::NodeGroup => cfg
            .nodegroups
            .values_mut()
            .find(|o| o.name.as_str() == n)
            .map(|o| &mut o.tags),
        TagKind::Network => cfg
            .networks
            .values_mut()
            .find(|o| o.name == n)
            .map(|o| &mut o.tags),
    }
}

/// The lock that guards an object's tags (none for the cluster, whose
/// changes are serialised by the config writer).
fn tag_lock(kind: TagKind, name: Option<&str>, mode: LockMode) -> Vec<LockNeed> {
    let level = match kind {
        TagKind::Cluster => return Vec::new(),
        TagKind::Node => Level::Node,
        TagKind::Instance => Level::Instance,
        TagKind::NodeGroup => Level::NodeGroup,
        TagKind::Network => Level::Network,
    };
    vec![LockNeed {
        level,
        names: vec![name.unwrap_or("").to_string()],
        mode,
    }]
}

fn check_name(kind: TagKind, name: Option<&str>) -> Result<(), LuError> {
    match (kind, name) {
        (TagKind::Cluster, _) => Ok(()),
        (_, Some(n)) if !n.is_empty() => Ok(()),
        _ => Err(LuError::prereq(
            ErrorKind::Inval,
            format!("a {} name is required", kind_name(kind)),
        )),
    }
}

/// Whether tags are added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagChange {
    Add,
    Remove,
}

/// Adds or removes `tags` on one object through the config writer.
fn change_tags(
    ctx: &mut LuContext<'_>,
    kind: TagKind,
    name: Option<&str>,
    tags: &[String],
    change: TagChange,
) -> Result<Value, LuError> {
    ctx.store
        .update(|cfg| {
            let target = tags_of_mut(cfg, kind, name).ok_or_else(|| ConfigError::Update {
                reason: format!("{} {name:?} disappeared", kind_name(kind)),
            })?;
            for t in tags {
                match change {
                    TagChange::Add => target.insert(t.clone()),
                    TagChange::Remove => target.remove(t),
                };
            }
            Ok(())
        })
        .map_err(|e| LuError::Exec(crate::error::chain(&e)))?;
    Ok(Value::Null)
}

/// `OP_TAGS_GET`.
pub struct LuTagsGet {
    op: OpTagsGet,
}

impl LuTagsGet {
    /// The LU for `op`.
    pub fn new(op: OpTagsGet) -> Self {
        LuTagsGet { op }
    }
}

impl LogicalUnit for LuTagsGet {
    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        if self.op.use_locking {
            tag_lock(self.op.kind, self.op.name.as_deref(), LockMode::Shared)
        } else {
            Vec::new()
        }
    }
    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        check_name(self.op.kind, self.op.name.as_deref())?;
        tags_of(cfg, self.op.kind, self.op.name.as_deref()).map(|_| ())
    }
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let cfg = ctx.store.snapshot();
        let tags = tags_of(&cfg, self.op.kind, self.op.name.as_deref())?;
        Ok(json!(tags.iter().collect::<Vec<_>>()))
    }
}

/// `OP_TAGS_SEARCH`: `[(path, tag)]` for every tag matching a regular expression.
pub struct LuTagsSearch {
    op: OpTagsSearch,
    pattern: Option<regex_lite::Regex>,
}

impl LuTagsSearch {
    /// The LU for `op`.
    pub fn new(op: OpTagsSearch) -> Self {
        LuTagsSearch { op, pattern: None }
    }
}

impl LogicalUnit for LuTagsSearch {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        let re = regex_lite::Regex::new(&self.op.pattern).map_err(|e| {
            LuError::prereq(
                ErrorKind::Inval,
                format!("Invalid search pattern '{}': {e}", self.op.pattern),
            )
        })?;
        self.pattern = Some(re);
        Ok(())
    }
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let Some(re) = &self.pattern else {
            return Ok(json!([]));
        };
        let cfg = ctx.store.snapshot();
        let mut objects: Vec<(String, &Tags)> = vec![("/cluster".into(), &cfg.cluster.tags)];
        objects.extend(
            cfg.instances
                .values()
                .map(|o| (format!("/instances/{}", o.name.as_str()), &o.tags)),
        );
        objects.extend(
            cfg.nodes
                .values()
                .map(|o| (format!("/nodes/{}", o.name.as_str()), &o.tags)),
        );
        objects.extend(
            cfg.nodegroups
                .values()
                .map(|o| (format!("/nodegroup/{}", o.name.as_str()), &o.tags)),
        );
        objects.extend(
            cfg.networks
                .values()
                .map(|o| (format!("/networks/{}", o.name), &o.tags)),
        );
        let mut found = Vec::new();
        for (path, tags) in objects {
            for t in tags.iter().filter(|t| re.is_match(t)) {
                found.push(json!([path, t]));
            }
        }
        Ok(Value::Array(found))
    }
}

/// `OP_TAGS_SET`: adds tags.
pub struct LuTagsSet {
    op: OpTagsSet,
}

impl LuTagsSet {
    /// The LU for `op`.
    pub fn new(op: OpTagsSet) -> Self {
        LuTagsSet { op }
    }
}

impl LogicalUnit for LuTagsSet {
    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        tag_lock(self.op.kind, self.op.name.as_deref(), LockMode::Exclusive)
    }
    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        check_name(self.op.kind, self.op.name.as_deref())?;
        for t in &self.op.tags {
            validate_tag(t)?;
        }
        let current = tags_of(cfg, self.op.kind, self.op.name.as_deref())?;
        let new_count = self
            .op
            .tags
            .iter()
            .filter(|t| !current.contains(*t))
            .count();
        if current.len() + new_count > MAX_TAGS_PER_OBJ {
            return Err(LuError::prereq(
                ErrorKind::Inval,
                format!("Too many tags (limit {MAX_TAGS_PER_OBJ})"),
            ));
        }
        Ok(())
    }
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        change_tags(
            ctx,
            self.op.kind,
            self.op.name.as_deref(),
            &self.op.tags,
            TagChange::Add,
        )
    }
}

/// `OP_TAGS_DEL`: removes tags; all must be present.
pub struct LuTagsDel {
    op: OpTagsDel,
}

impl LuTagsDel {
    /// The LU for `op`.
    pub fn new(op: OpTagsDel) -> Self {
        LuTagsDel { op }
    }
}

impl LogicalUnit for LuTagsDel {
    fn declare_locks(&self, _cfg: &ConfigData) -> Vec<LockNeed> {
        tag_lock(self.op.kind, self.op.name.as_deref(), LockMode::Exclusive)
    }
    fn check_prereq(&mut self, cfg: &ConfigData) -> Result<(), LuError> {
        check_name(self.op.kind, self.op.name.as_deref())?;
        let current = tags_of(cfg, self.op.kind, self.op.name.as_deref())?;
        let mut missing: Vec<&str> = self
            .op
            .tags
            .iter()
            .filter(|t| !current.contains(*t))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(LuError::prereq(
                ErrorKind::NoEnt,
                format!(
                    "Tag(s) {} not found",
                    missing
                        .iter()
                        .map(|t| format!("'{t}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    }
    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        change_tags(
            ctx,
            self.op.kind,
            self.op.name.as_deref(),
            &self.op.tags,
            TagChange::Remove,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        validate_tag("env:prod").unwrap();
        validate_tag("a/b@c+d*e.f-g_h").unwrap();
        assert!(validate_tag("").is_err());
        assert!(validate_tag("has space").is_err());
        assert!(validate_tag(&"x".repeat(129)).is_err());
    }
}
