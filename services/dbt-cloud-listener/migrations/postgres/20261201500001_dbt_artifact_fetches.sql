-- Node results still to be read for an announced dbt Cloud run (its run_results.json
-- artifact). Written in the transaction that announces the run, deleted in the one that
-- announces its node results (or the reason there are none), so a crash in between
-- loses nothing: the worker picks the row up again after a restart.
CREATE TABLE dbt_artifact_fetches (
    workspace_id TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    job_id BIGINT NOT NULL,
    run_id BIGINT NOT NULL,
    connection_id TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, account_id, job_id, run_id)
);
CREATE INDEX dbt_artifact_fetches_due ON dbt_artifact_fetches (next_attempt_at_ms);
