//! Catalog snapshots, kept so model-catalog can fetch them by reference: a snapshot
//! of a large project is far bigger than one NATS message may be.

use super::GitSyncStore;
use crate::error::GitSyncError;
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::gitsync::v1 as pb;
use prost::Message;

/// A stored snapshot, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub connection_id: String,
    pub commit_sha: String,
    pub models: Vec<catalog::Model>,
}

impl GitSyncStore {
    /// Loads a snapshot of the workspace by its reference.
    pub async fn load_snapshot(
        &self,
        workspace_id: &str,
        snapshot_ref: &str,
    ) -> Result<Snapshot, GitSyncError> {
        let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT connection_id, commit_sha, payload FROM snapshots WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(snapshot_ref)
        .fetch_optional(self.db.pool())
        .await?;
        let Some((connection_id, commit_sha, payload)) = row else {
            return Err(GitSyncError::NotFound {
                kind: "snapshot",
                id: snapshot_ref.to_string(),
            });
        };
        let chunk = pb::SnapshotChunk::decode(payload.as_slice())
            .map_err(|err| GitSyncError::Corrupt(format!("snapshot {snapshot_ref}: {err}")))?;
        Ok(Snapshot {
            id: snapshot_ref.to_string(),
            connection_id,
            commit_sha,
            models: chunk.models,
        })
    }
}

/// Splits a snapshot into stream chunks of at most `per_chunk` models (at least one
/// chunk, the last one flagged).
pub fn chunks(snapshot: Snapshot, per_chunk: usize) -> Vec<pb::SnapshotChunk> {
    let total = i64::try_from(snapshot.models.len()).unwrap_or(i64::MAX);
    let per_chunk = per_chunk.max(1);
    let mut out: Vec<pb::SnapshotChunk> = Vec::new();
    let mut models = snapshot.models.into_iter().peekable();
    loop {
        let batch: Vec<_> = models.by_ref().take(per_chunk).collect();
        let last = models.peek().is_none();
        out.push(pb::SnapshotChunk {
            connection_id: snapshot.connection_id.clone(),
            commit_sha: snapshot.commit_sha.clone(),
            models: batch,
            last,
            total_models: total,
        });
        if last {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(n: usize) -> Snapshot {
        Snapshot {
            id: "s".into(),
            connection_id: "c".into(),
            commit_sha: "abc".into(),
            models: (0..n)
                .map(|i| catalog::Model {
                    unique_id: format!("model.p.m{i}"),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn chunks_cover_everything_once() {
        let parts = chunks(snapshot(5), 2);
        assert_eq!(
            parts.iter().map(|c| c.models.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert!(parts[2].last && !parts[0].last);
        assert_eq!(chunks(snapshot(0), 2).len(), 1);
        assert_eq!(chunks(snapshot(4), 2).len(), 2);
    }
}
