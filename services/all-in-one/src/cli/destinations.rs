//! `backflow destinations`: where syncs deliver (a webhook, a Segment-compatible
//! tracking API, HubSpot, Salesforce, a PostgreSQL table). Settings are the non-secret
//! details (url, host, object ...); the signing secret, write key, token or password is a
//! secret in credentials, named by `--credential`. Create and update test the
//! destination first (unless `--skip-test`); `test` says what is wrong.

use super::client::CliError;
use super::configured::{self, Listed};
use super::output::{timestamp, Details, View};
use super::{names, Ctx};
use backflow_proto::retl::v1 as pb;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Record a destination (tests it first).
    Create {
        /// A name unique in the workspace.
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// Non-secret setting, repeatable: `url=https://hooks.example.com/in`.
        #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        settings: Vec<(String, String)>,
        /// Secret id of the signing secret, write key, token or password.
        #[arg(long = "credential", value_name = "SECRET_ID")]
        credential_id: Option<String>,
        /// Requests per second shared by every sync to this account (default: the kind's).
        #[arg(long, value_name = "PER_SECOND")]
        rate_limit: Option<f64>,
        /// Store the destination without testing it.
        #[arg(long)]
        skip_test: bool,
    },
    /// Show one destination with its last test.
    Get { destination_id: String },
    /// Change a destination: only the given fields change (re-tests unless `--skip-test`).
    Update {
        destination_id: String,
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
        #[arg(long, value_name = "PER_SECOND")]
        rate_limit: Option<f64>,
        #[arg(long)]
        skip_test: bool,
    },
    /// Test the destination: exit 1 and say what is wrong when it fails.
    Test { destination_id: String },
    /// List the workspace's destinations.
    List,
    /// Delete a destination (refused while a sync delivers to it).
    Delete { destination_id: String },
}

/// Destination kinds, named like their proto values (`DESTINATION_KIND_WEBHOOK` is `webhook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Webhook,
    Segment,
    Hubspot,
    Salesforce,
    Postgres,
}

impl Kind {
    fn to_proto(self) -> pb::DestinationKind {
        match self {
            Kind::Webhook => pb::DestinationKind::Webhook,
            Kind::Segment => pb::DestinationKind::Segment,
            Kind::Hubspot => pb::DestinationKind::Hubspot,
            Kind::Salesforce => pb::DestinationKind::Salesforce,
            Kind::Postgres => pb::DestinationKind::Postgres,
        }
    }
}

/// `--output json` shape of a destination test.
#[derive(Debug, Serialize)]
pub struct TestJson {
    pub ok: bool,
    pub message: String,
    pub tested_at_unix_ms: i64,
}

impl From<pb::DestinationTestResult> for TestJson {
    fn from(result: pb::DestinationTestResult) -> Self {
        Self {
            ok: result.ok,
            message: result.message,
            tested_at_unix_ms: result.tested_at_unix_ms,
        }
    }
}

impl TestJson {
    fn summary(&self) -> String {
        if self.ok {
            "ok".into()
        } else {
            format!("failed: {}", self.message)
        }
    }
}

/// `--output json` shape of a destination.
#[derive(Debug, Serialize)]
pub struct DestinationJson {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: String,
    pub settings: BTreeMap<String, String>,
    pub credential_id: String,
    pub rate_limit_per_second: f64,
    pub version: i64,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    pub last_test: Option<TestJson>,
}

impl From<pb::Destination> for DestinationJson {
    fn from(destination: pb::Destination) -> Self {
        Self {
            id: destination.id,
            workspace_id: destination.workspace_id,
            name: destination.name,
            kind: names::destination_kind(destination.kind),
            settings: destination.settings.into_iter().collect(),
            credential_id: destination.credential_id,
            rate_limit_per_second: destination.rate_limit_per_second,
            version: destination.version,
            created_at_unix_ms: destination.created_at_unix_ms,
            updated_at_unix_ms: destination.updated_at_unix_ms,
            last_test: destination.last_test.map(TestJson::from),
        }
    }
}

fn rate(per_second: f64) -> String {
    if per_second > 0.0 {
        format!("{per_second}/s")
    } else {
        "kind default".into()
    }
}

fn details(destination: &DestinationJson) -> String {
    let text = Details::new()
        .field("id", &destination.id)
        .field("name", &destination.name)
        .field("kind", &destination.kind)
        .field("credential", &destination.credential_id)
        .field("rate limit", rate(destination.rate_limit_per_second))
        .field("version", destination.version.to_string())
        .field("created", timestamp(destination.created_at_unix_ms))
        .field("updated", timestamp(destination.updated_at_unix_ms))
        .field(
            "last test",
            destination
                .last_test
                .as_ref()
                .map(TestJson::summary)
                .unwrap_or_else(|| "never tested".into()),
        );
    configured::with_settings(text, &destination.settings).render()
}

fn destination_of(destination: Option<pb::Destination>) -> Result<DestinationJson, CliError> {
    destination
        .map(DestinationJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the destination".into()))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let mut api = ctx.client.retl()?;
    let workspace_id = ctx.workspace();
    match command {
        Command::Create {
            name,
            kind,
            settings,
            credential_id,
            rate_limit,
            skip_test,
        } => {
            let call = api
                .inner
                .create_destination(pb::CreateDestinationRequest {
                    workspace_id,
                    name,
                    kind: kind.to_proto() as i32,
                    settings: settings.into_iter().collect(),
                    credential_id: credential_id.unwrap_or_default(),
                    rate_limit_per_second: rate_limit.unwrap_or_default(),
                    skip_test,
                })
                .await;
            let destination = destination_of(api.done(call)?.destination)?;
            ctx.print(&View::new(&destination, details(&destination)));
        }
        Command::Get { destination_id } => {
            let call = api
                .inner
                .get_destination(pb::GetDestinationRequest {
                    workspace_id,
                    destination_id,
                })
                .await;
            let destination = destination_of(api.done(call)?.destination)?;
            ctx.print(&View::new(&destination, details(&destination)));
        }
        Command::Update {
            destination_id,
            name,
            settings,
            replace_settings,
            credential_id,
            rate_limit,
            skip_test,
        } => {
            let call = api
                .inner
                .update_destination(pb::UpdateDestinationRequest {
                    workspace_id,
                    destination_id,
                    name,
                    settings: settings.into_iter().collect(),
                    replace_settings,
                    credential_id,
                    rate_limit_per_second: rate_limit,
                    skip_test,
                })
                .await;
            let destination = destination_of(api.done(call)?.destination)?;
            ctx.print(&View::new(&destination, details(&destination)));
        }
        Command::Test { destination_id } => {
            let call = api
                .inner
                .test_destination(pb::TestDestinationRequest {
                    workspace_id,
                    destination_id,
                })
                .await;
            let result =
                api.done(call)?.result.map(TestJson::from).ok_or_else(|| {
                    CliError::Failed("the server answered without a result".into())
                })?;
            let text = Details::new()
                .field("ok", result.ok.to_string())
                .field("message", &result.message)
                .field("tested", timestamp(result.tested_at_unix_ms))
                .render();
            ctx.print(&View::new(&result, text));
            if !result.ok {
                return Err(CliError::Failed(format!(
                    "destination test failed: {}",
                    result.message
                )));
            }
        }
        Command::List => {
            let call = api
                .inner
                .list_destinations(pb::ListDestinationsRequest { workspace_id })
                .await;
            let destinations: Vec<DestinationJson> = api
                .done(call)?
                .destinations
                .into_iter()
                .map(DestinationJson::from)
                .collect();
            let table = configured::list_table(destinations.iter().map(|d| Listed {
                id: &d.id,
                name: &d.name,
                kind: &d.kind,
                settings: &d.settings,
                credential_id: &d.credential_id,
                last_test: d.last_test.as_ref().map(TestJson::summary),
            }));
            ctx.print(&View::new(&destinations, table));
        }
        Command::Delete { destination_id } => {
            let call = api
                .inner
                .delete_destination(pb::DeleteDestinationRequest {
                    workspace_id,
                    destination_id: destination_id.clone(),
                })
                .await;
            api.done(call)?;
            configured::print_deleted(ctx, "destination", &destination_id);
        }
    }
    Ok(())
}
