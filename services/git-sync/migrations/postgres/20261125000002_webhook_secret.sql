ALTER TABLE connections ADD COLUMN webhook_secret_credential_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_runs ADD COLUMN node_errors TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sync_runs ADD COLUMN duration_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN last_synced_commit TEXT NOT NULL DEFAULT '';

-- Catalog snapshots handed to model-catalog by reference (FetchSnapshot).
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    model_count BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX snapshots_by_connection ON snapshots (connection_id, created_at_ms);
