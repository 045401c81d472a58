CREATE TABLE warehouse_sources (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    settings TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- The catalog's projection of git-sync connections.
CREATE TABLE projects (
    connection_id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    repository_url TEXT NOT NULL,
    branch TEXT NOT NULL,
    default_schema TEXT NOT NULL,
    settings_version BIGINT NOT NULL,
    latest_commit_sha TEXT NOT NULL DEFAULT '',
    model_count BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX projects_by_workspace ON projects (workspace_id);

-- Every connection event applied to the projection, once each.
CREATE TABLE project_changes (
    event_id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    change INTEGER NOT NULL,
    settings_version BIGINT NOT NULL,
    applied_at_ms BIGINT NOT NULL
);
CREATE INDEX project_changes_by_connection ON project_changes (connection_id);

-- dbt models per connection and commit; `document` is an encoded backflow.catalog.v1.Model.
CREATE TABLE model_versions (
    connection_id TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    document BYTEA NOT NULL,
    PRIMARY KEY (connection_id, commit_sha, unique_id)
);

CREATE TABLE retl_models (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    model_unique_id TEXT NOT NULL,
    primary_key TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);
