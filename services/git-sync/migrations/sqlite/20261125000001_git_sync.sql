CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    provider INTEGER NOT NULL,
    protocol INTEGER NOT NULL,
    repository_url TEXT NOT NULL,
    branch TEXT NOT NULL,
    dbt_version TEXT NOT NULL,
    default_schema TEXT NOT NULL,
    project_path TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    warehouse_source_id TEXT NOT NULL,
    settings_version INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE sync_runs (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    trigger INTEGER NOT NULL,
    status INTEGER NOT NULL,
    commit_sha TEXT NOT NULL DEFAULT '',
    model_count INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    queued_at_ms INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL DEFAULT 0,
    finished_at_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sync_runs_by_connection ON sync_runs (connection_id, queued_at_ms);
