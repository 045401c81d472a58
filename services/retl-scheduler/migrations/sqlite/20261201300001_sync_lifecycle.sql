-- Sync lifecycle (issue 10): per-sync destination options, guards, diff strategy,
-- attempt limit, the model's primary key as validated (announced with the mapped
-- columns), the diff-state epoch (ResetSyncState bumps it; a state written at another
-- epoch is void), and the ticker's bookkeeping (next due tick, interval anchor).
ALTER TABLE retl_syncs ADD COLUMN destination_options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE retl_syncs ADD COLUMN max_delete_share REAL NOT NULL DEFAULT 0;
ALTER TABLE retl_syncs ADD COLUMN allow_empty_extract INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_syncs ADD COLUMN diff_strategy INTEGER NOT NULL DEFAULT 1;
ALTER TABLE retl_syncs ADD COLUMN max_record_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_syncs ADD COLUMN only_if_model_rebuilt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_syncs ADD COLUMN state_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_syncs ADD COLUMN model_primary_key TEXT NOT NULL DEFAULT '[]';
ALTER TABLE retl_syncs ADD COLUMN schedule_anchor_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_syncs ADD COLUMN next_tick_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX retl_syncs_due ON retl_syncs (next_tick_ms);

-- A dry run extracts and diffs, sends nothing and commits nothing.
ALTER TABLE retl_runs ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0;

-- Destinations: where syncs deliver. Settings hold no secrets; the secret is named by
-- credential_id and lives in the credentials service.
CREATE TABLE retl_destinations (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    settings TEXT NOT NULL,
    credential_id TEXT NOT NULL DEFAULT '',
    rate_limit_per_second REAL NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    last_test_ok INTEGER NOT NULL DEFAULT 0,
    last_test_message TEXT NOT NULL DEFAULT '',
    last_tested_at_ms INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, name)
);
