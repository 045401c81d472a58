-- Run execution (issue 10): where a run is, its counts and timings (JSON text), whether
-- it was approved after a guard stopped it, asked to cancel, or resumed after
-- its executor died. Record errors, per-sync record attempts, the checkpoint of what a
-- run's destination acknowledged, and the key values of records a mirror sync delivered
-- live beside it.
ALTER TABLE retl_runs ADD COLUMN started_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE retl_runs ADD COLUMN phase INTEGER NOT NULL DEFAULT 1;
ALTER TABLE retl_runs ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_runs ADD COLUMN approval_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE retl_runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_runs ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retl_runs ADD COLUMN counts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE retl_runs ADD COLUMN timings TEXT NOT NULL DEFAULT '[]';
ALTER TABLE retl_runs ADD COLUMN samples TEXT NOT NULL DEFAULT '[]';
CREATE INDEX retl_runs_sync_status ON retl_runs (sync_id, status);

-- Records a run rejected (NULL/duplicate key, null policy) or the destination refused.
CREATE TABLE retl_run_record_errors (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    record_change INTEGER NOT NULL,
    key_json TEXT NOT NULL,
    rejected INTEGER NOT NULL,
    message TEXT NOT NULL,
    destination_status INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    given_up INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
);

-- Runs in a row a record (key hash, as a signed 64-bit integer) failed at the destination.
CREATE TABLE retl_record_attempts (
    sync_id TEXT NOT NULL,
    key_hash BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (sync_id, key_hash)
);

-- What the destination acknowledged during a run, in chunks of 16-byte (key hash, row
-- word) entries; a resumed run skips these records. Deleted when the run finishes.
CREATE TABLE retl_run_acks (
    run_id TEXT NOT NULL,
    chunk BIGINT NOT NULL,
    entries BLOB NOT NULL,
    PRIMARY KEY (run_id, chunk)
);

-- Key values (JSON object) of the records a mirror sync delivered, so its deletes carry
-- real keys and only ever touch records Backflow delivered.
CREATE TABLE retl_sync_keys (
    sync_id TEXT NOT NULL,
    key_hash BIGINT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (sync_id, key_hash)
);
