-- Mirror deletes carried across a diff strategy change (executor::carried_keys) that the
-- destination did not take. The old strategy's state is void once the first run under the
-- new one commits, so they are owed here, with the key values to send, to the next mirror
-- runs at the state epoch they were written for; attempts are counted in
-- retl_record_attempts by key hash, like every failed record. A row leaves when its delete
-- goes through, is given up, or its key is back in the model.
CREATE TABLE retl_carried_deletes (
    sync_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    key_hash BIGINT NOT NULL,
    state_epoch BIGINT NOT NULL,
    PRIMARY KEY (sync_id, key_json)
);
