-- Transactional outbox and consumer inbox, shared by every service (DESIGN §4).
CREATE TABLE IF NOT EXISTS platform_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    published_at_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS platform_outbox_pending ON platform_outbox (seq) WHERE published_at_ms IS NULL;

CREATE TABLE IF NOT EXISTS platform_inbox (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    handled_at_ms INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
