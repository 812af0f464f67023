//! `gnt-* list` and `list-fields`, shared by every program that lists
//! (Ganeti's `GenericList` and `GenericListFields`): build the filter from
//! the names or filter expression given, ask masterd with LUXI `Query`,
//! and print the table in Ganeti's layout.

use super::output::{
    format_list_fields, format_query_result, list_overrides, unknown_fields_warning, ListOptions,
    ListStatus, Units, EXIT_UNKNOWN_FIELD,
};
use super::{report_luxi_error, EXIT_FAILURE, EXIT_SUCCESS};
use crate::luxi::client::Client;
use crate::luxi::Method;
use crate::query::filter::{make_filter, FilterArgs, NameKind};
use crate::query::{QueryFieldsResponse, QueryResponse, Resource};
use serde_json::{json, Value};

/// The options every `list` command takes.
#[derive(Debug, Clone, Default)]
pub struct ListArgs {
    /// `-o`: fields (a leading `+` adds to the defaults).
    pub output: Option<String>,
    /// `--no-headers`.
    pub no_headers: bool,
    /// `--separator`.
    pub separator: Option<String>,
    /// `--units h|m|g|t`.
    pub units: Option<String>,
    /// `-v`.
    pub verbose: bool,
    /// `-F`: the one argument is a filter.
    pub force_filter: bool,
    /// Names, globs or a filter expression.
    pub names: Vec<String>,
}

/// The fields to ask for: `-o a,b` replaces the defaults, `-o +a,b` adds.
pub fn selected_fields(output: Option<&str>, defaults: &[&str]) -> Vec<String> {
    match output {
        None => defaults.iter().map(|s| s.to_string()).collect(),
        Some(o) if o.starts_with('+') => defaults
            .iter()
            .map(|s| s.to_string())
            .chain(
                o[1..]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            )
            .collect(),
        Some(o) => o
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// Runs a listing of `resource` and prints it; returns the exit code.
#[allow(clippy::print_stdout)]
pub fn generic_list(
    client: &mut Client,
    resource: Resource,
    defaults: &[&str],
    args: &ListArgs,
    name_kind: NameKind,
) -> u8 {
    let fields = selected_fields(args.output.as_deref(), defaults);
    let units = match args.units.as_deref().map(str::parse::<Units>).transpose() {
        Ok(u) => u,
        Err(_) => {
            eprintln!(
                "Invalid units {:?}; use h, m, g or t",
                args.units.as_deref().unwrap_or_default()
            );
            return EXIT_FAILURE;
        }
    };
    let mode = if args.force_filter {
        FilterArgs::ForceFilter
    } else {
        FilterArgs::Detect
    };
    let namefield = if resource == Resource::Job {
        "id"
    } else {
        "name"
    };
    let filter = match make_filter(&args.names, mode, namefield, name_kind) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("Error: {}", crate::error::chain(&e));
            return EXIT_FAILURE;
        }
    };
    list_filtered(
        client,
        resource,
        &fields,
        filter.unwrap_or(Value::Null),
        args,
        units,
    )
}

/// Runs a listing of `fields` of `resource` with a ready `filter` (Query2
/// JSON, or null) and prints it as `args` say; returns the exit code.
#[allow(clippy::print_stdout)]
pub fn list_filtered(
    client: &mut Client,
    resource: Resource,
    fields: &[String],
    filter: Value,
    args: &ListArgs,
    units: Option<Units>,
) -> u8 {
    let call_args = json!([resource.wire_name(), fields, filter]);
    let response: QueryResponse =
        match ask(client, Method::Query, call_args, |r: &QueryResponse| {
            &r.fields
        }) {
            Ok(r) => r,
            Err(code) => return code,
        };
    let opts = ListOptions {
        separator: args.separator.clone(),
        header: !args.no_headers,
        units,
        verbose: args.verbose,
        overrides: list_overrides(resource),
    };
    let out = format_query_result(&response, &opts);
    for line in &out.lines {
        println!("{line}");
    }
    if out.status == ListStatus::Unknown {
        EXIT_UNKNOWN_FIELD
    } else {
        EXIT_SUCCESS
    }
}

/// Calls a query method and decodes its answer, warning about unknown
/// fields as Ganeti does; on failure prints why and gives the exit code.
fn ask<T: serde::de::DeserializeOwned>(
    client: &mut Client,
    method: Method,
    args: Value,
    fields: impl Fn(&T) -> &Vec<crate::query::FieldDefinition>,
) -> Result<T, u8> {
    let answer = client
        .call(method, args)
        .map_err(|e| report_luxi_error(&e))?;
    let response: T = serde_json::from_value(answer).map_err(|e| {
        eprintln!(
            "Malformed answer to {} from the master daemon: {e}",
            method.name()
        );
        EXIT_FAILURE
    })?;
    if let Some(w) = unknown_fields_warning(fields(&response)) {
        eprintln!("{w}");
    }
    Ok(response)
}

/// `list-fields [FIELD…]`.
#[allow(clippy::print_stdout)]
pub fn generic_list_fields(
    client: &mut Client,
    resource: Resource,
    fields: &[String],
    no_headers: bool,
    separator: Option<&str>,
) -> u8 {
    let fields = if fields.is_empty() {
        Value::Null
    } else {
        json!(fields)
    };
    let args = json!([resource.wire_name(), fields]);
    let response: QueryFieldsResponse = match ask(
        client,
        Method::QueryFields,
        args,
        |r: &QueryFieldsResponse| &r.fields,
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    for line in format_list_fields(&response, !no_headers, separator) {
        println!("{line}");
    }
    if response
        .fields
        .iter()
        .any(|f| f.kind == crate::query::FieldKind::Unknown)
    {
        EXIT_UNKNOWN_FIELD
    } else {
        EXIT_SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selection() {
        assert_eq!(
            selected_fields(None, &["id", "status"]),
            vec!["id", "status"]
        );
        assert_eq!(
            selected_fields(Some("+summary"), &["id"]),
            vec!["id", "summary"]
        );
        assert_eq!(
            selected_fields(Some("name,os"), &["id"]),
            vec!["name", "os"]
        );
    }
}

#[derive(argh::FromArgs, Debug, Clone)]
/// Lists objects with the fields asked for.
#[argh(subcommand, name = "list")]
pub struct ListCmd {
    /// fields to show, comma-separated; "+a,b" adds to the defaults
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// do not print the header row
    #[argh(switch)]
    pub no_headers: bool,
    /// separate columns with this string instead of aligning them
    #[argh(option)]
    pub separator: Option<String>,
    /// units for sizes: h (human), m, g or t
    #[argh(option)]
    pub units: Option<String>,
    /// longer texts for missing values
    #[argh(switch, short = 'v')]
    pub verbose: bool,
    /// treat the argument as a filter expression
    #[argh(switch, short = 'F')]
    pub filter: bool,
    /// names, globs or one filter expression
    #[argh(positional)]
    pub names: Vec<String>,
}

impl ListCmd {
    /// As [`ListArgs`].
    pub fn to_args(&self) -> ListArgs {
        ListArgs {
            output: self.output.clone(),
            no_headers: self.no_headers,
            separator: self.separator.clone(),
            units: self.units.clone(),
            verbose: self.verbose,
            force_filter: self.filter,
            names: self.names.clone(),
        }
    }
}

#[derive(argh::FromArgs, Debug, Clone)]
/// Lists the fields `list -o` accepts.
#[argh(subcommand, name = "list-fields")]
pub struct ListFieldsCmd {
    /// do not print the header row
    #[argh(switch)]
    pub no_headers: bool,
    /// separate columns with this string instead of aligning them
    #[argh(option)]
    pub separator: Option<String>,
    /// only these fields
    #[argh(positional)]
    pub fields: Vec<String>,
}

/// For programs of which only some commands exist yet: when `args` names
/// one of Ganeti's commands that is not built, says so and returns the
/// exit code (2, as for programs not built at all).
pub fn refuse_unbuilt(
    program: &str,
    args: &[String],
    built: &[&str],
    ganeti_commands: &[&str],
    comes_with: &str,
) -> Option<u8> {
    let sub = args.first()?;
    if built.contains(&sub.as_str()) || !ganeti_commands.contains(&sub.as_str()) {
        return None;
    }
    eprintln!(
        "{program} {sub}: not implemented yet in ganeti-rs {}; it comes with {comes_with}",
        crate::constants::RELEASE_VERSION
    );
    Some(crate::applets::EXIT_NOT_IMPLEMENTED)
}

#[derive(argh::FromArgs, Debug)]
/// Listing commands of a gnt-* program (the others are not built yet).
struct ListingProgram {
    #[argh(subcommand)]
    command: ListingCommand,
}

#[derive(argh::FromArgs, Debug)]
#[argh(subcommand)]
enum ListingCommand {
    List(ListCmd),
    ListFields(ListFieldsCmd),
    ListTags(super::tags::ObjectListTagsArgs),
    AddTags(super::tags::AddTagsArgs),
    RemoveTags(super::tags::RemoveTagsArgs),
}

/// A `gnt-*` program of which only `list`, `list-fields` and the tag
/// commands are built; Ganeti's other commands say they are not built yet
/// and which issue brings them.
pub fn listing_program(
    program: &str,
    args: &[String],
    resource: Resource,
    defaults: &[&str],
    ganeti_commands: &[&str],
    comes_with: &str,
) -> u8 {
    let built = [
        "list",
        "list-fields",
        "list-tags",
        "add-tags",
        "remove-tags",
    ];
    if let Some(code) = refuse_unbuilt(program, args, &built, ganeti_commands, comes_with) {
        return code;
    }
    let cmd: ListingProgram = match super::parse_args(program, args, &['o']) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let socket = match cmd.command {
        ListingCommand::AddTags(_) | ListingCommand::RemoveTags(_) => super::MasterSocket::Master,
        _ => super::MasterSocket::Query,
    };
    let mut client = match super::connect_master(socket) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let name_kind = if resource == Resource::Job {
        NameKind::Numeric
    } else {
        NameKind::Text
    };
    let tag_kind = match resource {
        Resource::Node => "node",
        Resource::Instance => "instance",
        _ => "nodegroup",
    };
    match cmd.command {
        ListingCommand::List(l) => {
            generic_list(&mut client, resource, defaults, &l.to_args(), name_kind)
        }
        ListingCommand::ListFields(f) => generic_list_fields(
            &mut client,
            resource,
            &f.fields,
            f.no_headers,
            f.separator.as_deref(),
        ),
        ListingCommand::ListTags(a) => super::tags::list(&mut client, tag_kind, Some(&a.name)),
        ListingCommand::AddTags(a) => {
            let opts =
                match super::tags::tag_job_opts(a.submit, a.print_jobid, a.priority.as_deref()) {
                    Ok(o) => o,
                    Err(code) => return code,
                };
            super::tags::change_object_tags(
                &mut client,
                "OP_TAGS_SET",
                tag_kind,
                &a.tags,
                a.from.as_deref(),
                &opts,
            )
        }
        ListingCommand::RemoveTags(a) => {
            let opts =
                match super::tags::tag_job_opts(a.submit, a.print_jobid, a.priority.as_deref()) {
                    Ok(o) => o,
                    Err(code) => return code,
                };
            super::tags::change_object_tags(
                &mut client,
                "OP_TAGS_DEL",
                tag_kind,
                &a.tags,
                a.from.as_deref(),
                &opts,
            )
        }
    }
}
