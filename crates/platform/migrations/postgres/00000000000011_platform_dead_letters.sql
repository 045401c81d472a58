-- Messages a consumer could not handle (deliveries exhausted or rejected), kept with
-- their error until an operator replays them. Nothing is dropped silently.
CREATE TABLE IF NOT EXISTS platform_dead_letters (
    id TEXT PRIMARY KEY,
    consumer TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload BYTEA NOT NULL,
    headers TEXT NOT NULL,
    error TEXT NOT NULL,
    reason TEXT NOT NULL,
    delivery_count BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    replayed_at_ms BIGINT,
    replay_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS platform_dead_letters_created ON platform_dead_letters (created_at_ms);
