//! `backflow sources`: warehouse sources, the databases models run in. Settings are
//! the non-secret connection details (host, port, database, user, account, ...); the
//! password or key is a secret in credentials, named by `--credential`. Create and
//! update test the connection first (unless `--skip-test`); `test` says what is wrong.

use super::client::CliError;
use super::configured::{self, Listed};
use super::output::{timestamp, Details, View};
use super::{names, Ctx};
use backflow_proto::catalog::v1 as pb;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Record a warehouse source (tests the connection first).
    Create {
        /// A name unique in the workspace.
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// Non-secret setting, repeatable: `host=db.internal`, `port=5432`, `database=analytics`.
        #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        settings: Vec<(String, String)>,
        /// Secret id of the password or key (`backflow secrets create --kind warehouse-password`).
        #[arg(long = "credential", value_name = "SECRET_ID")]
        credential_id: Option<String>,
        /// Schema Backflow may write to (diff state, run ledger); the test checks usage on it.
        #[arg(long)]
        backflow_schema: Option<String>,
        /// Write a run ledger (tables backflow_runs, backflow_run_records) into the
        /// backflow schema after every sync run from this source.
        #[arg(long)]
        run_ledger: bool,
        /// Store the source without testing the connection.
        #[arg(long)]
        skip_test: bool,
    },
    /// Show one source with its last test.
    Get { source_id: String },
    /// Change a source: only the given fields change (re-tests unless `--skip-test`).
    Update {
        source_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Setting to set, repeatable; `key=` removes it.
        #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        settings: Vec<(String, String)>,
        /// The given settings replace all settings.
        #[arg(long)]
        replace_settings: bool,
        #[arg(long = "credential", value_name = "SECRET_ID")]
        credential_id: Option<String>,
        #[arg(long)]
        backflow_schema: Option<String>,
        /// Turn the run ledger on (`true`) or off (`false`).
        #[arg(long, value_name = "BOOL")]
        run_ledger: Option<bool>,
        #[arg(long)]
        skip_test: bool,
    },
    /// Test the connection: exit 1 and say what is wrong when it fails.
    Test { source_id: String },
    /// List the workspace's warehouse sources.
    List,
    /// Delete a source (refused while a Git connection or Reverse ETL model uses it).
    Delete { source_id: String },
}

/// Warehouse kinds, named like their proto values (`WAREHOUSE_KIND_POSTGRES` is `postgres`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Postgres,
    Redshift,
    Snowflake,
    Bigquery,
    Databricks,
}

impl Kind {
    fn to_proto(self) -> pb::WarehouseKind {
        match self {
            Kind::Postgres => pb::WarehouseKind::Postgres,
            Kind::Redshift => pb::WarehouseKind::Redshift,
            Kind::Snowflake => pb::WarehouseKind::Snowflake,
            Kind::Bigquery => pb::WarehouseKind::Bigquery,
            Kind::Databricks => pb::WarehouseKind::Databricks,
        }
    }
}

/// `--output json` shape of a connection test.
#[derive(Debug, Serialize)]
pub struct TestJson {
    pub ok: bool,
    /// `unreachable`, `authentication`, `unknown-database`, ... (empty when ok).
    pub problem: String,
    pub message: String,
    pub tested_at_unix_ms: i64,
    pub server_version: String,
}

impl From<pb::SourceTestResult> for TestJson {
    fn from(result: pb::SourceTestResult) -> Self {
        let problem = if result.ok {
            String::new()
        } else {
            pb::SourceProblem::try_from(result.problem)
                .map(|p| names::short(p.as_str_name(), "SOURCE_PROBLEM_"))
                .unwrap_or_else(|_| format!("unknown({})", result.problem))
        };
        Self {
            ok: result.ok,
            problem,
            message: result.message,
            tested_at_unix_ms: result.tested_at_unix_ms,
            server_version: result.server_version,
        }
    }
}

impl TestJson {
    fn summary(&self) -> String {
        if self.ok {
            match self.server_version.as_str() {
                "" => "ok".to_string(),
                version => format!("ok ({version})"),
            }
        } else {
            format!("failed ({}): {}", self.problem, self.message)
        }
    }
}

/// `--output json` shape of a warehouse source.
#[derive(Debug, Serialize)]
pub struct SourceJson {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: String,
    pub settings: BTreeMap<String, String>,
    pub credential_id: String,
    pub backflow_schema: String,
    pub run_ledger: bool,
    pub version: i64,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    pub last_test: Option<TestJson>,
}

impl From<pb::WarehouseSource> for SourceJson {
    fn from(source: pb::WarehouseSource) -> Self {
        Self {
            id: source.id,
            workspace_id: source.workspace_id,
            name: source.name,
            kind: names::warehouse_kind(source.kind),
            settings: source.settings.into_iter().collect(),
            credential_id: source.credential_id,
            backflow_schema: source.backflow_schema,
            run_ledger: source.run_ledger,
            version: source.version,
            created_at_unix_ms: source.created_at_unix_ms,
            updated_at_unix_ms: source.updated_at_unix_ms,
            last_test: source.last_test.map(TestJson::from),
        }
    }
}

fn details(source: &SourceJson) -> String {
    let text = Details::new()
        .field("id", &source.id)
        .field("name", &source.name)
        .field("kind", &source.kind)
        .field("credential", &source.credential_id)
        .field("backflow schema", &source.backflow_schema)
        .field(
            "diff state",
            if source.backflow_schema.is_empty() {
                "backflow-side (the source is read-only to backflow)"
            } else if source.kind == "postgres" {
                "warehouse-side for auto/warehouse syncs (state tables in the backflow schema)"
            } else {
                "backflow-side (warehouse-side is built for postgres only)"
            },
        )
        .field("run ledger", if source.run_ledger { "on" } else { "off" })
        .field("version", source.version.to_string())
        .field("created", timestamp(source.created_at_unix_ms))
        .field("updated", timestamp(source.updated_at_unix_ms))
        .field(
            "last test",
            source
                .last_test
                .as_ref()
                .map(TestJson::summary)
                .unwrap_or_else(|| "never tested".into()),
        );
    configured::with_settings(text, &source.settings).render()
}

fn source_of(source: Option<pb::WarehouseSource>) -> Result<SourceJson, CliError> {
    source
        .map(SourceJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the source".into()))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let mut api = ctx.client.catalog()?;
    let workspace_id = ctx.workspace();
    match command {
        Command::Create {
            name,
            kind,
            settings,
            credential_id,
            backflow_schema,
            run_ledger,
            skip_test,
        } => {
            let call = api
                .inner
                .create_warehouse_source(pb::CreateWarehouseSourceRequest {
                    workspace_id,
                    name,
                    kind: kind.to_proto() as i32,
                    settings: settings.into_iter().collect(),
                    credential_id: credential_id.unwrap_or_default(),
                    backflow_schema: backflow_schema.unwrap_or_default(),
                    skip_test,
                    run_ledger,
                })
                .await;
            let source = source_of(api.done(call)?.source)?;
            ctx.print(&View::new(&source, details(&source)));
        }
        Command::Get { source_id } => {
            let call = api
                .inner
                .get_warehouse_source(pb::GetWarehouseSourceRequest {
                    workspace_id,
                    source_id,
                })
                .await;
            let source = source_of(api.done(call)?.source)?;
            ctx.print(&View::new(&source, details(&source)));
        }
        Command::Update {
            source_id,
            name,
            settings,
            replace_settings,
            credential_id,
            backflow_schema,
            run_ledger,
            skip_test,
        } => {
            let call = api
                .inner
                .update_warehouse_source(pb::UpdateWarehouseSourceRequest {
                    workspace_id,
                    source_id,
                    name: name.unwrap_or_default(),
                    settings: settings.into_iter().collect(),
                    replace_settings,
                    credential_id: credential_id.unwrap_or_default(),
                    backflow_schema,
                    skip_test,
                    run_ledger,
                })
                .await;
            let source = source_of(api.done(call)?.source)?;
            ctx.print(&View::new(&source, details(&source)));
        }
        Command::Test { source_id } => {
            let call = api
                .inner
                .test_warehouse_source(pb::TestWarehouseSourceRequest {
                    workspace_id,
                    source_id,
                })
                .await;
            let result =
                api.done(call)?.result.map(TestJson::from).ok_or_else(|| {
                    CliError::Failed("the server answered without a result".into())
                })?;
            let text = Details::new()
                .field("ok", result.ok.to_string())
                .field("problem", &result.problem)
                .field("message", &result.message)
                .field("server version", &result.server_version)
                .field("tested", timestamp(result.tested_at_unix_ms))
                .render();
            ctx.print(&View::new(&result, text));
            if !result.ok {
                return Err(CliError::Failed(format!(
                    "connection test failed ({}): {}",
                    result.problem, result.message
                )));
            }
        }
        Command::List => {
            let call = api
                .inner
                .list_warehouse_sources(pb::ListWarehouseSourcesRequest { workspace_id })
                .await;
            let sources: Vec<SourceJson> = api
                .done(call)?
                .sources
                .into_iter()
                .map(SourceJson::from)
                .collect();
            let table = configured::list_table(sources.iter().map(|s| Listed {
                id: &s.id,
                name: &s.name,
                kind: &s.kind,
                settings: &s.settings,
                credential_id: &s.credential_id,
                last_test: s.last_test.as_ref().map(TestJson::summary),
            }));
            ctx.print(&View::new(&sources, table));
        }
        Command::Delete { source_id } => {
            let call = api
                .inner
                .delete_warehouse_source(pb::DeleteWarehouseSourceRequest {
                    workspace_id,
                    source_id: source_id.clone(),
                })
                .await;
            api.done(call)?;
            configured::print_deleted(ctx, "warehouse source", &source_id);
        }
    }
    Ok(())
}
