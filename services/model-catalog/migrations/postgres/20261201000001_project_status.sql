-- Project status from git-sync run outcomes (snapshot.ready / sync.failed events).
-- status: 1 never synced, 2 ok, 3 failing (backflow.catalog.v1.ProjectStatus).
ALTER TABLE projects ADD COLUMN status BIGINT NOT NULL DEFAULT 1;
ALTER TABLE projects ADD COLUMN last_run_id TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN last_attempted_commit TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN error_count BIGINT NOT NULL DEFAULT 0;
