-- Warehouse sources become editable and testable: a version that increases on every
-- update, the schema Backflow may write to, and the newest connection test
-- (`last_test` = an encoded backflow.catalog.v1.SourceTestResult; NULL = never tested).
ALTER TABLE warehouse_sources ADD COLUMN backflow_schema TEXT NOT NULL DEFAULT '';
ALTER TABLE warehouse_sources ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE warehouse_sources ADD COLUMN updated_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warehouse_sources ADD COLUMN last_test BLOB;
UPDATE warehouse_sources SET updated_at_ms = created_at_ms;

-- Which source each Git connection names (from git-sync's connection events), so a
-- source in use cannot be deleted.
ALTER TABLE projects ADD COLUMN warehouse_source_id TEXT NOT NULL DEFAULT '';
CREATE INDEX projects_by_source ON projects (warehouse_source_id);
