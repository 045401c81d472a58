-- Every change of a sync bumps its version; SyncChangedEvent carries it, so the
-- catalog's in-use guard drops an older event that arrives late.
ALTER TABLE retl_syncs ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
