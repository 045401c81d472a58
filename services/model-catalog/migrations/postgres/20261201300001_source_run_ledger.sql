-- A source may ask for a run ledger in its Backflow schema (1 = on): the executor writes
-- each run and its per-record results to backflow_runs / backflow_run_records there.
ALTER TABLE warehouse_sources ADD COLUMN run_ledger BIGINT NOT NULL DEFAULT 0;
