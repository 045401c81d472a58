-- Leases held by running work (sync runs, Reverse ETL runs): see crates/platform/src/lease.rs.
-- One row per leased item of a kind; a row whose expires_at_ms has passed is lapsed and
-- may be taken by any replica's reaper.
CREATE TABLE IF NOT EXISTS platform_leases (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    acquired_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS platform_leases_by_expiry ON platform_leases (kind, expires_at_ms);
