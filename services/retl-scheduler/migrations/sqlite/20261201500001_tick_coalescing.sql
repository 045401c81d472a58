-- Schedule ticks that came while a run of the sync was still queued are folded into
-- that run instead of queueing one more (a slow sync never builds a backlog); this
-- counts them.
ALTER TABLE retl_runs ADD COLUMN coalesced_ticks INTEGER NOT NULL DEFAULT 0;
