//! `backflow sources`: warehouse sources, the databases models run in. Settings are
//! the non-secret connection details (host, port, database, user, account, ...); the
//! password or key is a secret in credentials, named by `--credential`.

use super::client::CliError;
use super::output::{cell, timestamp, Details, Table, View};
use super::{names, Ctx};
use backflow_proto::catalog::v1 as pb;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Record a warehouse source.
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
    },
    /// List the workspace's warehouse sources.
    List,
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

/// `--output json` shape of a warehouse source.
#[derive(Debug, Serialize)]
pub struct SourceJson {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: String,
    pub settings: BTreeMap<String, String>,
    pub credential_id: String,
    pub created_at_unix_ms: i64,
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
            created_at_unix_ms: source.created_at_unix_ms,
        }
    }
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
        } => {
            let call = api
                .inner
                .create_warehouse_source(pb::CreateWarehouseSourceRequest {
                    workspace_id,
                    name,
                    kind: kind.to_proto() as i32,
                    settings: settings.into_iter().collect(),
                    credential_id: credential_id.unwrap_or_default(),
                    ..Default::default()
                })
                .await;
            let source = api
                .done(call)?
                .source
                .map(SourceJson::from)
                .ok_or_else(|| CliError::Failed("the server answered without the source".into()))?;
            let mut text = Details::new()
                .field("id", &source.id)
                .field("name", &source.name)
                .field("kind", &source.kind)
                .field("credential", &source.credential_id)
                .field("created", timestamp(source.created_at_unix_ms));
            for (key, value) in &source.settings {
                text = text.field(&format!("setting {key}"), value.clone());
            }
            let text = text.render();
            ctx.print(&View::new(&source, text));
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
            let mut table = Table::new(&["id", "name", "kind", "settings", "credential"]);
            for s in &sources {
                let settings: Vec<String> =
                    s.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                table.row(vec![
                    s.id.clone(),
                    cell(&s.name),
                    s.kind.clone(),
                    cell(&settings.join(",")),
                    cell(&s.credential_id),
                ]);
            }
            ctx.print(&View::new(&sources, table.render()));
        }
    }
    Ok(())
}
