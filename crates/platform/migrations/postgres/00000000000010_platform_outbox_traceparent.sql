-- The W3C traceparent of the span that wrote each event, sent as a NATS header.
ALTER TABLE platform_outbox ADD COLUMN traceparent TEXT;
