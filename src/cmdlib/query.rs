//! `OP_QUERY` and `OP_QUERY_FIELDS`: Query2 run as a job (RAPI's
//! `/2/query/*` and Ganeti clients that query through the queue).

use super::{LogicalUnit, LuContext, LuError};
use crate::config::objects::ConfigData;
use crate::error::ErrorKind;
use crate::opcodes::params::QueryResource;
use crate::opcodes::{OpQuery, OpQueryFields};
use crate::query::Resource;
use serde_json::Value;

/// The Query2 resource of an opcode's `what`, if the config can answer it.
fn resource(what: QueryResource) -> Result<Resource, LuError> {
    let name = serde_json::to_value(what)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match name.parse::<Resource>() {
        Ok(Resource::Job) | Err(_) => Err(LuError::prereq(
            ErrorKind::Inval,
            format!(
                "querying {name:?} through a job is not supported by ganeti-rs; use LUXI Query"
            ),
        )),
        Ok(r) => Ok(r),
    }
}

/// `OP_QUERY`.
pub struct LuQuery {
    op: OpQuery,
    resource: Option<Resource>,
}

impl LuQuery {
    /// The LU for `op`.
    pub fn new(op: OpQuery) -> Self {
        LuQuery { op, resource: None }
    }
}

impl LogicalUnit for LuQuery {
    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        self.resource = Some(resource(self.op.what)?);
        Ok(())
    }

    fn exec(&mut self, ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let resource = resource(self.op.what)?;
        let filter = self.op.qfilter.clone().map(Value::Array);
        let cfg = ctx.store.snapshot();
        let response = crate::query::query(resource, &self.op.fields, filter.as_ref(), &cfg)
            .map_err(|e| LuError::prereq(e.kind(), crate::error::chain(&e)))?;
        serde_json::to_value(response)
            .map_err(|e| LuError::Exec(format!("encoding the query result: {e}")))
    }
}

/// `OP_QUERY_FIELDS`.
pub struct LuQueryFields {
    op: OpQueryFields,
}

impl LuQueryFields {
    /// The LU for `op`.
    pub fn new(op: OpQueryFields) -> Self {
        LuQueryFields { op }
    }
}

impl LogicalUnit for LuQueryFields {
    fn requires_bgl(&self) -> bool {
        false
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), LuError> {
        resource(self.op.what).map(|_| ())
    }

    fn exec(&mut self, _ctx: &mut LuContext<'_>) -> Result<Value, LuError> {
        let response =
            crate::query::query_fields(resource(self.op.what)?, self.op.fields.as_deref());
        serde_json::to_value(response)
            .map_err(|e| LuError::Exec(format!("encoding the field list: {e}")))
    }
}
