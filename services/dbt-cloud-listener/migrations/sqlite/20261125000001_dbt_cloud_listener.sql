-- dbt Cloud accounts a workspace listens to; the API token stays in credentials.
CREATE TABLE dbt_connections (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    access_url TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    api_token_credential_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Webhook deliveries received (and runs found by polling), keyed by dbt's event id so
-- that a retried delivery is recognised and announces its run only once.
CREATE TABLE dbt_received_events (
    connection_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    run_status_code INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (connection_id, event_id)
);
CREATE INDEX dbt_received_events_recent ON dbt_received_events (workspace_id, connection_id, received_at_ms);

-- Webhook subscriptions Backflow created in dbt Cloud, one per (connection, job).
CREATE TABLE dbt_subscriptions (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    dbt_webhook_id TEXT NOT NULL,
    hmac_secret_credential_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (connection_id, job_id)
);
