//! The catalog node of each enabled model, seed and snapshot: its parse and compile results
//! with status and errors, descriptions rendered, depends_on as dbt records it.

use crate::compile::{Compiled, Deps};
use crate::ir::catalog::{CompileStatus, DependsOn, Node};
use crate::ir::error::NodeError;
use crate::parse::descriptions::{render_description, Descriptions};
use crate::parse::{ParsedNode, Workspace};
use serde_json::{Map, Value};

/// Per-node results that go into the final node.
pub(crate) struct AssembleInputs<'a> {
    pub deps: &'a Deps,
    pub compiled: &'a Compiled,
    pub injected: &'a Option<String>,
}

pub(crate) fn assemble(
    ws: &Workspace,
    n: &ParsedNode,
    inputs: &AssembleInputs<'_>,
    memo: &mut Descriptions,
    errors: &mut Vec<NodeError>,
) -> Node {
    let (deps, compiled, injected) = (inputs.deps, inputs.compiled, inputs.injected);
    let cfg = &n.config;
    let materialized = cfg
        .get("materialized")
        .and_then(Value::as_str)
        .unwrap_or("view")
        .to_string();
    let (status, compile_error) = match (&n.parse_error, deps, &compiled.sql) {
        (Some((line, msg)), _, _) => {
            errors.push(NodeError::new(
                Some(n.unique_id.clone()),
                &n.file.original_file_path,
                *line,
                msg.clone(),
            ));
            (CompileStatus::Error, Some(msg.clone()))
        }
        (None, Err(e), _) => {
            errors.push(NodeError::new(
                Some(n.unique_id.clone()),
                &n.file.original_file_path,
                None,
                e.clone(),
            ));
            (CompileStatus::Error, Some(e.clone()))
        }
        (None, Ok(_), Err(e)) => {
            errors.push(NodeError::new(
                Some(n.unique_id.clone()),
                &n.file.original_file_path,
                None,
                e.clone(),
            ));
            (CompileStatus::Error, Some(e.clone()))
        }
        _ => (CompileStatus::Success, None),
    };
    let needs_warehouse = (!compiled.warehouse.is_empty()).then(|| {
        let uses = compiled.warehouse.join(", ");
        if status == CompileStatus::Error {
            format!("compiles only against a live warehouse: uses {uses}")
        } else {
            format!("compiled against empty warehouse results; the SQL depends on {uses}")
        }
    });
    let mut meta = cfg
        .get("meta")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(p) = &n.patch {
        meta.extend(p.meta.clone());
    }
    let description = n
        .patch
        .as_ref()
        .map(|p| render_description(ws, &n.package, &p.description, memo))
        .unwrap_or_default();
    let columns = n
        .columns
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.description = render_description(ws, &n.package, &c.description, memo);
            c
        })
        .collect();
    let no_relation = materialized == "ephemeral" || n.resource_type == "test";
    let mut compile_macros: Vec<String> = Vec::new();
    for id in &compiled.top_macros {
        if !n.rec.macros.contains(id) && !compile_macros.contains(id) {
            compile_macros.push(id.clone());
        }
    }
    Node {
        unique_id: n.unique_id.clone(),
        resource_type: n.resource_type.to_string(),
        name: n.name.clone(),
        package_name: n.package.clone(),
        path: n.file.path.clone(),
        original_file_path: n.file.original_file_path.clone(),
        patch_path: n
            .patch
            .as_ref()
            .map(|p| format!("{}://{}", p.package, p.file)),
        fqn: n.fqn.clone(),
        language: "sql".into(),
        database: n.database.clone(),
        schema: n.schema.clone(),
        alias: n.alias.clone(),
        relation_name: if no_relation {
            None
        } else {
            n.relation.as_ref().map(|r| r.render())
        },
        materialized,
        enabled: true,
        tags: n.tags.clone(),
        meta,
        description,
        columns,
        refs: n.rec.refs.clone(),
        sources: n.rec.sources.clone(),
        depends_on: DependsOn {
            nodes: deps.clone().unwrap_or_default(),
            // dbt's MacroGenerator adds depth-0 macros at parse AND at compile time
            macros: {
                let mut m = n.rec.macros.clone();
                m.extend(compile_macros.iter().cloned());
                m
            },
        },
        raw_code: n.raw_code.clone(),
        compiled_code: injected.clone(),
        checksum: n.file.checksum.clone(),
        version: n.version.clone(),
        latest_version: n.latest_version.clone(),
        access: cfg
            .get("access")
            .and_then(Value::as_str)
            .unwrap_or("protected")
            .to_string(),
        group: cfg.get("group").and_then(Value::as_str).map(str::to_string),
        contract_enforced: cfg
            .get("contract")
            .and_then(|c| c.get("enforced"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        compile_status: status,
        compile_error,
        needs_warehouse,
        tests: Vec::new(),
        test_metadata: None,
        column_name: None,
        attached_node: None,
        extra_ctes: Vec::new(),
        compile_macros,
        own_outcome: None,
        config: node_config_json(n.resource_type, cfg),
    }
}

/// The stored config: models always carry `access`; seeds dbt's default `delimiter`.
fn node_config_json(resource_type: &str, cfg: &Map<String, Value>) -> Map<String, Value> {
    let mut c = cfg.clone();
    match resource_type {
        "model" => {
            c.entry("access").or_insert(Value::from("protected"));
        }
        "seed" => {
            c.entry("delimiter").or_insert(Value::from(","));
        }
        _ => {}
    }
    c
}
