-- The newest check of a connection's token and account (create checks too).
ALTER TABLE dbt_connections ADD COLUMN last_test_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dbt_connections ADD COLUMN last_test_ok BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dbt_connections ADD COLUMN last_test_problem BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dbt_connections ADD COLUMN last_test_message TEXT NOT NULL DEFAULT '';
ALTER TABLE dbt_connections ADD COLUMN last_test_account_name TEXT NOT NULL DEFAULT '';

-- A subscription row is written 'pending' (with the url it will have) before dbt Cloud
-- is asked to create it, and becomes 'active' once its id and secret are kept: after a
-- crash in between, the url finds the subscription dbt Cloud made.
ALTER TABLE dbt_subscriptions ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE dbt_subscriptions ADD COLUMN client_url TEXT NOT NULL DEFAULT '';

-- Which dbt Cloud job each sync waits on, learnt from the scheduler's
-- evt.retl.sync.changed events (newest version per sync; deleted syncs stay as
-- tombstones so an older event cannot bring them back).
CREATE TABLE dbt_sync_jobs (
    sync_id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    sync_name TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    enabled BIGINT NOT NULL,
    version BIGINT NOT NULL,
    -- When the sync started waiting on this job (reconciliation looks no further back).
    waiting_since_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX dbt_sync_jobs_job ON dbt_sync_jobs (workspace_id, account_id, job_id);

-- Why a job some sync waits on has no working subscription (no public url, no
-- connection for the account, dbt Cloud refused ...); cleared when it is fixed.
CREATE TABLE dbt_subscription_problems (
    workspace_id TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    problem TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, account_id, job_id)
);
