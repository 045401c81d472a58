//! `backflow connections`: Git connections (where a dbt project lives, how to reach
//! it). Creating one checks access and queues the initial sync; `sync` queues a sync
//! now and, with `--watch`, follows it like `backflow runs watch`.

use super::client::CliError;
use super::output::{cell, timestamp, Details, OutputFormat, Table, View};
use super::runs::{self, RunJson};
use super::{names, Ctx};
use backflow_proto::gitsync::v1 as pb;
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a connection; access is checked, then the initial sync is queued.
    Create {
        /// A name unique in the workspace.
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Follow the initial sync until it ends (exit 1 if it fails).
        #[arg(long)]
        watch: bool,
    },
    /// Show one connection.
    Get { id: String },
    /// List the workspace's connections.
    List,
    /// Change settings; flags left out keep their current value.
    Update {
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Delete a connection (its models leave the catalog).
    Delete { id: String },
    /// Sync now (queued; coalesces with a sync already queued).
    Sync {
        id: String,
        /// Follow the run until it ends (exit 1 if it fails).
        #[arg(long)]
        watch: bool,
    },
}

/// Connection settings as flags; all optional so `update` can change one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsArgs {
    /// Repository URL: `https://host/org/repo.git`, `ssh://git@host/org/repo.git` or `git@host:org/repo.git`.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Git host kind [default: from the URL's host, else generic]
    #[arg(long, value_enum)]
    pub provider: Option<Provider>,
    /// [default: from the URL: ssh for ssh:// and user@host:path, else https]
    // clap's help text, not a doc link (rustdoc reads `…user@` as a disambiguator)
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// Branch to follow [default: main]
    #[arg(long)]
    pub branch: Option<String>,
    /// Schema dbt builds into when a model sets none (e.g. `analytics`).
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub default_schema: Option<String>,
    /// Directory of dbt_project.yml inside the repository [default: the root]
    #[arg(long, value_name = "PATH")]
    pub project_path: Option<String>,
    /// dbt Core version of the project [default: 1.7]
    #[arg(long, value_name = "VERSION")]
    pub dbt_version: Option<String>,
    /// Secret id of the Git token / SSH key / GitHub App (`backflow secrets create`).
    #[arg(long = "credential", value_name = "SECRET_ID")]
    pub credential_id: Option<String>,
    /// Warehouse source the models run in.
    #[arg(long = "warehouse-source", value_name = "ID")]
    pub warehouse_source_id: Option<String>,
    /// Secret id of the webhook secret signing push webhooks (`""` removes it).
    #[arg(long = "webhook-secret", value_name = "SECRET_ID")]
    pub webhook_secret_credential_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    Github,
    Gitlab,
    Bitbucket,
    Generic,
}

impl Provider {
    fn to_proto(self) -> pb::GitProvider {
        match self {
            Provider::Github => pb::GitProvider::Github,
            Provider::Gitlab => pb::GitProvider::Gitlab,
            Provider::Bitbucket => pb::GitProvider::Bitbucket,
            Provider::Generic => pb::GitProvider::Generic,
        }
    }

    /// github.com, gitlab.com and bitbucket.org are recognised; anything else is generic.
    fn from_url(url: &str) -> Provider {
        let host = host_of(url).to_ascii_lowercase();
        if host == "github.com" || host.ends_with(".github.com") {
            Provider::Github
        } else if host == "gitlab.com" || host.ends_with(".gitlab.com") {
            Provider::Gitlab
        } else if host == "bitbucket.org" {
            Provider::Bitbucket
        } else {
            Provider::Generic
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Https,
    Ssh,
}

impl Protocol {
    fn to_proto(self) -> pb::GitProtocol {
        match self {
            Protocol::Https => pb::GitProtocol::Https,
            Protocol::Ssh => pb::GitProtocol::Ssh,
        }
    }

    fn from_url(url: &str) -> Protocol {
        let url = url.trim();
        let scp_like = !url.contains("://") && url.contains('@') && url.contains(':');
        if url.starts_with("ssh://") || scp_like {
            Protocol::Ssh
        } else {
            Protocol::Https
        }
    }
}

/// The host of `https://host/…`, `ssh://user@host:port/…` or `user@host:path`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host_port.split(':').next().unwrap_or("")
}

impl SettingsArgs {
    /// Settings for a new connection: URL, schema, credential and warehouse source are needed.
    fn new_settings(&self) -> Result<pb::ConnectionSettings, CliError> {
        let required = |value: &Option<String>, flag: &str| {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    CliError::Usage(format!("--{flag} is required to create a connection"))
                })
        };
        let url = required(&self.url, "url")?;
        let defaults = pb::ConnectionSettings {
            provider: self.provider.unwrap_or(Provider::from_url(&url)).to_proto() as i32,
            protocol: self.protocol.unwrap_or(Protocol::from_url(&url)).to_proto() as i32,
            repository_url: url,
            branch: "main".into(),
            dbt_version: "1.7".into(),
            default_schema: required(&self.default_schema, "schema")?,
            project_path: String::new(),
            credential_id: required(&self.credential_id, "credential")?,
            warehouse_source_id: required(&self.warehouse_source_id, "warehouse-source")?,
            webhook_secret_credential_id: String::new(),
        };
        Ok(self.apply(defaults))
    }

    /// The flags given, over `current`. A new URL without `--provider`/`--protocol`
    /// takes them from the URL.
    fn apply(&self, current: pb::ConnectionSettings) -> pb::ConnectionSettings {
        let mut settings = current;
        if let Some(url) = &self.url {
            if self.provider.is_none() {
                settings.provider = Provider::from_url(url).to_proto() as i32;
            }
            if self.protocol.is_none() {
                settings.protocol = Protocol::from_url(url).to_proto() as i32;
            }
            settings.repository_url = url.clone();
        }
        if let Some(provider) = self.provider {
            settings.provider = provider.to_proto() as i32;
        }
        if let Some(protocol) = self.protocol {
            settings.protocol = protocol.to_proto() as i32;
        }
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                *field = value.clone();
            }
        };
        set(&mut settings.branch, &self.branch);
        set(&mut settings.default_schema, &self.default_schema);
        set(&mut settings.project_path, &self.project_path);
        set(&mut settings.dbt_version, &self.dbt_version);
        set(&mut settings.credential_id, &self.credential_id);
        set(&mut settings.warehouse_source_id, &self.warehouse_source_id);
        set(
            &mut settings.webhook_secret_credential_id,
            &self.webhook_secret_credential_id,
        );
        settings
    }
}

/// `--output json` shape of a connection's settings.
#[derive(Debug, Serialize)]
pub struct SettingsJson {
    pub provider: String,
    pub protocol: String,
    pub repository_url: String,
    pub branch: String,
    pub dbt_version: String,
    pub default_schema: String,
    pub project_path: String,
    pub credential_id: String,
    pub warehouse_source_id: String,
    pub webhook_secret_credential_id: String,
}

/// `--output json` shape of a connection.
#[derive(Debug, Serialize)]
pub struct ConnectionJson {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub settings: SettingsJson,
    pub settings_version: i64,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
}

impl From<pb::Connection> for ConnectionJson {
    fn from(connection: pb::Connection) -> Self {
        let s = connection.settings.unwrap_or_default();
        Self {
            id: connection.id,
            workspace_id: connection.workspace_id,
            name: connection.name,
            settings: SettingsJson {
                provider: names::provider(s.provider),
                protocol: names::protocol(s.protocol),
                repository_url: s.repository_url,
                branch: s.branch,
                dbt_version: s.dbt_version,
                default_schema: s.default_schema,
                project_path: s.project_path,
                credential_id: s.credential_id,
                warehouse_source_id: s.warehouse_source_id,
                webhook_secret_credential_id: s.webhook_secret_credential_id,
            },
            settings_version: connection.settings_version,
            created_at_unix_ms: connection.created_at_unix_ms,
            updated_at_unix_ms: connection.updated_at_unix_ms,
        }
    }
}

/// `--output json` of `create` and `update`: the connection and the run it queued.
#[derive(Debug, Serialize)]
struct ChangedJson {
    connection: ConnectionJson,
    run: Option<RunJson>,
}

fn details(connection: &ConnectionJson) -> Details {
    let s = &connection.settings;
    Details::new()
        .field("id", &connection.id)
        .field("name", &connection.name)
        .field("repository", &s.repository_url)
        .field("provider", &s.provider)
        .field("protocol", &s.protocol)
        .field("branch", &s.branch)
        .field("project path", &s.project_path)
        .field("default schema", &s.default_schema)
        .field("dbt version", &s.dbt_version)
        .field("credential", &s.credential_id)
        .field("warehouse source", &s.warehouse_source_id)
        .field("webhook secret", &s.webhook_secret_credential_id)
        .field("settings version", connection.settings_version.to_string())
        .field("created", timestamp(connection.created_at_unix_ms))
        .field("updated", timestamp(connection.updated_at_unix_ms))
}

fn changed_view(connection: ConnectionJson, run: Option<RunJson>) -> View {
    let mut text = details(&connection);
    if let Some(run) = &run {
        text = text.field("queued run", format!("{} ({})", run.id, run.status));
    }
    let text = text.render();
    View::new(&ChangedJson { connection, run }, text)
}

fn connection_of(connection: Option<pb::Connection>) -> Result<ConnectionJson, CliError> {
    connection
        .map(ConnectionJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the connection".into()))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let mut api = ctx.client.git_sync()?;
    let workspace_id = ctx.workspace();
    match command {
        Command::Create {
            name,
            settings,
            watch,
        } => {
            let settings = settings.new_settings()?;
            let call = api
                .inner
                .create_connection(pb::CreateConnectionRequest {
                    workspace_id,
                    name,
                    settings: Some(settings),
                })
                .await;
            let created = api.done(call)?;
            let connection = connection_of(created.connection)?;
            let run = created.initial_run.map(RunJson::from);
            match run {
                // one JSON document: the connection and its initial run as it ended
                Some(run) if watch && ctx.format == OutputFormat::Json => {
                    let ended = runs::follow(ctx, &run.id, runs::WatchArgs::default()).await?;
                    ctx.print(&changed_view(connection, Some(ended.clone())));
                    return runs::outcome(&ended);
                }
                Some(run) if watch => {
                    let run_id = run.id.clone();
                    ctx.print(&changed_view(connection, Some(run)));
                    return runs::watch(ctx, &run_id, runs::WatchArgs::default()).await;
                }
                run => ctx.print(&changed_view(connection, run)),
            }
        }
        Command::Get { id } => {
            let call = api
                .inner
                .get_connection(pb::GetConnectionRequest {
                    workspace_id,
                    connection_id: id,
                })
                .await;
            let connection = connection_of(api.done(call)?.connection)?;
            let text = details(&connection).render();
            ctx.print(&View::new(&connection, text));
        }
        Command::List => {
            let call = api
                .inner
                .list_connections(pb::ListConnectionsRequest { workspace_id })
                .await;
            let connections: Vec<ConnectionJson> = api
                .done(call)?
                .connections
                .into_iter()
                .map(ConnectionJson::from)
                .collect();
            let mut table = Table::new(&["id", "name", "repository", "branch", "path", "updated"]);
            for c in &connections {
                table.row(vec![
                    c.id.clone(),
                    cell(&c.name),
                    cell(&c.settings.repository_url),
                    cell(&c.settings.branch),
                    cell(&c.settings.project_path),
                    timestamp(c.updated_at_unix_ms),
                ]);
            }
            ctx.print(&View::new(&connections, table.render()));
        }
        Command::Update { id, settings } => {
            let call = api
                .inner
                .get_connection(pb::GetConnectionRequest {
                    workspace_id: workspace_id.clone(),
                    connection_id: id.clone(),
                })
                .await;
            let current = api.done(call)?.connection.ok_or_else(|| {
                CliError::Failed("the server answered without the connection".into())
            })?;
            let expected_settings_version = current.settings_version;
            let call = api
                .inner
                .update_settings(pb::UpdateSettingsRequest {
                    workspace_id,
                    connection_id: id,
                    settings: Some(settings.apply(current.settings.unwrap_or_default())),
                    expected_settings_version,
                })
                .await;
            let updated = api.done(call)?;
            ctx.print(&changed_view(
                connection_of(updated.connection)?,
                updated.run.map(RunJson::from),
            ));
        }
        Command::Delete { id } => {
            let call = api
                .inner
                .delete_connection(pb::DeleteConnectionRequest {
                    workspace_id,
                    connection_id: id.clone(),
                })
                .await;
            api.done(call)?;
            ctx.print(&View::message(format!("deleted connection {id}")));
        }
        Command::Sync { id, watch } => {
            let call = api
                .inner
                .trigger_sync(pb::TriggerSyncRequest {
                    workspace_id,
                    connection_id: id,
                })
                .await;
            let run =
                api.done(call)?.run.map(RunJson::from).ok_or_else(|| {
                    CliError::Failed("the server answered without the run".into())
                })?;
            if watch {
                return runs::watch(ctx, &run.id, runs::WatchArgs::default()).await;
            }
            let text = runs::details(&run).render();
            ctx.print(&View::new(&run, text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_and_protocol_follow_the_url() {
        for (url, provider, protocol) in [
            (
                "https://github.com/acme/shop.git",
                Provider::Github,
                Protocol::Https,
            ),
            (
                "git@github.com:acme/shop.git",
                Provider::Github,
                Protocol::Ssh,
            ),
            (
                "ssh://git@gitlab.com:22/acme/shop.git",
                Provider::Gitlab,
                Protocol::Ssh,
            ),
            (
                "https://bitbucket.org/acme/shop.git",
                Provider::Bitbucket,
                Protocol::Https,
            ),
            (
                "http://127.0.0.1:8080/shop.git",
                Provider::Generic,
                Protocol::Https,
            ),
        ] {
            assert_eq!(Provider::from_url(url), provider, "{url}");
            assert_eq!(Protocol::from_url(url), protocol, "{url}");
        }
    }

    #[test]
    fn create_needs_url_schema_credential_and_source() {
        let args = SettingsArgs {
            url: Some("https://github.com/acme/shop.git".into()),
            default_schema: Some("analytics".into()),
            credential_id: Some("s1".into()),
            ..SettingsArgs::default()
        };
        let error = args.new_settings().err();
        assert!(
            matches!(&error, Some(CliError::Usage(m)) if m == "--warehouse-source is required to create a connection"),
            "{error:?}"
        );
        let settings = SettingsArgs {
            warehouse_source_id: Some("w1".into()),
            ..args
        }
        .new_settings();
        assert!(matches!(settings, Ok(ref s) if s.branch == "main"
            && s.dbt_version == "1.7"
            && s.provider == pb::GitProvider::Github as i32
            && s.protocol == pb::GitProtocol::Https as i32));
    }

    #[test]
    fn update_changes_only_the_flags_given() {
        let current = pb::ConnectionSettings {
            provider: pb::GitProvider::Github as i32,
            protocol: pb::GitProtocol::Https as i32,
            repository_url: "https://github.com/acme/shop.git".into(),
            branch: "main".into(),
            dbt_version: "1.7".into(),
            default_schema: "analytics".into(),
            project_path: "dbt".into(),
            credential_id: "s1".into(),
            warehouse_source_id: "w1".into(),
            webhook_secret_credential_id: "s2".into(),
        };
        let changed = SettingsArgs {
            branch: Some("release".into()),
            webhook_secret_credential_id: Some(String::new()),
            ..SettingsArgs::default()
        }
        .apply(current.clone());
        assert_eq!(
            changed,
            pb::ConnectionSettings {
                branch: "release".into(),
                webhook_secret_credential_id: String::new(),
                ..current.clone()
            }
        );
        let moved = SettingsArgs {
            url: Some("git@gitlab.com:acme/shop.git".into()),
            ..SettingsArgs::default()
        }
        .apply(current);
        assert_eq!(moved.provider, pb::GitProvider::Gitlab as i32);
        assert_eq!(moved.protocol, pb::GitProtocol::Ssh as i32);
    }
}
