//! Connection settings as the domain sees them, and their validation. Pure: every
//! rule a user can break is checked here, with a message that says what to fix.

use backflow_proto::gitsync::v1 as pb;

/// dbt Core versions Backflow parses.
pub const SUPPORTED_DBT_VERSIONS: &[&str] = &["1.7"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub provider: i32,
    pub protocol: i32,
    pub repository_url: String,
    pub branch: String,
    pub dbt_version: String,
    pub default_schema: String,
    pub project_path: String,
    pub credential_id: String,
    pub warehouse_source_id: String,
    /// WEBHOOK_SECRET credential verifying push webhooks; empty refuses webhooks.
    pub webhook_secret_credential_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("repository_url {url:?}: {reason}")]
    RepositoryUrl { url: String, reason: &'static str },
    #[error("branch {0:?} is not a valid git branch name")]
    Branch(String),
    #[error("dbt_version {0:?} is not supported (supported: 1.7)")]
    DbtVersion(String),
    #[error("default_schema {0:?} must be a plain identifier (letters, digits, _ and $)")]
    DefaultSchema(String),
    #[error("project_path {0:?} must be a relative path inside the repository")]
    ProjectPath(String),
    #[error("provider is required")]
    Provider,
}

impl Settings {
    pub fn from_proto(settings: Option<pb::ConnectionSettings>) -> Result<Self, SettingsError> {
        let settings = settings.ok_or(SettingsError::Missing("settings"))?;
        let normalized = Self {
            provider: settings.provider,
            protocol: settings.protocol,
            repository_url: settings.repository_url.trim().to_string(),
            branch: settings.branch.trim().to_string(),
            dbt_version: default_if_empty(&settings.dbt_version, "1.7"),
            default_schema: settings.default_schema.trim().to_string(),
            project_path: normalize_project_path(&settings.project_path),
            credential_id: settings.credential_id.trim().to_string(),
            warehouse_source_id: settings.warehouse_source_id.trim().to_string(),
            webhook_secret_credential_id: settings.webhook_secret_credential_id.trim().to_string(),
        };
        normalized.validate()?;
        Ok(normalized)
    }

    /// Whether `other` syncs the same thing: every setting but the webhook secret
    /// (which only verifies push deliveries) is the same.
    pub fn same_sync_source(&self, other: &Settings) -> bool {
        let mut other = other.clone();
        other.webhook_secret_credential_id = self.webhook_secret_credential_id.clone();
        *self == other
    }

    pub fn to_proto(&self) -> pb::ConnectionSettings {
        pb::ConnectionSettings {
            provider: self.provider,
            protocol: self.protocol,
            repository_url: self.repository_url.clone(),
            branch: self.branch.clone(),
            dbt_version: self.dbt_version.clone(),
            default_schema: self.default_schema.clone(),
            project_path: self.project_path.clone(),
            credential_id: self.credential_id.clone(),
            warehouse_source_id: self.warehouse_source_id.clone(),
            webhook_secret_credential_id: self.webhook_secret_credential_id.clone(),
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if self.provider <= 0 {
            return Err(SettingsError::Provider);
        }
        if self.credential_id.is_empty() {
            return Err(SettingsError::Missing("credential_id"));
        }
        if self.warehouse_source_id.is_empty() {
            return Err(SettingsError::Missing("warehouse_source_id"));
        }
        check_repository_url(&self.repository_url, self.protocol)?;
        if !is_valid_branch(&self.branch) {
            return Err(SettingsError::Branch(self.branch.clone()));
        }
        if !SUPPORTED_DBT_VERSIONS.contains(&self.dbt_version.as_str()) {
            return Err(SettingsError::DbtVersion(self.dbt_version.clone()));
        }
        if !is_identifier(&self.default_schema) {
            return Err(SettingsError::DefaultSchema(self.default_schema.clone()));
        }
        if !is_relative_inside(&self.project_path) {
            return Err(SettingsError::ProjectPath(self.project_path.clone()));
        }
        Ok(())
    }
}

fn default_if_empty(value: &str, default: &str) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        default.to_string()
    } else {
        trimmed.to_string()
    }
}

/// `""`, `"."` and `"./"` all mean the repository root; stored as `""`.
fn normalize_project_path(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if trimmed == "." {
        String::new()
    } else {
        trimmed.to_string()
    }
}

fn check_repository_url(url: &str, protocol: i32) -> Result<(), SettingsError> {
    let refuse = |reason| SettingsError::RepositoryUrl {
        url: url.to_string(),
        reason,
    };
    if url.is_empty() {
        return Err(SettingsError::Missing("repository_url"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse("must not contain spaces or control characters"));
    }
    let is_http = url.starts_with("https://") || url.starts_with("http://");
    let is_ssh = url.starts_with("ssh://") || is_scp_like(url);
    match pb::GitProtocol::try_from(protocol) {
        Ok(pb::GitProtocol::Https) if is_http => Ok(()),
        Ok(pb::GitProtocol::Https) => Err(refuse("the https protocol needs an https:// url")),
        Ok(pb::GitProtocol::Ssh) if is_ssh => Ok(()),
        Ok(pb::GitProtocol::Ssh) => Err(refuse("the ssh protocol needs ssh:// or user@host:path")),
        _ => Err(refuse("protocol must be https or ssh")),
    }?;
    if is_http
        && url
            .split("://")
            .nth(1)
            .is_some_and(|rest| rest.split('/').next().unwrap_or("").contains('@'))
    {
        return Err(refuse(
            "credentials belong in the credentials service, not in the url",
        ));
    }
    Ok(())
}

/// `git@github.com:org/repo.git`
fn is_scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((user_host, path)) => {
            user_host.contains('@')
                && !user_host.contains('/')
                && !path.is_empty()
                && !path.starts_with("//")
        }
        None => false,
    }
}

/// The subset of `git check-ref-format --branch` that matters for user input.
fn is_valid_branch(branch: &str) -> bool {
    !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.starts_with('/')
        && !branch.ends_with('/')
        && !branch.ends_with('.')
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("@{")
        && !branch.contains("//")
        && !branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn is_relative_inside(path: &str) -> bool {
    !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path.split('/').all(|part| part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::ConnectionSettings {
        pb::ConnectionSettings {
            provider: pb::GitProvider::Github as i32,
            protocol: pb::GitProtocol::Ssh as i32,
            repository_url: "git@github.com:acme/analytics.git".into(),
            branch: "main".into(),
            dbt_version: String::new(),
            default_schema: "analytics".into(),
            project_path: "./dbt/".into(),
            credential_id: "cred".into(),
            warehouse_source_id: "wh".into(),
            webhook_secret_credential_id: String::new(),
        }
    }

    #[test]
    fn normalizes_valid_settings() {
        let settings = Settings::from_proto(Some(valid())).expect("valid");
        assert_eq!(settings.project_path, "dbt");
        assert_eq!(settings.dbt_version, "1.7");
    }

    type Breakage = (fn(&mut pb::ConnectionSettings), &'static str);

    #[test]
    fn refuses_what_users_get_wrong() {
        let cases: Vec<Breakage> = vec![
            (
                |s| s.repository_url = "https://github.com/a/b".into(),
                "ssh",
            ),
            (|s| s.branch = "feat..x".into(), "branch"),
            (|s| s.dbt_version = "1.5".into(), "dbt_version"),
            (|s| s.default_schema = "drop table".into(), "default_schema"),
            (|s| s.project_path = "../../etc".into(), "project_path"),
            (|s| s.credential_id = " ".into(), "credential_id"),
            (|s| s.provider = 0, "provider"),
        ];
        for (break_it, expected) in cases {
            let mut settings = valid();
            break_it(&mut settings);
            let error = Settings::from_proto(Some(settings)).expect_err(expected);
            assert!(
                error.to_string().contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn only_the_webhook_secret_is_not_a_sync_source_change() {
        let settings = Settings::from_proto(Some(valid())).expect("valid");
        let mut secret = settings.clone();
        secret.webhook_secret_credential_id = "whsec".into();
        assert!(settings.same_sync_source(&secret));
        let mut branch = secret.clone();
        branch.branch = "develop".into();
        assert!(!settings.same_sync_source(&branch));
    }

    #[test]
    fn https_urls_must_not_carry_credentials() {
        let mut settings = valid();
        settings.protocol = pb::GitProtocol::Https as i32;
        settings.repository_url = "https://user:tok@github.com/a/b.git".into();
        assert!(Settings::from_proto(Some(settings)).is_err());
    }
}
