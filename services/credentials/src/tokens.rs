//! API tokens for people and tools (DESIGN §6): created by an operator command
//! (`backflow tokens create`), shown once, stored only as a SHA-256 hash, revocable.
//! A token is scoped to one workspace or, for operators, to all; its role is admin or
//! viewer. This is also the verifier behind `TokenService.AuthenticateToken`, which
//! every other service asks, and it recognises the configured service tokens.

use crate::error::CredentialsError;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use backflow_platform::auth::{token_hash, AuthError, Principal, Role, TokenVerifier};
use backflow_platform::db::Database;
use futures::future::BoxFuture;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Every API token starts with this, so a leaked one is recognisable in a scan.
pub const TOKEN_PREFIX: &str = "bf_";

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    /// `None` for an operator token.
    pub workspace_id: Option<String>,
    pub role: Role,
    pub label: String,
    pub created_at_ms: i64,
    /// `None` while the token is valid.
    pub revoked_at_ms: Option<i64>,
}

/// A freshly created token: the only moment the token itself exists outside the caller.
pub struct CreatedToken {
    pub record: TokenRecord,
    pub token: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

type TokenRow = (String, String, String, String, i64, i64);

const TOKEN_COLUMNS: &str = "id, workspace_id, role, label, created_at_ms, revoked_at_ms";

fn record_of(row: TokenRow) -> Result<TokenRecord, CredentialsError> {
    let (id, workspace_id, role, label, created_at_ms, revoked_at_ms) = row;
    let role = Role::parse(&role)
        .ok_or_else(|| CredentialsError::Corrupt(format!("role {role:?} of token {id}")))?;
    Ok(TokenRecord {
        id,
        workspace_id: (!workspace_id.is_empty()).then_some(workspace_id),
        role,
        label,
        created_at_ms,
        revoked_at_ms: (revoked_at_ms != 0).then_some(revoked_at_ms),
    })
}

/// A new random token: the prefix and 32 random bytes, hex.
fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

#[derive(Clone)]
pub struct ApiTokens {
    db: Database,
    service_tokens: Arc<Vec<String>>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokens")
            .field("service_tokens", &self.service_tokens.len())
            .finish_non_exhaustive()
    }
}

impl ApiTokens {
    pub fn new(db: Database, service_tokens: Vec<String>) -> Self {
        Self {
            db,
            service_tokens: Arc::new(service_tokens),
        }
    }

    /// Creates a token for `workspace_id` (`None`: operator, every workspace).
    pub async fn create(
        &self,
        workspace_id: Option<&str>,
        role: Role,
        label: &str,
    ) -> Result<CreatedToken, CredentialsError> {
        if workspace_id.is_some_and(|ws| ws.trim().is_empty()) {
            return Err(CredentialsError::InvalidArgument(
                "workspace must not be empty (use --operator for every workspace)".into(),
            ));
        }
        let token = generate_token();
        let record = TokenRecord {
            id: backflow_platform::new_id(),
            workspace_id: workspace_id.map(str::to_string),
            role,
            label: label.to_string(),
            created_at_ms: backflow_platform::now_unix_ms(),
            revoked_at_ms: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, workspace_id, role, label, created_at_ms, revoked_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(&record.id)
        .bind(token_hash(&token))
        .bind(record.workspace_id.clone().unwrap_or_default())
        .bind(role.as_str())
        .bind(&record.label)
        .bind(record.created_at_ms)
        .execute(self.db.pool())
        .await?;
        Ok(CreatedToken { record, token })
    }

    /// Every token, newest first, revoked ones included.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, CredentialsError> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at_ms DESC, id DESC"
        ))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(record_of).collect()
    }

    /// Revokes one token; NotFound when no valid token has this id.
    pub async fn revoke(&self, id: &str) -> Result<(), CredentialsError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms = 0",
        )
        .bind(backflow_platform::now_unix_ms())
        .bind(id)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(CredentialsError::NotFound(format!("token {id}")));
        }
        Ok(())
    }

    /// Revokes every valid token with `label` except `keep` (the dev token of a
    /// previous start); returns how many.
    pub async fn revoke_label_except(
        &self,
        label: &str,
        keep: &str,
    ) -> Result<u64, CredentialsError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at_ms = $1 WHERE label = $2 AND id <> $3 AND revoked_at_ms = 0",
        )
        .bind(backflow_platform::now_unix_ms())
        .bind(label)
        .bind(keep)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Who holds `token`: a service (configured service token) or the owner of a
    /// valid API token; `None` otherwise.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, CredentialsError> {
        let is_service = self
            .service_tokens
            .iter()
            .any(|known| bool::from(known.as_bytes().ct_eq(token.as_bytes())));
        if is_service {
            return Ok(Some(Principal::Service));
        }
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at_ms = 0"
        ))
        .bind(token_hash(token))
        .fetch_optional(self.db.pool())
        .await?;
        let Some(record) = row.map(record_of).transpose()? else {
            return Ok(None);
        };
        Ok(Some(Principal::Tool {
            token_id: record.id,
            workspace_id: record.workspace_id,
            role: record.role,
        }))
    }
}

impl TokenVerifier for ApiTokens {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move {
            ApiTokens::authenticate(self, token)
                .await
                .map_err(|err| AuthError::Unavailable(err.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_and_random() {
        let (a, b) = (generate_token(), generate_token());
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), a);
    }
}
