//! What each kind of warehouse source needs, checked before anything is stored or
//! dialled: the settings keys (the table in `backflow_warehouse::source`), the kind of
//! secret that can log in (a password cannot sign a Snowflake JWT), and which schema
//! a connection test checks usage on. Pure; the connectors do the deep checks.

use crate::error::CatalogError;
use backflow_proto::catalog::v1 as pb;
use backflow_proto::credentials::v1::SecretKind;
use backflow_warehouse::{SecretMaterial, SourceSettings, WarehouseError, WarehouseKind};

/// The warehouse crate's kind for a stored/proto kind.
pub fn warehouse_kind(kind: i32) -> Result<WarehouseKind, CatalogError> {
    match pb::WarehouseKind::try_from(kind) {
        Ok(pb::WarehouseKind::Postgres) => Ok(WarehouseKind::Postgres),
        Ok(pb::WarehouseKind::Redshift) => Ok(WarehouseKind::Redshift),
        Ok(pb::WarehouseKind::Snowflake) => Ok(WarehouseKind::Snowflake),
        Ok(pb::WarehouseKind::Bigquery) => Ok(WarehouseKind::Bigquery),
        Ok(pb::WarehouseKind::Databricks) => Ok(WarehouseKind::Databricks),
        Ok(pb::WarehouseKind::Unspecified) => {
            Err(CatalogError::InvalidArgument("kind is required".into()))
        }
        Err(_) => Err(CatalogError::InvalidArgument(format!(
            "kind {kind} is not a warehouse kind"
        ))),
    }
}

/// Settings every source of the kind must have (non-empty).
pub fn required_settings(kind: WarehouseKind) -> &'static [&'static str] {
    match kind {
        WarehouseKind::Postgres | WarehouseKind::Redshift => &["host", "database", "user"],
        WarehouseKind::Snowflake => &["account", "user", "database", "warehouse"],
        WarehouseKind::Bigquery => &["project"],
        WarehouseKind::Databricks => &["host", "warehouse_id"],
    }
}

/// Refuses settings a source of `kind` cannot use: secret-like keys, missing required
/// keys, and whatever the connector itself refuses ([`WarehouseError::Settings`]),
/// without resolving the secret or dialling anything.
pub fn check_settings(kind: WarehouseKind, settings: &SourceSettings) -> Result<(), CatalogError> {
    crate::source_settings::check(settings)
        .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
    for key in required_settings(kind) {
        if settings
            .get(*key)
            .is_none_or(|value| value.trim().is_empty())
        {
            return Err(CatalogError::InvalidArgument(format!(
                "settings.{key} is required for a {} source (required: {})",
                kind.as_str(),
                required_settings(kind).join(", ")
            )));
        }
    }
    // The connector validates the rest; a placeholder secret may fail its shape
    // check, which is not the settings' fault and is left to the connection test.
    let placeholder = SecretMaterial(secrecy::SecretString::from("placeholder"));
    match backflow_warehouse::connect(kind, settings, placeholder) {
        Err(error @ WarehouseError::Settings { .. }) if !connector_missing(&error) => {
            Err(CatalogError::InvalidArgument(error.to_string()))
        }
        _ => Ok(()),
    }
}

/// The skeleton's "not built yet" answer (`settings.kind`) is not a settings mistake.
fn connector_missing(error: &WarehouseError) -> bool {
    matches!(error, WarehouseError::Settings { key, .. } if key == "kind")
}

/// The schema a connection test checks usage on: the source's own `schema`
/// (Snowflake, Databricks) or `dataset` (BigQuery) setting, else the schema Backflow
/// may write to; `None` when neither is set.
pub fn tested_schema(settings: &SourceSettings, backflow_schema: &str) -> Option<String> {
    ["schema", "dataset"]
        .iter()
        .filter_map(|key| settings.get(*key))
        .map(|value| value.trim())
        .find(|value| !value.is_empty())
        .or(Some(backflow_schema.trim()).filter(|schema| !schema.is_empty()))
        .map(str::to_string)
}

/// Whether a secret of `secret` kind can log in to a source of `kind` (with its
/// `auth` setting for Snowflake).
pub fn check_secret_kind(
    kind: WarehouseKind,
    settings: &SourceSettings,
    secret: SecretKind,
) -> Result<(), WarehouseError> {
    let fits: &[SecretKind] = match kind {
        WarehouseKind::Postgres | WarehouseKind::Redshift => &[SecretKind::WarehousePassword],
        WarehouseKind::Snowflake => match settings.get("auth").map(String::as_str) {
            Some("oauth") => &[SecretKind::WarehouseToken],
            Some("key_pair") => &[SecretKind::WarehousePrivateKey],
            _ => &[SecretKind::WarehousePrivateKey, SecretKind::WarehouseToken],
        },
        WarehouseKind::Bigquery => &[SecretKind::WarehouseServiceAccount],
        WarehouseKind::Databricks => &[SecretKind::WarehouseToken],
    };
    if fits.contains(&secret) {
        return Ok(());
    }
    let names: Vec<String> = fits.iter().map(|kind| secret_kind_name(*kind)).collect();
    Err(WarehouseError::Credential {
        reason: format!(
            "a {} source needs a {} secret, and this one is a {} secret",
            kind.as_str(),
            names.join(" or "),
            secret_kind_name(secret)
        ),
    })
}

/// `warehouse-password` for `SECRET_KIND_WAREHOUSE_PASSWORD` (the CLI's spelling).
fn secret_kind_name(kind: SecretKind) -> String {
    kind.as_str_name()
        .trim_start_matches("SECRET_KIND_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// The problem a warehouse error is, for a [`pb::SourceTestResult`].
pub fn problem_of(error: &WarehouseError) -> pb::SourceProblem {
    use pb::SourceProblem as P;
    match error {
        WarehouseError::Settings { .. } => P::Settings,
        WarehouseError::Credential { .. } => P::Credential,
        WarehouseError::Unreachable { .. } => P::Unreachable,
        WarehouseError::Authentication { .. } => P::Authentication,
        WarehouseError::UnknownDatabase { .. } => P::UnknownDatabase,
        WarehouseError::UnknownWarehouse { .. } => P::UnknownWarehouse,
        WarehouseError::MissingPrivilege { .. } => P::MissingPrivilege,
        WarehouseError::Timeout { .. } => P::Timeout,
        WarehouseError::RateLimited { .. } => P::RateLimited,
        WarehouseError::UnknownRelation { .. }
        | WarehouseError::NotSingleStatement { .. }
        | WarehouseError::ReadOnlyViolation { .. }
        | WarehouseError::Cancelled
        | WarehouseError::QueryFailed { .. }
        | WarehouseError::UnsupportedType { .. }
        | WarehouseError::Protocol { .. } => P::Other,
    }
}

/// A failed test's result: the problem and the error's one-line message.
pub fn failed_test(error: &WarehouseError, tested_at_ms: i64) -> pb::SourceTestResult {
    pb::SourceTestResult {
        ok: false,
        problem: problem_of(error) as i32,
        message: error.to_string(),
        tested_at_unix_ms: tested_at_ms,
        server_version: String::new(),
    }
}

/// `unreachable` for `SOURCE_PROBLEM_UNREACHABLE`.
pub fn problem_name(problem: i32) -> String {
    pb::SourceProblem::try_from(problem)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("SOURCE_PROBLEM_")
        .to_ascii_lowercase()
        .replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> SourceSettings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn required_keys_are_named() {
        let error = check_settings(
            WarehouseKind::Postgres,
            &settings(&[("host", "db"), ("database", " ")]),
        )
        .expect_err("database is blank");
        assert!(
            matches!(&error, CatalogError::InvalidArgument(m)
                if m.starts_with("settings.database is required for a postgres source")),
            "{error}"
        );
        let error = check_settings(WarehouseKind::Snowflake, &settings(&[("account", "a")]))
            .expect_err("user missing");
        assert!(error.to_string().contains("settings.user"), "{error}");
    }

    #[test]
    fn secrets_in_settings_are_refused_before_anything_else() {
        let error = check_settings(WarehouseKind::Bigquery, &settings(&[("token", "x")]))
            .expect_err("token");
        assert!(error.to_string().contains("settings.token"), "{error}");
    }

    #[test]
    fn the_secret_kind_must_fit_the_source() {
        let none = SourceSettings::new();
        assert!(check_secret_kind(
            WarehouseKind::Redshift,
            &none,
            SecretKind::WarehousePassword
        )
        .is_ok());
        let error = check_secret_kind(WarehouseKind::Postgres, &none, SecretKind::GitToken)
            .expect_err("git token");
        assert_eq!(
            error,
            WarehouseError::Credential {
                reason: "a postgres source needs a warehouse-password secret, and this one is a git-token secret".into()
            }
        );
        assert!(
            check_secret_kind(WarehouseKind::Snowflake, &none, SecretKind::WarehouseToken).is_ok()
        );
        let key_pair = settings(&[("auth", "key_pair")]);
        assert!(check_secret_kind(
            WarehouseKind::Snowflake,
            &key_pair,
            SecretKind::WarehouseToken
        )
        .is_err());
        assert!(check_secret_kind(
            WarehouseKind::Bigquery,
            &none,
            SecretKind::WarehouseServiceAccount
        )
        .is_ok());
        assert!(check_secret_kind(
            WarehouseKind::Databricks,
            &none,
            SecretKind::WarehousePassword
        )
        .is_err());
    }

    #[test]
    fn the_tested_schema_prefers_the_sources_own() {
        assert_eq!(
            tested_schema(&settings(&[("schema", "PUBLIC")]), "backflow"),
            Some("PUBLIC".into())
        );
        assert_eq!(
            tested_schema(&settings(&[("dataset", "ds")]), ""),
            Some("ds".into())
        );
        assert_eq!(
            tested_schema(&SourceSettings::new(), " backflow "),
            Some("backflow".into())
        );
        assert_eq!(tested_schema(&SourceSettings::new(), ""), None);
    }

    #[test]
    fn problems_are_classified() {
        let error = WarehouseError::MissingPrivilege {
            detail: "no usage on schema \"s\"".into(),
        };
        let result = failed_test(&error, 5);
        assert!(!result.ok);
        assert_eq!(result.problem, pb::SourceProblem::MissingPrivilege as i32);
        assert_eq!(
            result.message,
            "missing privilege: no usage on schema \"s\""
        );
        assert_eq!(problem_name(result.problem), "missing privilege");
    }
}
