-- Trace context through the outbox: the W3C traceparent of the input event that caused a row
-- (NULL when it came without one, and for the sweeper's rows), which the relay sends as a Kafka
-- header, so a trace continues past the consumer without touching the payload bytes. And when
-- each row was written, so the age of the oldest unpublished row can be watched. Both are
-- cheap: a NULL column costs nothing, and a default of now() (stable, not volatile) is stored
-- once in the catalog rather than written into the existing rows.
ALTER TABLE outbox ADD COLUMN traceparent text;
ALTER TABLE outbox ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
