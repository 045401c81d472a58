-- Runs announced as `evt.dbt.run.completed` (from a webhook delivery, a polled run or a
-- dbt Core notification). One row per (workspace, account, job, run): the same run
-- delivered five times, or by two subscriptions, or seen by the webhook and by
-- reconciliation, triggers once.
CREATE TABLE dbt_announced_runs (
    workspace_id TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    run_id BIGINT NOT NULL,
    connection_id TEXT NOT NULL,
    via TEXT NOT NULL,
    announced_at_ms BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, account_id, job_id, run_id)
);
