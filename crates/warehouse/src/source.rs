//! Which warehouse, where, and as whom: the non-secret settings of a source, the secret
//! material resolved from the credentials service, and [`connect`], which picks the
//! connector for the kind.
//!
//! Settings per kind (keys in `settings`; every connector refuses unknown or missing
//! required keys with [`WarehouseError::Settings`]):
//!
//! | kind | required | optional | secret |
//! |---|---|---|---|
//! | postgres, redshift | `host`, `database`, `user` | `port` (5432 / 5439), `sslmode` (`disable`, `prefer`, `require`), `connect_timeout_seconds` | password |
//! | snowflake | `account`, `user`, `database`, `warehouse` | `role`, `schema`, `auth` (`key_pair` default, `oauth`), `endpoint` (base URL, default `https://<account>.snowflakecomputing.com`), `public_key_fingerprint` | PEM private key (PKCS#8), or OAuth access token |
//! | bigquery | `project` | `location`, `dataset`, `endpoint` (default `https://bigquery.googleapis.com`) | service-account JSON key (its `token_uri` is used for the token exchange) |
//! | databricks | `host`, `warehouse_id` | `catalog`, `schema`, `endpoint` (base URL, default `https://<host>`) | personal access token |
//!
//! `endpoint` exists so tests and private links can point a connector at another base URL.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;

use crate::{Connector, WarehouseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarehouseKind {
    Postgres,
    Redshift,
    Snowflake,
    Bigquery,
    Databricks,
}

impl WarehouseKind {
    pub const ALL: [WarehouseKind; 5] = [
        Self::Postgres,
        Self::Redshift,
        Self::Snowflake,
        Self::Bigquery,
        Self::Databricks,
    ];

    /// The dbt adapter name (`postgres`, `redshift`, `snowflake`, `bigquery`, `databricks`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Redshift => "redshift",
            Self::Snowflake => "snowflake",
            Self::Bigquery => "bigquery",
            Self::Databricks => "databricks",
        }
    }
}

/// Non-secret settings, as stored on the source.
pub type SourceSettings = BTreeMap<String, String>;

/// The secret a connector needs, resolved just before connecting. Never logged.
#[derive(Clone)]
pub struct SecretMaterial(pub SecretString);

impl std::fmt::Debug for SecretMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretMaterial([redacted])")
    }
}

/// Builds the connector for `kind`. Validates settings and secret shape; dials nothing.
pub fn connect(
    kind: WarehouseKind,
    settings: &SourceSettings,
    secret: SecretMaterial,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    match kind {
        WarehouseKind::Postgres => crate::postgres::connect(settings, secret),
        WarehouseKind::Redshift => crate::redshift::connect(settings, secret),
        WarehouseKind::Snowflake => crate::snowflake::connect(settings, secret),
        WarehouseKind::Bigquery => crate::bigquery::connect(settings, secret),
        WarehouseKind::Databricks => crate::databricks::connect(settings, secret),
    }
}
