//! `backflow models`: the dbt models of a connection at its latest synced commit (or
//! a given one). `get` shows what a Reverse ETL model is built from: the relation,
//! compiled SQL, columns with their tests, and primary-key suggestions.

use super::client::CliError;
use super::output::{cell, counted, Details, Table, View};
use super::Ctx;
use backflow_proto::catalog::v1 as pb;
use serde::Serialize;

/// The largest page the catalog serves.
const PAGE_SIZE: i32 = 1000;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A connection's models, ordered by unique id.
    List {
        #[arg(value_name = "CONNECTION_ID")]
        connection_id: String,
        /// At this commit [default: the latest synced one]
        #[arg(long = "commit", value_name = "SHA")]
        commit_sha: Option<String>,
        /// Include each model's compiled SQL (JSON output).
        #[arg(long)]
        sql: bool,
    },
    /// One model: relation, compiled SQL, columns, key suggestions.
    Get {
        #[arg(value_name = "CONNECTION_ID")]
        connection_id: String,
        /// The model's unique id (`model.shop.customers`) or its name (`customers`).
        model: String,
        /// At this commit [default: the latest synced one]
        #[arg(long = "commit", value_name = "SHA")]
        commit_sha: Option<String>,
    },
    /// The first rows of a model's Reverse ETL query, run read-only in the warehouse.
    Preview(super::model_reads::PreviewArgs),
    /// A model's columns: from YAML, else described by the warehouse (cached per commit).
    Columns(super::model_reads::ColumnsArgs),
}

/// `--output json` shape of a model column.
#[derive(Debug, Serialize)]
pub struct ColumnJson {
    pub name: String,
    pub description: String,
    pub data_type: String,
    pub tests: Vec<String>,
}

/// `--output json` shape of a model.
#[derive(Debug, Serialize)]
pub struct ModelJson {
    pub unique_id: String,
    pub connection_id: String,
    pub commit_sha: String,
    pub name: String,
    pub package_name: String,
    pub original_file_path: String,
    pub database: String,
    pub schema: String,
    pub alias: String,
    pub relation_name: String,
    pub materialized: String,
    pub description: String,
    pub tags: Vec<String>,
    pub columns: Vec<ColumnJson>,
    pub depends_on: Vec<String>,
    /// Empty in lists unless `--sql` is given.
    pub compiled_sql: String,
    pub checksum: String,
    pub primary_key_suggestions: Vec<String>,
    pub compile_error: String,
}

impl From<pb::Model> for ModelJson {
    fn from(m: pb::Model) -> Self {
        Self {
            unique_id: m.unique_id,
            connection_id: m.connection_id,
            commit_sha: m.commit_sha,
            name: m.name,
            package_name: m.package_name,
            original_file_path: m.original_file_path,
            database: m.database,
            schema: m.schema,
            alias: m.alias,
            relation_name: m.relation_name,
            materialized: m.materialized,
            description: m.description,
            tags: m.tags,
            columns: m
                .columns
                .into_iter()
                .map(|c| ColumnJson {
                    name: c.name,
                    description: c.description,
                    data_type: c.data_type,
                    tests: c.tests,
                })
                .collect(),
            depends_on: m.depends_on,
            compiled_sql: m.compiled_sql,
            checksum: m.checksum,
            primary_key_suggestions: m.primary_key_suggestions,
            compile_error: m.compile_error,
        }
    }
}

/// `--output json` of `models list`: the commit listed and its models.
#[derive(Debug, Serialize)]
struct ModelListJson {
    commit_sha: String,
    models: Vec<ModelJson>,
}

fn list_view(list: &ModelListJson) -> View {
    let mut table = Table::new(&[
        "name",
        "materialized",
        "relation",
        "columns",
        "key",
        "error",
    ]);
    for m in &list.models {
        table.row(vec![
            m.name.clone(),
            cell(&m.materialized),
            cell(&m.relation_name),
            m.columns.len().to_string(),
            cell(&m.primary_key_suggestions.join(",")),
            cell(&m.compile_error),
        ]);
    }
    let text = format!(
        "commit {}: {}\n{}",
        cell(&list.commit_sha),
        counted(
            i64::try_from(list.models.len()).unwrap_or(i64::MAX),
            "model"
        ),
        table.render()
    );
    View::new(list, text)
}

fn model_view(model: &ModelJson) -> View {
    let mut columns = Table::new(&["name", "type", "tests", "description"]);
    for c in &model.columns {
        columns.row(vec![
            c.name.clone(),
            cell(&c.data_type),
            cell(&c.tests.join(",")),
            cell(&c.description),
        ]);
    }
    let text = Details::new()
        .field("unique id", &model.unique_id)
        .field("name", &model.name)
        .field("commit", &model.commit_sha)
        .field("file", &model.original_file_path)
        .field("relation", &model.relation_name)
        .field("materialized", &model.materialized)
        .field("description", &model.description)
        .field("tags", model.tags.join(","))
        .field("depends on", model.depends_on.join(","))
        .field("key suggestions", model.primary_key_suggestions.join(","))
        .field("compile error", &model.compile_error)
        .section(
            "columns",
            if model.columns.is_empty() {
                String::new()
            } else {
                columns.render()
            },
        )
        .section("compiled sql", &model.compiled_sql)
        .render();
    View::new(model, text)
}

async fn list_all(
    ctx: &Ctx,
    connection_id: &str,
    commit_sha: &str,
    sql: bool,
) -> Result<ModelListJson, CliError> {
    let mut api = ctx.client.catalog()?;
    let mut models = Vec::new();
    let mut page_token = String::new();
    let listed_commit = loop {
        let call = api
            .inner
            .list_models(pb::ListModelsRequest {
                workspace_id: ctx.workspace(),
                connection_id: connection_id.to_string(),
                commit_sha: commit_sha.to_string(),
                page_size: PAGE_SIZE,
                page_token: page_token.clone(),
                include_compiled_sql: sql,
            })
            .await;
        let page = api.done(call)?;
        models.extend(page.models.into_iter().map(ModelJson::from));
        if page.next_page_token.is_empty() {
            break page.commit_sha;
        }
        page_token = page.next_page_token;
    };
    Ok(ModelListJson {
        commit_sha: listed_commit,
        models,
    })
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::List {
            connection_id,
            commit_sha,
            sql,
        } => {
            let list = list_all(ctx, &connection_id, &commit_sha.unwrap_or_default(), sql).await?;
            ctx.print(&list_view(&list));
        }
        Command::Get {
            connection_id,
            model,
            commit_sha,
        } => {
            let commit_sha = commit_sha.unwrap_or_default();
            let unique_id = resolve_unique_id(ctx, &connection_id, &model, &commit_sha).await?;
            let mut api = ctx.client.catalog()?;
            let call = api
                .inner
                .get_model(pb::GetModelRequest {
                    workspace_id: ctx.workspace(),
                    connection_id,
                    unique_id,
                    commit_sha,
                })
                .await;
            let model =
                api.done(call)?.model.map(ModelJson::from).ok_or_else(|| {
                    CliError::Failed("the server answered without the model".into())
                })?;
            ctx.print(&model_view(&model));
        }
        Command::Preview(args) => super::model_reads::preview(ctx, args).await?,
        Command::Columns(args) => super::model_reads::columns(ctx, args).await?,
    }
    Ok(())
}

/// A model's unique id from its unique id (`model.shop.customers`, it has dots) or its
/// bare name, looked up among the connection's models.
pub(super) async fn resolve_unique_id(
    ctx: &Ctx,
    connection_id: &str,
    model: &str,
    commit_sha: &str,
) -> Result<String, CliError> {
    if model.contains('.') {
        return Ok(model.to_string());
    }
    let list = list_all(ctx, connection_id, commit_sha, false).await?;
    let none_at_all = list.models.is_empty();
    let mut found = list.models.into_iter().filter(|m| m.name == model);
    match (found.next(), found.next()) {
        (Some(only), None) => Ok(only.unique_id),
        (Some(_), Some(_)) => Err(CliError::Usage(format!(
            "more than one model is named {model:?}: give its unique id"
        ))),
        (None, _) => Err(CliError::Failed(no_such_model(
            model,
            connection_id,
            commit_sha,
            none_at_all,
        ))),
    }
}

/// Why a model name was not found: at a commit that has no models at all (not one the
/// connection synced, most likely), or before any sync, say so.
fn no_such_model(model: &str, connection_id: &str, commit_sha: &str, none_at_all: bool) -> String {
    let missing = format!("no model named {model:?} in connection {connection_id}");
    let runs =
        format!("`backflow runs list --connection {connection_id}` shows its synced commits");
    match (none_at_all, commit_sha.is_empty()) {
        (false, true) => missing,
        (false, false) => format!("{missing} at commit {commit_sha}"),
        (true, false) => format!(
            "{missing}: commit {commit_sha} has no models here (is it a commit the connection synced? {runs})"
        ),
        (true, true) => format!("{missing}: it has no synced models yet ({runs})"),
    }
}

#[cfg(test)]
mod tests {
    use super::no_such_model;

    #[test]
    fn a_missing_model_says_when_the_commit_has_no_models() {
        assert_eq!(
            no_such_model("customers", "c1", "", false),
            "no model named \"customers\" in connection c1"
        );
        assert_eq!(
            no_such_model("customers", "c1", "deadbeef", true),
            "no model named \"customers\" in connection c1: commit deadbeef has no models here \
             (is it a commit the connection synced? `backflow runs list --connection c1` shows its synced commits)"
        );
        assert!(no_such_model("customers", "c1", "", true).contains("no synced models yet"));
    }
}
