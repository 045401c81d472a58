-- Warehouse sources as the catalog announces them (evt.catalog.source.changed): what
-- git-sync parses with, the dbt adapter (kind) and the target database. Learnt from
-- events only, never read from the catalog's database. Older versions are dropped.
CREATE TABLE warehouse_sources (
    workspace_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    target_database TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, source_id)
);
CREATE INDEX connections_by_source ON connections (workspace_id, warehouse_source_id);
