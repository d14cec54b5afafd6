-- Events set aside behind a poison event (one whose decision fails for a reason that is not an
-- outage), so that one customer's bad event cannot hold up every other customer's. A customer
-- with a row here is parked: every later event of theirs is added behind it, in arrival order
-- (seq), until an operator releases them. An event with no known customer (an acceptance of an
-- unknown session) is parked on its own, with customer_id NULL, and blocks nobody.
CREATE TABLE parked_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid,
    source      text NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    -- The decoded event as JSON, decoded again on release.
    body        bytea NOT NULL,
    -- Why: the failure of the poison event itself, or that its customer was already parked.
    reason      text NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now()
);
-- A redelivery of a parked event is parked once. On digests, not the ids themselves: an event
-- may be parked precisely because its id is too large for a B-tree entry (over 2,704 bytes).
CREATE UNIQUE INDEX parked_events_once ON parked_events (md5(source), md5(event_id));
-- "Is this customer parked?" on every batch, and a customer's events in order on release.
CREATE INDEX parked_events_by_customer ON parked_events (customer_id, seq);
