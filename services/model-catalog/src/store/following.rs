//! Applying [`crate::retl::following`] when a snapshot lands: every Reverse ETL model
//! of the connection is judged against the new commit inside the snapshot's own
//! transaction, and each one whose status, reason or relation changes is written and
//! announced through the outbox in that transaction.

use super::retl_models::{record_of, RetlHealth, RetlRow, RETL_COLUMNS};
use super::CatalogStore;
use crate::error::CatalogError;
use crate::retl::following::{judge, Followed, Verdict};
use backflow_platform::db::Transaction;
use backflow_proto::catalog::v1 as pb;

impl CatalogStore {
    /// Re-evaluates the connection's Reverse ETL models at `commit_sha`; returns how
    /// many changed.
    pub(super) async fn follow_snapshot(
        &self,
        tx: &mut Transaction<'_>,
        workspace_id: &str,
        connection_id: &str,
        commit_sha: &str,
        models: &[pb::Model],
    ) -> Result<usize, CatalogError> {
        let rows: Vec<RetlRow> = sqlx::query_as(&format!(
            "SELECT {RETL_COLUMNS} FROM retl_models WHERE workspace_id = $1 AND connection_id = $2 ORDER BY id"
        ))
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_all(&mut **tx)
        .await?;
        let mut changed = 0;
        for row in rows {
            let record = record_of(row)?;
            let previous: Option<(String,)> = sqlx::query_as(
                "SELECT checksum FROM model_versions WHERE connection_id = $1 AND commit_sha = $2 AND unique_id = $3",
            )
            .bind(connection_id)
            .bind(&record.commit_sha)
            .bind(&record.model_unique_id)
            .fetch_optional(&mut **tx)
            .await?;
            let followed = Followed {
                model_unique_id: &record.model_unique_id,
                primary_key: &record.primary_key,
                query_mode: record.query_mode,
                previous_checksum: previous.as_ref().map(|(checksum,)| checksum.as_str()),
            };
            let mut next = record.clone();
            match judge(&followed, models, commit_sha) {
                Verdict::Ok {
                    commit_sha,
                    relation_name,
                } => {
                    next.health = RetlHealth::Ok;
                    next.commit_sha = commit_sha;
                    next.relation_name = relation_name;
                }
                Verdict::Broken { reason, commit_sha } => {
                    // Still broken for the same reason: keep the commit that broke it.
                    if !matches!(&record.health, RetlHealth::Broken { reason: old, .. } if *old == reason)
                    {
                        next.health = RetlHealth::Broken {
                            reason,
                            at_commit: commit_sha,
                        };
                    }
                }
            }
            let announce =
                next.health != record.health || next.relation_name != record.relation_name;
            if !announce && next.commit_sha == record.commit_sha {
                continue;
            }
            next.updated_at_ms = backflow_platform::now_unix_ms().max(record.updated_at_ms + 1);
            if announce {
                tracing::info!(retl_model_id = %record.id, commit = %commit_sha, status = ?next.health, "retl model status changed");
                changed += 1;
            }
            self.write_followed(tx, &next, announce).await?;
        }
        Ok(changed)
    }
}
