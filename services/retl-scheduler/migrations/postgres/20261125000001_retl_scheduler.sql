-- Syncs: a Reverse ETL model delivered to a destination on a schedule. The schedule
-- is flattened into columns (unused ones hold 0 or '') so that the dbt Cloud consumer
-- finds the syncs bound to a job with one indexed query.
CREATE TABLE retl_syncs (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    retl_model_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    mode INTEGER NOT NULL,
    mappings TEXT NOT NULL,
    schedule_kind TEXT NOT NULL,
    interval_seconds BIGINT NOT NULL DEFAULT 0,
    cron_expression TEXT NOT NULL DEFAULT '',
    time_zone TEXT NOT NULL DEFAULT '',
    dbt_account_id BIGINT NOT NULL DEFAULT 0,
    dbt_job_id BIGINT NOT NULL DEFAULT 0,
    paused INTEGER NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX retl_syncs_dbt_job ON retl_syncs (workspace_id, dbt_account_id, dbt_job_id);

-- One row per run. (sync_id, cause_id) is unique: two replicas firing the same tick, or
-- a dbt Cloud run reported twice, make one run (DESIGN §4).
CREATE TABLE retl_runs (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    sync_id TEXT NOT NULL REFERENCES retl_syncs (id),
    run_trigger INTEGER NOT NULL,
    status INTEGER NOT NULL,
    cause_id TEXT NOT NULL,
    queued_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    UNIQUE (sync_id, cause_id)
);
CREATE INDEX retl_runs_recent ON retl_runs (workspace_id, sync_id, queued_at_ms);
CREATE INDEX retl_runs_workspace_recent ON retl_runs (workspace_id, queued_at_ms);
