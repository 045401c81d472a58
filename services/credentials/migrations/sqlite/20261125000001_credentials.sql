CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

-- One row per version; material only ever as AES-256-GCM ciphertext under a data key
-- that is itself wrapped by the master key `key_id`.
CREATE TABLE secret_versions (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    wrapped_data_key BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (secret_id, version)
);

CREATE TABLE secret_access_audit (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX secret_access_audit_secret ON secret_access_audit (workspace_id, secret_id, at_ms);
