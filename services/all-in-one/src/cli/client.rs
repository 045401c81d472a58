//! Where the client commands connect and as whom. Address, token and workspace are
//! resolved once (flags, then `BACKFLOW_ADDR` / `BACKFLOW_TOKEN` /
//! `BACKFLOW_WORKSPACE`, then the `./data/cli.json` that `backflow dev` writes), and
//! every call carries `authorization: Bearer <token>`. Errors a user can fix here are
//! [`CliError::Usage`] (exit 2); a refused or failed call is [`CliError::Call`] (exit 1)
//! and prints the server's own message.

use backflow_proto::catalog::v1::model_catalog_service_client::ModelCatalogServiceClient;
use backflow_proto::credentials::v1::credentials_service_client::CredentialsServiceClient;
use backflow_proto::dbtcloud::v1::dbt_cloud_listener_service_client::DbtCloudListenerServiceClient;
use backflow_proto::gitsync::v1::git_sync_service_client::GitSyncServiceClient;
use backflow_proto::ops::v1::dead_letter_service_client::DeadLetterServiceClient;
use backflow_proto::retl::v1::retl_scheduler_service_client::RetlSchedulerServiceClient;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// The front door `backflow dev` serves every service on.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50050";
/// The workspace `backflow dev` sets up.
pub const DEFAULT_WORKSPACE: &str = "default";
/// Where `backflow dev` writes the address and its dev token, relative to the cwd.
pub const DEFAULT_CLI_CONFIG: &str = "data/cli.json";

/// A failed client command and its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Something to fix on this side: a flag, a file, the address (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server refused or failed the call (exit 1): its message, as it sent it.
    #[error("{}", call_message(.status, .addr))]
    Call { status: tonic::Status, addr: String },
    /// The call went through but the outcome is a failure, e.g. a watched run failed (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Call { .. } | CliError::Failed(_) => 1,
        }
    }
}

fn call_message(status: &tonic::Status, addr: &str) -> String {
    let message = status.message().trim();
    match status.code() {
        tonic::Code::Unavailable => {
            let detail = if message.is_empty() {
                "unavailable"
            } else {
                message
            };
            format!(
                "cannot reach backflow at {addr}: {detail} (is `backflow dev` running? see --addr)"
            )
        }
        _ if message.is_empty() => format!("{} ({addr})", status.code().description()),
        _ => with_flag_names(message),
    }
}

/// Request fields the servers' hints name, and the flag a CLI user gives instead.
const FIELD_FLAGS: [(&str, &str); 3] = [
    ("pass skip_test", "pass --skip-test"),
    ("name it with credential_id", "name it with --credential"),
    ("name it in credential_id", "name it with --credential"),
];

/// A server message whose hints name request fields, with the CLI's flags in their place.
fn with_flag_names(message: &str) -> String {
    FIELD_FLAGS
        .iter()
        .fold(message.to_string(), |text, (field, flag)| {
            text.replace(field, flag)
        })
}

/// The connection flags every client group takes.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// gRPC address of Backflow [default: from the cli config, else http://127.0.0.1:50050]
    #[arg(long, global = true, env = "BACKFLOW_ADDR", value_name = "URL")]
    pub addr: Option<String>,
    /// API token, sent as `authorization: Bearer` [default: from the cli config]
    #[arg(
        long,
        global = true,
        env = "BACKFLOW_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Workspace every call names [default: from the cli config, else `default`]
    #[arg(long, global = true, env = "BACKFLOW_WORKSPACE", value_name = "ID")]
    pub workspace: Option<String>,
    /// The file `backflow dev` writes with address, token and workspace [default: ./data/cli.json]
    #[arg(long, global = true, env = "BACKFLOW_CLI_CONFIG", value_name = "FILE")]
    pub cli_config: Option<PathBuf>,
    /// Output format: aligned tables for people, or JSON for scripts
    #[arg(long, short = 'o', global = true, value_enum, default_value_t)]
    pub output: super::output::OutputFormat,
}

/// `./data/cli.json`: `{"addr": "...", "token": "...", "workspace": "..."}`, each optional.
#[derive(Debug, Default, Deserialize)]
struct CliConfigFile {
    #[serde(default)]
    addr: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    dbt_core_url: Option<String>,
}

/// Where to connect and as whom, after resolution.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub token: Option<SecretString>,
    pub workspace: String,
    /// The dbt Core endpoint `backflow dev` wrote to the cli config, if any.
    pub dbt_core_url: Option<String>,
}

impl Target {
    /// Flags and environment (already merged by clap) win over the cli config file.
    pub fn resolve(args: &ConnectArgs) -> Result<Self, CliError> {
        let (path, explicit) = match &args.cli_config {
            Some(path) => (path.clone(), true),
            None => (PathBuf::from(DEFAULT_CLI_CONFIG), false),
        };
        let file = read_cli_config(&path, explicit)?;
        let pick = |flag: &Option<String>, stored: Option<String>| {
            flag.clone()
                .filter(|value| !value.trim().is_empty())
                .or(stored.filter(|value| !value.trim().is_empty()))
        };
        let addr = pick(&args.addr, file.addr).unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let token = pick(&args.token, file.token).map(SecretString::from);
        let workspace =
            pick(&args.workspace, file.workspace).unwrap_or_else(|| DEFAULT_WORKSPACE.to_string());
        Ok(Self {
            addr: normalize_addr(&addr),
            token,
            workspace,
            dbt_core_url: file.dbt_core_url.filter(|url| !url.trim().is_empty()),
        })
    }
}

/// `127.0.0.1:50050` → `http://127.0.0.1:50050`.
fn normalize_addr(addr: &str) -> String {
    let addr = addr.trim();
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

fn read_cli_config(path: &Path, explicit: bool) -> Result<CliConfigFile, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(CliConfigFile::default())
        }
        Err(error) => {
            return Err(CliError::Usage(format!(
                "cannot read cli config {}: {error}",
                path.display()
            )))
        }
    };
    serde_json::from_str(&text).map_err(|error| {
        CliError::Usage(format!(
            "cli config {} is not valid json: {error}",
            path.display()
        ))
    })
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct BearerAuth {
    header: Option<AsciiMetadataValue>,
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, BearerAuth>;

/// Service addresses a deployment without a front door can set one by one
/// (`backflow serve <service>` per process); otherwise everything goes to `addr`.
const SERVICE_ADDR_VARS: [(Service, &str); 5] = [
    (Service::Credentials, "BACKFLOW_ADDR_CREDENTIALS"),
    (Service::GitSync, "BACKFLOW_ADDR_GIT_SYNC"),
    (Service::ModelCatalog, "BACKFLOW_ADDR_MODEL_CATALOG"),
    (
        Service::DbtCloudListener,
        "BACKFLOW_ADDR_DBT_CLOUD_LISTENER",
    ),
    (Service::RetlScheduler, "BACKFLOW_ADDR_RETL_SCHEDULER"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Credentials,
    GitSync,
    ModelCatalog,
    DbtCloudListener,
    RetlScheduler,
}

/// A connected client: lazy channels (nothing dials until the first call).
pub struct Client {
    pub target: Target,
    auth: BearerAuth,
}

impl Client {
    pub fn new(target: Target) -> Result<Self, CliError> {
        let header = match &target.token {
            Some(token) => {
                let mut value: AsciiMetadataValue =
                    format!("Bearer {}", token.expose_secret().trim())
                        .parse()
                        .map_err(|_| {
                            CliError::Usage(
                                "the token contains characters not allowed in a header".into(),
                            )
                        })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self {
            target,
            auth: BearerAuth { header },
        })
    }

    pub fn workspace(&self) -> String {
        self.target.workspace.clone()
    }

    /// The address a service is called at.
    pub fn addr_of(&self, service: Service) -> String {
        SERVICE_ADDR_VARS
            .iter()
            .find(|(s, _)| *s == service)
            .and_then(|(_, var)| std::env::var(var).ok())
            .filter(|addr| !addr.trim().is_empty())
            .map(|addr| normalize_addr(&addr))
            .unwrap_or_else(|| self.target.addr.clone())
    }

    fn channel(&self, service: Service) -> Result<(Channel, String), CliError> {
        let addr = self.addr_of(service);
        let endpoint = Endpoint::from_shared(addr.clone())
            .map_err(|error| {
                CliError::Usage(format!("address {addr:?} is not a valid url: {error}"))
            })?
            .connect_timeout(Duration::from_secs(5));
        Ok((endpoint.connect_lazy(), addr))
    }

    pub fn credentials(&self) -> Result<Api<CredentialsServiceClient<Authed>>, CliError> {
        let (channel, addr) = self.channel(Service::Credentials)?;
        Ok(Api {
            inner: CredentialsServiceClient::with_interceptor(channel, self.auth.clone()),
            addr,
        })
    }

    pub fn git_sync(&self) -> Result<Api<GitSyncServiceClient<Authed>>, CliError> {
        let (channel, addr) = self.channel(Service::GitSync)?;
        Ok(Api {
            inner: GitSyncServiceClient::with_interceptor(channel, self.auth.clone()),
            addr,
        })
    }

    /// Dead letters of one service (at its own address when one is set), or of every
    /// service the front door serves.
    pub fn dead_letters(
        &self,
        service: Option<Service>,
    ) -> Result<Api<DeadLetterServiceClient<Authed>>, CliError> {
        let addr = match service {
            Some(service) => self.addr_of(service),
            None => self.target.addr.clone(),
        };
        let channel = Endpoint::from_shared(addr.clone())
            .map_err(|error| {
                CliError::Usage(format!("address {addr:?} is not a valid url: {error}"))
            })?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Api {
            inner: DeadLetterServiceClient::with_interceptor(channel, self.auth.clone()),
            addr,
        })
    }

    /// The Reverse ETL scheduler: syncs, their runs, destinations.
    pub fn retl(&self) -> Result<Api<RetlSchedulerServiceClient<Authed>>, CliError> {
        let (channel, addr) = self.channel(Service::RetlScheduler)?;
        Ok(Api {
            inner: RetlSchedulerServiceClient::with_interceptor(channel, self.auth.clone()),
            addr,
        })
    }

    /// The dbt Cloud listener: connections, jobs, runs, webhook subscriptions.
    pub fn dbt_cloud(&self) -> Result<Api<DbtCloudListenerServiceClient<Authed>>, CliError> {
        let (channel, addr) = self.channel(Service::DbtCloudListener)?;
        Ok(Api {
            inner: DbtCloudListenerServiceClient::with_interceptor(channel, self.auth.clone()),
            addr,
        })
    }

    pub fn catalog(&self) -> Result<Api<ModelCatalogServiceClient<Authed>>, CliError> {
        let (channel, addr) = self.channel(Service::ModelCatalog)?;
        Ok(Api {
            inner: ModelCatalogServiceClient::with_interceptor(channel, self.auth.clone()),
            addr,
        })
    }
}

/// A generated client plus the address it calls, for error messages.
pub struct Api<C> {
    pub inner: C,
    pub addr: String,
}

impl<C> Api<C> {
    /// Turns a call's result into the response message or a [`CliError::Call`].
    pub fn done<T>(
        &self,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, CliError> {
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| CliError::Call {
                status,
                addr: self.addr.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConnectArgs {
        ConnectArgs::default()
    }

    #[test]
    fn flags_win_over_the_cli_config_file() -> anyhow::Result<()> {
        let dir =
            std::env::temp_dir().join(format!("backflow-cli-{}", backflow_platform::new_id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("cli.json");
        std::fs::write(
            &path,
            r#"{"addr":"http://127.0.0.1:50050","token":"dev-token","workspace":"default"}"#,
        )?;
        let mut from_file = args();
        from_file.cli_config = Some(path.clone());
        let target = Target::resolve(&from_file)?;
        assert_eq!(target.addr, "http://127.0.0.1:50050");
        assert_eq!(target.workspace, "default");
        assert_eq!(
            target.token.as_ref().map(|t| t.expose_secret().to_string()),
            Some("dev-token".into())
        );

        let mut flags = from_file.clone();
        flags.addr = Some("10.0.0.1:9000".into());
        flags.token = Some("flag-token".into());
        flags.workspace = Some("ws2".into());
        let target = Target::resolve(&flags)?;
        assert_eq!(target.addr, "http://10.0.0.1:9000");
        assert_eq!(target.workspace, "ws2");
        assert_eq!(
            target.token.as_ref().map(|t| t.expose_secret().to_string()),
            Some("flag-token".into())
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn a_missing_default_config_means_defaults_but_a_named_one_must_exist() -> anyhow::Result<()> {
        let mut named = args();
        named.cli_config = Some(PathBuf::from("/nonexistent/cli.json"));
        let error = Target::resolve(&named).err();
        assert!(
            matches!(&error, Some(CliError::Usage(message)) if message.contains("/nonexistent/cli.json")),
            "{error:?}"
        );
        Ok(())
    }

    #[test]
    fn call_errors_print_the_server_message() {
        let error = CliError::Call {
            status: tonic::Status::not_found("connection c1 not found"),
            addr: DEFAULT_ADDR.into(),
        };
        assert_eq!(error.to_string(), "connection c1 not found");
        assert_eq!(error.exit_code(), 1);
        let error = CliError::Call {
            status: tonic::Status::unimplemented(""),
            addr: DEFAULT_ADDR.into(),
        };
        assert_eq!(
            error.to_string(),
            "Operation is not implemented or not supported (http://127.0.0.1:50050)"
        );
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
    }

    #[test]
    fn hints_name_the_flags_not_the_request_fields() {
        let error = CliError::Call {
            status: tonic::Status::failed_precondition(
                "connection test failed (unreachable): cannot reach db:5432; fix the settings or credential, or pass skip_test to store it anyway",
            ),
            addr: DEFAULT_ADDR.into(),
        };
        assert_eq!(
            error.to_string(),
            "connection test failed (unreachable): cannot reach db:5432; fix the settings or credential, or pass --skip-test to store it anyway"
        );
        assert_eq!(
            with_flag_names("settings.password: looks like a secret; store it in the credentials service and name it with credential_id"),
            "settings.password: looks like a secret; store it in the credentials service and name it with --credential"
        );
    }
}
