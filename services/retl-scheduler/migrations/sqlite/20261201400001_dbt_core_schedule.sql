-- Issue 11: the "after a dbt Core run" schedule names the dbt project whose runs it
-- follows (empty: any project of the workspace).
ALTER TABLE retl_syncs ADD COLUMN dbt_project_name TEXT NOT NULL DEFAULT '';
