-- Transactional outbox and consumer inbox, shared by every service (DESIGN §4).
CREATE TABLE IF NOT EXISTS platform_outbox (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    published_at_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS platform_outbox_pending ON platform_outbox (seq) WHERE published_at_ms IS NULL;

CREATE TABLE IF NOT EXISTS platform_inbox (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    handled_at_ms BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
