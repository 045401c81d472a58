//! `backflow secrets`: credentials the services use (Git tokens, SSH keys, GitHub
//! App keys, webhook secrets, ...). Material is read from a file or stdin, never from
//! the command line, so it stays out of shell history and `ps`; it is never printed
//! and cannot be read back.

use super::client::CliError;
use super::output::{cell, counted, timestamp, Details, Table, View};
use super::{names, Ctx};
use backflow_proto::credentials::v1 as pb;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store a new secret; prints its id (the material is never shown again).
    Create {
        /// A name unique in the workspace.
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// File holding the material (token, private key, ...); `-` reads stdin.
        #[arg(long, value_name = "FILE")]
        material_file: PathBuf,
        /// Pinned SSH host keys for an ssh-private-key (e.g. `ssh-keyscan host > F`).
        #[arg(long, value_name = "FILE")]
        known_hosts_file: Option<PathBuf>,
        /// Non-secret attribute, repeatable: `username=git`, `app_id=123`, `installation_id=9`.
        #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        attributes: Vec<(String, String)>,
    },
    /// Store a new version of a secret's material.
    Rotate {
        id: String,
        /// File holding the new material; `-` reads stdin.
        #[arg(long, value_name = "FILE")]
        material_file: PathBuf,
    },
    /// Change a secret's attributes without new material: re-pin an SSH key's
    /// `known_hosts`, or a git token's `username`.
    Update {
        id: String,
        /// New pinned SSH host keys (replaces the old ones).
        #[arg(long, value_name = "FILE")]
        known_hosts_file: Option<PathBuf>,
        /// Attribute to set, repeatable: `username=git`.
        #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        attributes: Vec<(String, String)>,
    },
    /// List the workspace's secrets (metadata only).
    List,
    /// Show one secret's metadata.
    Get { id: String },
    /// Delete a secret and all its versions.
    Delete { id: String },
}

/// Secret kinds, named like their proto values (`SECRET_KIND_GIT_TOKEN` is `git-token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    GitToken,
    #[value(alias = "ssh-key")]
    SshPrivateKey,
    GithubApp,
    WebhookSecret,
    DbtCloudToken,
    WarehousePassword,
    /// Snowflake key pair: an unencrypted PKCS#8 PEM private key.
    WarehousePrivateKey,
    /// BigQuery: a service-account JSON key file.
    WarehouseServiceAccount,
    /// Databricks personal access token, or a Snowflake OAuth access token.
    WarehouseToken,
}

impl Kind {
    fn to_proto(self) -> pb::SecretKind {
        match self {
            Kind::GitToken => pb::SecretKind::GitToken,
            Kind::SshPrivateKey => pb::SecretKind::SshPrivateKey,
            Kind::GithubApp => pb::SecretKind::GithubApp,
            Kind::WebhookSecret => pb::SecretKind::WebhookSecret,
            Kind::DbtCloudToken => pb::SecretKind::DbtCloudToken,
            Kind::WarehousePassword => pb::SecretKind::WarehousePassword,
            Kind::WarehousePrivateKey => pb::SecretKind::WarehousePrivateKey,
            Kind::WarehouseServiceAccount => pb::SecretKind::WarehouseServiceAccount,
            Kind::WarehouseToken => pb::SecretKind::WarehouseToken,
        }
    }

    /// Tokens and passwords are one line: the newline an editor or `echo` adds is
    /// not part of them. Keys and PEM files keep their bytes exactly.
    fn single_line(self) -> bool {
        matches!(
            self,
            Kind::GitToken
                | Kind::WebhookSecret
                | Kind::DbtCloudToken
                | Kind::WarehousePassword
                | Kind::WarehouseToken
        )
    }
}

/// Reads material from a file, or stdin for `-`; empty material is refused. `what`
/// names it in errors (`material`, `token`), as the flag that gave the path does.
pub(super) fn read_material(path: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    let material = if path == Path::new("-") {
        let mut buffer = Vec::new();
        std::io::stdin().read_to_end(&mut buffer).map_err(|error| {
            CliError::Usage(format!("cannot read the {what} from stdin: {error}"))
        })?;
        buffer
    } else {
        std::fs::read(path).map_err(|error| {
            CliError::Usage(format!(
                "cannot read the {what} file {}: {error}",
                path.display()
            ))
        })?
    };
    if material.iter().all(u8::is_ascii_whitespace) {
        return Err(CliError::Usage(format!(
            "the {what} in {} is empty",
            if path == Path::new("-") {
                "stdin".into()
            } else {
                path.display().to_string()
            }
        )));
    }
    Ok(material)
}

/// The `--attribute` pairs plus `known_hosts` read from its file, when given.
fn with_known_hosts(
    attributes: Vec<(String, String)>,
    known_hosts_file: Option<&Path>,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut attributes: BTreeMap<String, String> = attributes.into_iter().collect();
    if let Some(path) = known_hosts_file {
        let hosts = std::fs::read_to_string(path).map_err(|error| {
            CliError::Usage(format!(
                "cannot read the known hosts file {}: {error}",
                path.display()
            ))
        })?;
        attributes.insert("known_hosts".into(), hosts);
    }
    Ok(attributes)
}

/// Drops one trailing `\n` or `\r\n`.
pub(super) fn strip_final_newline(mut material: Vec<u8>) -> Vec<u8> {
    if material.last() == Some(&b'\n') {
        material.pop();
        if material.last() == Some(&b'\r') {
            material.pop();
        }
    }
    material
}

/// `--output json` shape of a secret (metadata; material is never returned).
#[derive(Debug, Serialize)]
pub struct SecretJson {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: String,
    pub attributes: BTreeMap<String, String>,
    pub current_version: i64,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
}

impl From<pb::Secret> for SecretJson {
    fn from(secret: pb::Secret) -> Self {
        Self {
            id: secret.id,
            workspace_id: secret.workspace_id,
            name: secret.name,
            kind: names::secret_kind(secret.kind),
            attributes: secret.attributes.into_iter().collect(),
            current_version: secret.current_version,
            created_at_unix_ms: secret.created_at_unix_ms,
            updated_at_unix_ms: secret.updated_at_unix_ms,
        }
    }
}

fn attribute_keys(secret: &SecretJson) -> String {
    secret
        .attributes
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(",")
}

fn details(secret: &SecretJson) -> View {
    let mut text = Details::new()
        .field("id", &secret.id)
        .field("name", &secret.name)
        .field("kind", &secret.kind)
        .field("version", secret.current_version.to_string())
        .field("created", timestamp(secret.created_at_unix_ms))
        .field("updated", timestamp(secret.updated_at_unix_ms));
    for (key, value) in &secret.attributes {
        // known_hosts is many lines: its line count says enough in a listing.
        let shown = if value.contains('\n') {
            format!(
                "({})",
                counted(
                    i64::try_from(value.trim_end().lines().count()).unwrap_or(i64::MAX),
                    "line"
                )
            )
        } else {
            value.clone()
        };
        text = text.field(&format!("attribute {key}"), shown);
    }
    View::new(secret, text.render())
}

fn secret_of(secret: Option<pb::Secret>) -> Result<SecretJson, CliError> {
    secret
        .map(SecretJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the secret".into()))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let mut api = ctx.client.credentials()?;
    let workspace_id = ctx.workspace();
    match command {
        Command::Create {
            name,
            kind,
            material_file,
            known_hosts_file,
            attributes,
        } => {
            let mut material = read_material(&material_file, "material")?;
            if kind.single_line() {
                material = strip_final_newline(material);
            }
            let attributes = with_known_hosts(attributes, known_hosts_file.as_deref())?;
            let call = api
                .inner
                .create_secret(pb::CreateSecretRequest {
                    workspace_id,
                    name,
                    kind: kind.to_proto() as i32,
                    material,
                    attributes: attributes.into_iter().collect(),
                })
                .await;
            let secret = secret_of(api.done(call)?.secret)?;
            ctx.print(&details(&secret));
        }
        Command::Rotate { id, material_file } => {
            let material = read_material(&material_file, "material")?;
            // The kind decides about the final newline: ask for it first.
            let call = api
                .inner
                .get_secret(pb::GetSecretRequest {
                    workspace_id: workspace_id.clone(),
                    secret_id: id.clone(),
                })
                .await;
            let current = secret_of(api.done(call)?.secret)?;
            let single_line = matches!(
                current.kind.as_str(),
                "git-token" | "webhook-secret" | "dbt-cloud-token" | "warehouse-password"
            );
            let material = if single_line {
                strip_final_newline(material)
            } else {
                material
            };
            let call = api
                .inner
                .rotate_secret(pb::RotateSecretRequest {
                    workspace_id,
                    secret_id: id,
                    material,
                })
                .await;
            let secret = secret_of(api.done(call)?.secret)?;
            ctx.print(&details(&secret));
        }
        Command::Update {
            id,
            known_hosts_file,
            attributes,
        } => {
            let attributes = with_known_hosts(attributes, known_hosts_file.as_deref())?;
            if attributes.is_empty() {
                return Err(CliError::Usage(
                    "nothing to update: give --known-hosts-file or --attribute".into(),
                ));
            }
            let call = api
                .inner
                .update_secret_attributes(pb::UpdateSecretAttributesRequest {
                    workspace_id,
                    secret_id: id,
                    attributes: attributes.into_iter().collect(),
                })
                .await;
            let secret = secret_of(api.done(call)?.secret)?;
            ctx.print(&details(&secret));
        }
        Command::List => {
            let call = api
                .inner
                .list_secrets(pb::ListSecretsRequest { workspace_id })
                .await;
            let secrets: Vec<SecretJson> = api
                .done(call)?
                .secrets
                .into_iter()
                .map(SecretJson::from)
                .collect();
            let mut table = Table::new(&["id", "name", "kind", "version", "attributes", "updated"]);
            for secret in &secrets {
                table.row(vec![
                    secret.id.clone(),
                    cell(&secret.name),
                    secret.kind.clone(),
                    secret.current_version.to_string(),
                    cell(&attribute_keys(secret)),
                    timestamp(secret.updated_at_unix_ms),
                ]);
            }
            ctx.print(&View::new(&secrets, table.render()));
        }
        Command::Get { id } => {
            let call = api
                .inner
                .get_secret(pb::GetSecretRequest {
                    workspace_id,
                    secret_id: id,
                })
                .await;
            let secret = secret_of(api.done(call)?.secret)?;
            ctx.print(&details(&secret));
        }
        Command::Delete { id } => {
            let call = api
                .inner
                .delete_secret(pb::DeleteSecretRequest {
                    workspace_id,
                    secret_id: id.clone(),
                })
                .await;
            api.done(call)?;
            ctx.print(&View::message(format!("deleted secret {id}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_final_newline_is_dropped() {
        assert_eq!(strip_final_newline(b"tok\n".to_vec()), b"tok");
        assert_eq!(strip_final_newline(b"tok\r\n".to_vec()), b"tok");
        assert_eq!(strip_final_newline(b"tok\n\n".to_vec()), b"tok\n");
        assert_eq!(strip_final_newline(b"tok".to_vec()), b"tok");
    }

    #[test]
    fn empty_or_missing_material_is_a_usage_error() -> anyhow::Result<()> {
        let path =
            std::env::temp_dir().join(format!("backflow-empty-{}", backflow_platform::new_id()));
        std::fs::write(&path, "\n  \n")?;
        assert!(
            matches!(read_material(&path, "material"), Err(CliError::Usage(m)) if m.contains("is empty"))
        );
        std::fs::remove_file(&path)?;
        assert!(matches!(
            read_material(Path::new("/nonexistent/token"), "token"),
            Err(CliError::Usage(m)) if m == "cannot read the token file /nonexistent/token: No such file or directory (os error 2)"
        ));
        Ok(())
    }
}
