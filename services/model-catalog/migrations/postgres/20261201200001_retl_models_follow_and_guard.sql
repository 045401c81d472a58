-- Reverse ETL models name their source and query mode, and follow their dbt model
-- across commits: status 1 ok, 2 broken (backflow.catalog.v1.RetlModelStatus), with
-- the reason and the commit that broke it; commit_sha / relation_name are what it
-- follows now.
ALTER TABLE retl_models ADD COLUMN source_id TEXT NOT NULL DEFAULT '';
ALTER TABLE retl_models ADD COLUMN query_mode INTEGER NOT NULL DEFAULT 1;
ALTER TABLE retl_models ADD COLUMN status INTEGER NOT NULL DEFAULT 1;
ALTER TABLE retl_models ADD COLUMN broken_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE retl_models ADD COLUMN broken_at_commit TEXT NOT NULL DEFAULT '';
ALTER TABLE retl_models ADD COLUMN commit_sha TEXT NOT NULL DEFAULT '';
ALTER TABLE retl_models ADD COLUMN relation_name TEXT NOT NULL DEFAULT '';
ALTER TABLE retl_models ADD COLUMN updated_at_ms BIGINT NOT NULL DEFAULT 0;
UPDATE retl_models SET updated_at_ms = created_at_ms;
CREATE INDEX retl_models_by_connection ON retl_models (connection_id);
CREATE INDEX retl_models_by_source ON retl_models (source_id);

-- The in-use guard's projection of the scheduler's SyncChanged events: one row per
-- sync, newest `version` wins; a deleted sync keeps its row (so a late older event is
-- dropped) with enabled = 0.
CREATE TABLE retl_model_usage (
    sync_id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    retl_model_id TEXT NOT NULL,
    sync_name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    used_columns TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX retl_model_usage_by_model ON retl_model_usage (workspace_id, retl_model_id);

-- Columns the warehouse described for a model without YAML columns, per commit and
-- source (`columns` is JSON); DescribeModelColumns with refresh replaces the row.
CREATE TABLE model_column_descriptions (
    connection_id TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    columns TEXT NOT NULL,
    described_at_ms BIGINT NOT NULL,
    PRIMARY KEY (connection_id, commit_sha, unique_id, source_id)
);
