-- Why Backflow paused a sync by itself (e.g. its webhook endpoint answered 410 Gone);
-- empty when a user paused it or it is not paused. Resuming clears it.
ALTER TABLE retl_syncs ADD COLUMN paused_reason TEXT NOT NULL DEFAULT '';
