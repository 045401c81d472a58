//! dbt's Jinja dialect on top of minijinja: macro extraction, the shared environment (Python
//! compatible methods and output), and rendering a node with its context.

mod adapter_obj;
pub mod agate;
pub mod api;
pub mod blocks;
mod builtins;
pub mod caller;
pub mod calls;
pub mod catchall;
pub mod context;
pub mod exprs;
pub mod percent;
pub mod pydatetime;
pub mod pyfuncs;
pub mod pymodules;
pub mod relation;
pub mod runtime_config;
pub mod scope;
pub mod values;

use blocks::{find_blocks, wrap_mutable_sets, BlockError, MUT_FN};
use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Template};
use scope::{MacroDef, MacroIndex, DBT_PACKAGE};
use std::sync::Arc;

/// dbt's own macros we ship (schema/alias/database naming, is_incremental, generic tests).
pub const BUILTIN_MACROS: &str = include_str!("builtin_macros.sql");
/// dbt's cross-database macros (`dbt.dateadd`, `dbt.concat`, ...) with postgres variants.
pub const BUILTIN_CROSS_DB_MACROS: &str = include_str!("builtin_cross_db.sql");

/// A docs block found in a file.
#[derive(Debug, Clone)]
pub struct DocBlock {
    pub name: String,
    pub text: String,
}

/// Macros and docs blocks of one file.
#[derive(Debug, Clone, Default)]
pub struct FileBlocks {
    pub macros: Vec<MacroDef>,
    pub docs: Vec<DocBlock>,
}

/// Extracts macros (`{% macro %}`, `{% test %}`) and docs blocks from a file.
pub fn extract_blocks(package: &str, path: &str, text: &str) -> Result<FileBlocks, BlockError> {
    let mut out = FileBlocks::default();
    for b in find_blocks(text)? {
        match b.kind.as_str() {
            "macro" | "test" => {
                let dbt_name = if b.kind == "test" {
                    format!("test_{}", b.name)
                } else {
                    b.name.clone()
                };
                let mut open_tag =
                    rename_tag(&text[b.start..b.body.0], &b.kind, &b.name, &dbt_name);
                open_tag = mutable_defaults(&open_tag);
                let catch_all = catchall::catch_all_params(&b.signature, &text[b.body.0..b.body.1]);
                if let Some(params) = &catch_all {
                    open_tag = catchall::extend_open_tag(&open_tag, params);
                }
                let end_tag =
                    text[b.body.1..b.end].replacen(&format!("end{}", b.kind), "endmacro", 1);
                let source = format!(
                    "{}{open_tag}{}{end_tag}",
                    "\n".repeat(b.line.saturating_sub(1)),
                    &text[b.body.0..b.body.1],
                );
                out.macros.push(MacroDef {
                    unique_id: format!("macro.{package}.{dbt_name}"),
                    package: package.to_string(),
                    name: dbt_name.clone(),
                    jinja_name: dbt_name,
                    original_file_path: path.to_string(),
                    line: b.line,
                    source: prepare(&source),
                    catch_all,
                });
            }
            "docs" => out.docs.push(DocBlock {
                name: b.name.clone(),
                text: text[b.body.0..b.body.1].trim().to_string(),
            }),
            _ => {}
        }
    }
    Ok(out)
}

/// Turns `{%- test name(` into `{%- macro test_name(`, keeping whitespace control markers.
fn rename_tag(tag: &str, kind: &str, name: &str, new_name: &str) -> String {
    match tag.find(kind) {
        Some(i) => {
            let rest = &tag[i + kind.len()..];
            let rest = rest.replacen(name, new_name, 1);
            format!("{}macro{rest}", &tag[..i])
        }
        None => tag.to_string(),
    }
}

/// Wraps list and dict literals used as parameter defaults (`column_names=[]`) in
/// `__bf_mut(...)`, so a macro can `append` to its default as Jinja2 allows (each call gets
/// a fresh value, as Jinja2 evaluates defaults per call).
fn mutable_defaults(tag: &str) -> String {
    let Some(open) = tag.find('(') else {
        return tag.to_string();
    };
    let b = tag.as_bytes();
    let mut out = String::with_capacity(tag.len() + 16);
    out.push_str(&tag[..=open]);
    let mut i = open + 1;
    let mut depth = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                let end = string_end(b, i);
                out.push_str(&tag[i..end]);
                i = end;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'=' if depth == 0 => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if matches!(b.get(j), Some(b'[') | Some(b'{')) {
                    let end = group_end(b, j);
                    out.push_str(&tag[i..j]);
                    out.push_str(&format!("{MUT_FN}({})", &tag[j..end]));
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        match tag[i..].chars().next() {
            Some(ch) => {
                out.push(ch);
                i += ch.len_utf8();
            }
            None => break,
        }
    }
    out
}

fn string_end(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == q => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

fn group_end(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'\'' | b'"' => {
                j = string_end(b, j);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// Whether `s` opens a Jinja expression or statement (`{{` or `{%`): what decides whether a
/// string is rendered at all. A byte scan (most strings tested are short YAML values).
pub fn has_jinja(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'{' && (w[1] == b'{' || w[1] == b'%'))
}

/// Source rewrites applied before compiling any template: Jinja's newline normalisation
/// (`\r\n` and `\r` render as `\n`), mutable `set` values and Python's `%` formatting.
fn prepare(source: &str) -> String {
    let source = if source.contains('\r') {
        std::borrow::Cow::Owned(source.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(source)
    };
    percent::rewrite_percent(&wrap_mutable_sets(&source))
}

/// dbt's built-in macros as definitions of the `dbt` package.
pub fn builtin_macros() -> Vec<MacroDef> {
    [
        ("macros/builtin.sql", BUILTIN_MACROS),
        ("macros/utils/cross_db.sql", BUILTIN_CROSS_DB_MACROS),
    ]
    .into_iter()
    .flat_map(|(path, text)| {
        extract_blocks(DBT_PACKAGE, path, text)
            .map(|b| b.macros)
            .unwrap_or_default()
    })
    .collect()
}

/// The adapter's own macros (`dbt_snowflake`, `dbt_spark`, ...), parents first so the
/// adapter's package comes last and wins a name both define.
pub fn adapter_macros(adapter: crate::adapters::Adapter) -> Vec<MacroDef> {
    adapter
        .spec()
        .macros
        .iter()
        .flat_map(|(package, path, text)| {
            extract_blocks(package, path, text)
                .map(|b| b.macros)
                .unwrap_or_default()
        })
        .collect()
}

/// A macro template that failed to compile.
#[derive(Debug, Clone)]
pub struct MacroCompileError {
    pub unique_id: String,
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Builds the environment holding every macro as its own template (named by unique id).
pub fn build_env(macros: &MacroIndex) -> (Environment<'static>, Vec<MacroCompileError>) {
    let mut env = Environment::new();
    configure(&mut env);
    let mut errors = Vec::new();
    let mut defs: Vec<&Arc<MacroDef>> = macros.all().collect();
    defs.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    for m in defs {
        if let Err(e) = env.add_template_owned(m.unique_id.clone(), m.source.clone()) {
            errors.push(MacroCompileError {
                unique_id: m.unique_id.clone(),
                file: m.original_file_path.clone(),
                line: e.line(),
                message: describe(&e),
            });
        }
    }
    (env, errors)
}

fn configure(env: &mut Environment<'static>) {
    env.set_formatter(values::formatter);
    env.set_unknown_method_callback(unknown_method);
    env.set_keep_trailing_newline(false);
    env.add_function(MUT_FN, values::make_mutable);
    env.add_function("tojson", pyfuncs::tojson);
    env.add_function("fromjson", pyfuncs::fromjson);
    env.add_function("fromyaml", pyfuncs::fromyaml);
    env.add_function("toyaml", pymodules::toyaml);
    env.add_filter("truncate", pymodules::truncate);
    env.add_function("local_md5", pyfuncs::local_md5);
    env.add_function("zip", |args: Rest<Value>| pyfuncs::zip(&args));
    env.add_function("set", pyfuncs::py_set);
    env.add_function("set_strict", pyfuncs::py_set);
    env.add_function("zip_strict", |args: Rest<Value>| pyfuncs::zip(&args));
    env.add_function("print", |_args: Rest<Value>| "");
    env.add_function("log", |_args: Rest<Value>| "");
    env.add_filter("as_bool", pyfuncs::as_native);
    env.add_filter("as_native", pyfuncs::as_native);
    env.add_filter("as_number", pyfuncs::as_native);
    env.add_filter("as_text", pyfuncs::as_text);
    env.add_function(exprs::TUPLE_FN, exprs::tuple);
    env.add_function("__bf_add", exprs::binop("+"));
    env.add_function("__bf_sub", exprs::binop("-"));
    env.add_function("__bf_mul", exprs::binop("*"));
    env.add_function("__bf_mod", exprs::binop("%"));
    env.add_function("__bf_neg", exprs::neg);
    env.add_global("exceptions", Value::from_object(pyfuncs::Exceptions));
    env.add_global("run_started_at", pydatetime::run_started_at());
    env.add_global("invocation_id", "00000000-0000-0000-0000-000000000000");
    env.add_global("dbt_version", runtime_config::DBT_VERSION);
    env.add_global(
        "modules",
        Value::from_iter([
            ("datetime", Value::from_object(pydatetime::DatetimeModule)),
            ("pytz", Value::from_object(pydatetime::PytzModule)),
            ("re", Value::from_object(pymodules::ReModule)),
        ]),
    );
    env.add_global(
        "flags",
        Value::from_serialize(serde_json::json!({
            "FULL_REFRESH": false, "STORE_FAILURES": false, "WHICH": "compile"
        })),
    );
}

/// pycompat's Python methods, plus a clear error for mutating an immutable container.
fn unknown_method(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args) {
        Err(e) if e.kind() == ErrorKind::UnknownMethod => match method {
            // `(nodes | selectattr(...) | list).pop()`: popping a value nothing else holds
            // (codegen does) works on a copy; the copy's loss of the item is invisible
            "pop" if matches!(value.kind(), ValueKind::Seq | ValueKind::Map) => {
                values::make_mutable(value.clone())?.call_method(state, method, args)
            }
            "append" | "extend" | "update" | "pop" | "insert" | "remove" => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot call {method}() on this value: only lists and dicts bound with {{% set %}} are mutable"),
            )),
            _ => Err(e),
        },
        other => other,
    }
}

/// A render failure with the line in the rendered file (or in the macro that failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub line: Option<usize>,
    pub message: String,
}

/// A human message for a minijinja error, naming the macro when the error came from one.
pub fn describe(e: &Error) -> String {
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(" (caused by: {s})"));
        source = s.source();
    }
    msg
}

/// Renders `source` (a node's raw SQL) with the given render context.
pub fn render(
    env: &Environment<'static>,
    rc: &Arc<context::RenderCtx>,
    name: &str,
    source: &str,
) -> Result<String, RenderError> {
    let prepared = prepare(source);
    let tmpl = env
        .template_from_named_str(name, &prepared)
        .map_err(|e| to_render_error(&e, name))?;
    render_template(&tmpl, rc, name)
}

fn render_template(
    tmpl: &Template<'_, '_>,
    rc: &Arc<context::RenderCtx>,
    name: &str,
) -> Result<String, RenderError> {
    tmpl.render(rc.root_value())
        .map_err(|e| to_render_error(&e, name))
}

/// A node's source as its templates are made from: named by its file, rewritten by
/// [`prepare`].
#[derive(Debug)]
pub struct PreparedSource {
    pub unique_id: String,
    pub name: String,
    pub raw: String,
    prepared: String,
}

impl PreparedSource {
    pub fn new(unique_id: &str, name: &str, raw: &str) -> Self {
        PreparedSource {
            unique_id: unique_id.to_string(),
            name: name.to_string(),
            raw: raw.to_string(),
            prepared: prepare(raw),
        }
    }
}

/// Node templates compiled at most once per parse and shared by a node's two renders (parse
/// time and compile time), which otherwise rewrite and compile the same source twice. Only a
/// one-shot parse makes them: a long-lived engine renders most nodes from its cache.
pub struct NodeTemplates<'a> {
    env: &'a Environment<'static>,
    sources: &'a [PreparedSource],
    by_id: std::collections::HashMap<&'a str, usize>,
    compiled: Vec<std::sync::OnceLock<Result<Template<'a, 'a>, RenderError>>>,
}

impl<'a> NodeTemplates<'a> {
    pub fn new(env: &'a Environment<'static>, sources: &'a [PreparedSource]) -> Self {
        NodeTemplates {
            env,
            sources,
            by_id: sources
                .iter()
                .enumerate()
                .map(|(i, s)| (s.unique_id.as_str(), i))
                .collect(),
            compiled: sources.iter().map(|_| std::sync::OnceLock::new()).collect(),
        }
    }

    /// Renders node `unique_id` when its template is here for exactly this file name and
    /// text (as [`render`] would); `None` otherwise.
    pub fn render(
        &self,
        rc: &Arc<context::RenderCtx>,
        unique_id: &str,
        name: &str,
        raw: &str,
    ) -> Option<Result<String, RenderError>> {
        let i = *self.by_id.get(unique_id)?;
        let src = &self.sources[i];
        if src.name != name || src.raw != raw {
            return None;
        }
        let tmpl = self.compiled[i].get_or_init(|| {
            self.env
                .template_from_named_str(&src.name, &src.prepared)
                .map_err(|e| to_render_error(&e, &src.name))
        });
        Some(match tmpl {
            Ok(t) => render_template(t, rc, name),
            Err(e) => Err(e.clone()),
        })
    }
}

/// [`NodeTemplates::render`] when `templates` has the node, else [`render`].
pub fn render_node(
    env: &Environment<'static>,
    templates: Option<&NodeTemplates<'_>>,
    rc: &Arc<context::RenderCtx>,
    (unique_id, name, raw): (&str, &str, &str),
) -> Result<String, RenderError> {
    templates
        .and_then(|t| t.render(rc, unique_id, name, raw))
        .unwrap_or_else(|| render(env, rc, name, raw))
}

fn to_render_error(e: &Error, node_template: &str) -> RenderError {
    let mut message = describe(e);
    if let Some(tmpl) = e.name() {
        if tmpl != node_template {
            message = format!("in {tmpl} line {}: {message}", e.line().unwrap_or(0));
        }
    }
    RenderError {
        line: e.line().filter(|_| e.name() == Some(node_template)),
        message: message.to_lowercase_first(),
    }
}

trait LowerFirst {
    fn to_lowercase_first(&self) -> String;
}

impl LowerFirst for String {
    fn to_lowercase_first(&self) -> String {
        let mut c = self.chars();
        match c.next() {
            Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_and_dict_defaults_become_mutable() {
        assert_eq!(
            mutable_defaults("{%- macro t(a, b=[], c={'k': [1]}, d='x=[', é=none) -%}"),
            "{%- macro t(a, b=__bf_mut([]), c=__bf_mut({'k': [1]}), d='x=[', é=none) -%}"
        );
        assert_eq!(mutable_defaults("{% macro t() %}"), "{% macro t() %}");
    }
}
