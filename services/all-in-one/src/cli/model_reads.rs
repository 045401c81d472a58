//! `backflow models preview` and `backflow models columns`: what a Reverse ETL model
//! would read, straight from the warehouse (read-only, with a statement timeout) —
//! the first rows with their types, and the columns with key suggestions.

use super::client::CliError;
use super::output::{cell, Details, Table, View};
use super::{names, Ctx};
use backflow_proto::catalog::v1 as pb;
use serde::Serialize;

/// Which SQL a Reverse ETL model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// `select * from <relation>` as the adapter renders it.
    #[default]
    Relation,
    /// The model's compiled SQL (one statement).
    CompiledSql,
}

impl Mode {
    pub fn to_proto(self) -> pb::QueryMode {
        match self {
            Mode::Relation => pb::QueryMode::Relation,
            Mode::CompiledSql => pb::QueryMode::CompiledSql,
        }
    }
}

/// The model to read: connection, model (unique id or name), commit.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    #[arg(value_name = "CONNECTION_ID")]
    pub connection_id: String,
    /// The model's unique id (`model.shop.customers`) or its name (`customers`).
    pub model: String,
    /// At this commit [default: the latest synced one]
    #[arg(long = "commit", value_name = "SHA")]
    pub commit_sha: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Rows to show (at most 100).
    #[arg(long, default_value_t = 10)]
    pub limit: i32,
    #[arg(long, value_enum, default_value_t = Mode::Relation)]
    pub mode: Mode,
    /// Warehouse source [default: the connection's].
    #[arg(long = "source", value_name = "SOURCE_ID")]
    pub source_id: Option<String>,
    /// Run it again instead of answering from the short-lived preview cache.
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, clap::Args)]
pub struct ColumnsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Describe the relation again even if a description is cached for the commit.
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Serialize)]
struct PreviewColumnJson {
    name: String,
    data_type: String,
    arrow_type: String,
    nullable: bool,
}

/// `--output json` of `models preview`: a NULL cell is `null`.
#[derive(Debug, Serialize)]
struct PreviewJson {
    columns: Vec<PreviewColumnJson>,
    rows: Vec<Vec<Option<String>>>,
    query: String,
    from_cache: bool,
    elapsed_ms: i64,
}

impl From<pb::PreviewModelResponse> for PreviewJson {
    fn from(p: pb::PreviewModelResponse) -> Self {
        Self {
            columns: p
                .columns
                .into_iter()
                .map(|c| PreviewColumnJson {
                    name: c.name,
                    data_type: c.data_type,
                    arrow_type: c.arrow_type,
                    nullable: c.nullable,
                })
                .collect(),
            rows: p
                .rows
                .into_iter()
                .map(|row| {
                    row.cells
                        .into_iter()
                        .enumerate()
                        .map(|(i, text)| {
                            (!row.null_cells.get(i).copied().unwrap_or(false)).then_some(text)
                        })
                        .collect()
                })
                .collect(),
            query: p.query,
            from_cache: p.from_cache,
            elapsed_ms: p.elapsed_ms,
        }
    }
}

fn preview_view(preview: &PreviewJson) -> View {
    let headers: Vec<String> = preview
        .columns
        .iter()
        .map(|c| format!("{} ({})", c.name, c.arrow_type))
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut table = Table::new(&headers);
    for row in &preview.rows {
        table.row(
            row.iter()
                .map(|value| value.clone().unwrap_or_else(|| "NULL".into()))
                .collect(),
        );
    }
    let text = format!(
        "{}\n{} rows in {} ms{}\nquery: {}",
        table.render().trim_end(),
        preview.rows.len(),
        preview.elapsed_ms,
        if preview.from_cache { " (cached)" } else { "" },
        preview.query
    );
    View::new(preview, text)
}

#[derive(Debug, Serialize)]
struct ColumnJson {
    name: String,
    data_type: String,
    arrow_type: String,
    origin: String,
    nullable: bool,
    tests: Vec<String>,
    description: String,
}

/// `--output json` of `models columns`.
#[derive(Debug, Serialize)]
struct ColumnsJson {
    commit_sha: String,
    columns: Vec<ColumnJson>,
    primary_key_suggestions: Vec<String>,
}

fn columns_view(columns: &ColumnsJson) -> View {
    let mut table = Table::new(&["name", "type", "arrow", "origin", "tests"]);
    for c in &columns.columns {
        table.row(vec![
            c.name.clone(),
            cell(&c.data_type),
            cell(&c.arrow_type),
            c.origin.clone(),
            cell(&c.tests.join(",")),
        ]);
    }
    let text = Details::new()
        .field("commit", &columns.commit_sha)
        .field("key suggestions", columns.primary_key_suggestions.join(","))
        .section("columns", table.render())
        .render();
    View::new(columns, text)
}

pub async fn preview(ctx: &Ctx, args: PreviewArgs) -> Result<(), CliError> {
    if !(1..=100).contains(&args.limit) {
        return Err(CliError::Usage(format!(
            "--limit must be between 1 and 100 (got {})",
            args.limit
        )));
    }
    let commit_sha = args.model.commit_sha.unwrap_or_default();
    let unique_id = super::models::resolve_unique_id(
        ctx,
        &args.model.connection_id,
        &args.model.model,
        &commit_sha,
    )
    .await?;
    let mut api = ctx.client.catalog()?;
    let call = api
        .inner
        .preview_model(pb::PreviewModelRequest {
            workspace_id: ctx.workspace(),
            connection_id: args.model.connection_id,
            unique_id,
            commit_sha,
            source_id: args.source_id.unwrap_or_default(),
            query_mode: args.mode.to_proto() as i32,
            limit: args.limit,
            refresh: args.refresh,
        })
        .await;
    let preview = PreviewJson::from(api.done(call)?);
    ctx.print(&preview_view(&preview));
    Ok(())
}

pub async fn columns(ctx: &Ctx, args: ColumnsArgs) -> Result<(), CliError> {
    let commit_sha = args.model.commit_sha.unwrap_or_default();
    let unique_id = super::models::resolve_unique_id(
        ctx,
        &args.model.connection_id,
        &args.model.model,
        &commit_sha,
    )
    .await?;
    let mut api = ctx.client.catalog()?;
    let call = api
        .inner
        .describe_model_columns(pb::DescribeModelColumnsRequest {
            workspace_id: ctx.workspace(),
            connection_id: args.model.connection_id,
            unique_id,
            commit_sha,
            refresh: args.refresh,
        })
        .await;
    let described = api.done(call)?;
    let columns = ColumnsJson {
        commit_sha: described.commit_sha,
        columns: described
            .columns
            .into_iter()
            .map(|c| ColumnJson {
                name: c.name,
                data_type: c.data_type,
                arrow_type: c.arrow_type,
                origin: names::column_origin(c.origin),
                nullable: c.nullable,
                tests: c.tests,
                description: c.description,
            })
            .collect(),
        primary_key_suggestions: described.primary_key_suggestions,
    };
    ctx.print(&columns_view(&columns));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_cells_are_null_in_json_and_named_in_tables() {
        let preview = PreviewJson::from(pb::PreviewModelResponse {
            columns: vec![pb::PreviewColumn {
                name: "email".into(),
                arrow_type: "Utf8".into(),
                ..Default::default()
            }],
            rows: vec![
                pb::PreviewRow {
                    cells: vec!["a@x".into()],
                    null_cells: vec![false],
                },
                pb::PreviewRow {
                    cells: vec![String::new()],
                    null_cells: vec![true],
                },
            ],
            query: "select * from t".into(),
            ..Default::default()
        });
        assert_eq!(
            preview.rows,
            vec![vec![Some("a@x".to_string())], vec![None]]
        );
        let view = preview_view(&preview);
        assert!(view.text.contains("NULL"));
        assert!(view.text.contains("EMAIL (UTF8)"));
        assert_eq!(view.json["rows"][1][0], serde_json::Value::Null);
    }
}
