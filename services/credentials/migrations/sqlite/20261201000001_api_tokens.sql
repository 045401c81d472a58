-- API tokens of people and tools (DESIGN §6). Only the SHA-256 of a token is kept;
-- workspace_id is '' for an operator token (every workspace); revoked_at_ms is 0
-- while the token is valid.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER NOT NULL
);
CREATE INDEX api_tokens_label ON api_tokens (label, revoked_at_ms);
