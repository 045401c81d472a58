//! `backflow retl-models`: Reverse ETL models, built from a dbt model, a warehouse
//! source and a primary key. `check-key` verifies a key before `create` (row count,
//! distinct, duplicate and null keys, with a few duplicate examples); `update` and
//! `delete` are refused while an enabled sync uses the model (the message names them).

use super::client::CliError;
use super::model_reads::Mode;
use super::output::{cell, short_sha, timestamp, Details, Table, View};
use super::{names, Ctx};
use backflow_proto::catalog::v1 as pb;
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify a primary key: counts rows, distinct, duplicate and null keys.
    CheckKey {
        #[arg(long = "connection", value_name = "CONNECTION_ID")]
        connection_id: String,
        /// The dbt model's unique id or name.
        #[arg(long)]
        model: String,
        /// Key column, repeatable for a composite key.
        #[arg(long = "key", value_name = "COLUMN", required = true)]
        primary_key: Vec<String>,
        #[arg(long = "source", value_name = "SOURCE_ID")]
        source_id: Option<String>,
        #[arg(long, value_enum, default_value_t = Mode::Relation)]
        mode: Mode,
        /// At this commit [default: the latest synced one]
        #[arg(long = "commit", value_name = "SHA")]
        commit_sha: Option<String>,
    },
    /// Create a Reverse ETL model from a dbt model.
    Create {
        /// A name unique in the workspace.
        name: String,
        #[arg(long = "connection", value_name = "CONNECTION_ID")]
        connection_id: String,
        /// The dbt model's unique id or name.
        #[arg(long)]
        model: String,
        /// Key column, repeatable for a composite key.
        #[arg(long = "key", value_name = "COLUMN", required = true)]
        primary_key: Vec<String>,
        /// Warehouse source [default: the connection's].
        #[arg(long = "source", value_name = "SOURCE_ID")]
        source_id: Option<String>,
        #[arg(long, value_enum, default_value_t = Mode::Relation)]
        mode: Mode,
    },
    /// The workspace's Reverse ETL models.
    List,
    /// One Reverse ETL model: status, what it follows, which syncs use it.
    Get { retl_model_id: String },
    /// Rename, change the key or the query mode (refused while an enabled sync uses it).
    Update {
        retl_model_id: String,
        #[arg(long)]
        name: Option<String>,
        /// New key column, repeatable (replaces the whole key).
        #[arg(long = "key", value_name = "COLUMN")]
        primary_key: Vec<String>,
        #[arg(long, value_enum)]
        mode: Option<Mode>,
    },
    /// Delete (refused while an enabled sync uses it).
    Delete { retl_model_id: String },
}

/// `--output json` shape of a Reverse ETL model.
#[derive(Debug, Serialize)]
pub struct RetlModelJson {
    pub id: String,
    pub name: String,
    pub connection_id: String,
    pub model_unique_id: String,
    pub primary_key: Vec<String>,
    pub source_id: String,
    pub query_mode: String,
    pub status: String,
    pub broken_reason: String,
    pub broken_at_commit: String,
    pub commit_sha: String,
    pub relation_name: String,
    pub used_by_sync_ids: Vec<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
}

impl From<pb::RetlModel> for RetlModelJson {
    fn from(m: pb::RetlModel) -> Self {
        Self {
            id: m.id,
            name: m.name,
            connection_id: m.connection_id,
            model_unique_id: m.model_unique_id,
            primary_key: m.primary_key,
            source_id: m.source_id,
            query_mode: names::query_mode(m.query_mode),
            status: names::retl_model_status(m.status),
            broken_reason: m.broken_reason,
            broken_at_commit: m.broken_at_commit,
            commit_sha: m.commit_sha,
            relation_name: m.relation_name,
            used_by_sync_ids: m.used_by_sync_ids,
            created_at_unix_ms: m.created_at_unix_ms,
            updated_at_unix_ms: m.updated_at_unix_ms,
        }
    }
}

fn model_view(m: &RetlModelJson) -> View {
    let text = Details::new()
        .field("id", &m.id)
        .field("name", &m.name)
        .field("status", &m.status)
        .field("broken reason", &m.broken_reason)
        .field("broken at", &m.broken_at_commit)
        .field("connection", &m.connection_id)
        .field("dbt model", &m.model_unique_id)
        .field("commit", &m.commit_sha)
        .field("relation", &m.relation_name)
        .field("primary key", m.primary_key.join(","))
        .field("source", &m.source_id)
        .field("query mode", &m.query_mode)
        .field("used by syncs", m.used_by_sync_ids.join(","))
        .field("created", timestamp(m.created_at_unix_ms))
        .field("updated", timestamp(m.updated_at_unix_ms))
        .render();
    View::new(m, text)
}

fn list_view(models: &[RetlModelJson]) -> View {
    let mut table = Table::new(&[
        "id",
        "name",
        "status",
        "dbt model",
        "key",
        "commit",
        "used by",
    ]);
    for m in models {
        table.row(vec![
            m.id.clone(),
            cell(&m.name),
            m.status.clone(),
            cell(&m.model_unique_id),
            cell(&m.primary_key.join(",")),
            cell(&short_sha(&m.commit_sha)),
            cell(&m.used_by_sync_ids.len().to_string()),
        ]);
    }
    View::new(&models, table.render())
}

#[derive(Debug, Serialize)]
struct DuplicateJson {
    key: Vec<String>,
    count: i64,
}

/// `--output json` of `check-key`.
#[derive(Debug, Serialize)]
struct KeyCheckJson {
    primary_key: Vec<String>,
    unique: bool,
    row_count: i64,
    distinct_keys: i64,
    duplicate_keys: i64,
    null_keys: i64,
    examples: Vec<DuplicateJson>,
}

fn key_check_view(check: &KeyCheckJson) -> View {
    let mut text = Details::new()
        .field("primary key", check.primary_key.join(","))
        .field("unique", if check.unique { "yes" } else { "no" })
        .field("rows", check.row_count.to_string())
        .field("distinct keys", check.distinct_keys.to_string())
        .field("duplicate keys", check.duplicate_keys.to_string())
        .field("null keys", check.null_keys.to_string());
    if !check.examples.is_empty() {
        let mut table = Table::new(&["key", "rows"]);
        for example in &check.examples {
            table.row(vec![example.key.join(","), example.count.to_string()]);
        }
        text = text.section("duplicates", table.render());
    }
    View::new(check, text.render())
}

fn model_of(model: Option<pb::RetlModel>) -> Result<RetlModelJson, CliError> {
    model
        .map(RetlModelJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the retl model".into()))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let workspace_id = ctx.workspace();
    match command {
        Command::CheckKey {
            connection_id,
            model,
            primary_key,
            source_id,
            mode,
            commit_sha,
        } => {
            let commit_sha = commit_sha.unwrap_or_default();
            let unique_id =
                super::models::resolve_unique_id(ctx, &connection_id, &model, &commit_sha).await?;
            let mut api = ctx.client.catalog()?;
            let call = api
                .inner
                .check_primary_key(pb::CheckPrimaryKeyRequest {
                    workspace_id,
                    connection_id,
                    unique_id,
                    commit_sha,
                    source_id: source_id.unwrap_or_default(),
                    query_mode: mode.to_proto() as i32,
                    primary_key: primary_key.clone(),
                })
                .await;
            let r = api.done(call)?;
            let check = KeyCheckJson {
                primary_key,
                unique: r.unique,
                row_count: r.row_count,
                distinct_keys: r.distinct_keys,
                duplicate_keys: r.duplicate_keys,
                null_keys: r.null_keys,
                examples: r
                    .examples
                    .into_iter()
                    .map(|e| DuplicateJson {
                        key: e.key,
                        count: e.count,
                    })
                    .collect(),
            };
            ctx.print(&key_check_view(&check));
        }
        Command::Create {
            name,
            connection_id,
            model,
            primary_key,
            source_id,
            mode,
        } => {
            let model_unique_id =
                super::models::resolve_unique_id(ctx, &connection_id, &model, "").await?;
            let mut api = ctx.client.catalog()?;
            let call = api
                .inner
                .create_retl_model(pb::CreateRetlModelRequest {
                    workspace_id,
                    name,
                    connection_id,
                    model_unique_id,
                    primary_key,
                    source_id: source_id.unwrap_or_default(),
                    query_mode: mode.to_proto() as i32,
                })
                .await;
            ctx.print(&model_view(&model_of(api.done(call)?.model)?));
        }
        Command::List => {
            let mut api = ctx.client.catalog()?;
            let call = api
                .inner
                .list_retl_models(pb::ListRetlModelsRequest { workspace_id })
                .await;
            let models: Vec<RetlModelJson> = api
                .done(call)?
                .models
                .into_iter()
                .map(RetlModelJson::from)
                .collect();
            ctx.print(&list_view(&models));
        }
        Command::Get { retl_model_id } => {
            let mut api = ctx.client.catalog()?;
            let call = api
                .inner
                .get_retl_model(pb::GetRetlModelRequest {
                    workspace_id,
                    retl_model_id,
                })
                .await;
            ctx.print(&model_view(&model_of(api.done(call)?.model)?));
        }
        Command::Update {
            retl_model_id,
            name,
            primary_key,
            mode,
        } => {
            if name.is_none() && primary_key.is_empty() && mode.is_none() {
                return Err(CliError::Usage(
                    "nothing to update: give --name, --key or --mode".into(),
                ));
            }
            let mut api = ctx.client.catalog()?;
            let call = api
                .inner
                .update_retl_model(pb::UpdateRetlModelRequest {
                    workspace_id,
                    retl_model_id,
                    name: name.unwrap_or_default(),
                    primary_key,
                    query_mode: mode.map_or(0, |m| m.to_proto() as i32),
                })
                .await;
            ctx.print(&model_view(&model_of(api.done(call)?.model)?));
        }
        Command::Delete { retl_model_id } => {
            let mut api = ctx.client.catalog()?;
            let call = api
                .inner
                .delete_retl_model(pb::DeleteRetlModelRequest {
                    workspace_id,
                    retl_model_id: retl_model_id.clone(),
                })
                .await;
            api.done(call)?;
            ctx.print(&View::message(format!(
                "retl model {retl_model_id} deleted"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_checks_show_numbers_and_duplicates() {
        let check = KeyCheckJson {
            primary_key: vec!["id".into()],
            unique: false,
            row_count: 5,
            distinct_keys: 3,
            duplicate_keys: 1,
            null_keys: 1,
            examples: vec![DuplicateJson {
                key: vec!["2".into()],
                count: 2,
            }],
        };
        let view = key_check_view(&check);
        assert!(view.text.contains("duplicate keys"));
        assert_eq!(view.json["null_keys"], 1);
        assert_eq!(view.json["examples"][0]["count"], 2);
    }
}
