-- Runs left RUNNING by a process that stopped before run leases existed can never
-- finish: fail them as interrupted (new runs hold a lease in platform_leases).
UPDATE sync_runs SET status = 4, error = 'interrupted: the process running it stopped before it finished'
WHERE status = 2;

-- Quiet polling (poll_policy.rs): what the last failure was, so the poller neither
-- re-runs a failed head nor hammers a broken remote.
ALTER TABLE connections ADD COLUMN failed_commit TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN failed_credential_version TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN failure_transient BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN backoff_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN retry_after_ms BIGINT NOT NULL DEFAULT 0;
