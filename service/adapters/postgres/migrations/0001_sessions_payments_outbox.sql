-- One row per customer ever seen: the row lock that serialises everything decided for them.
CREATE TABLE customers (
    id uuid PRIMARY KEY
);

CREATE TABLE sessions (
    id                uuid PRIMARY KEY,
    customer_id       uuid NOT NULL,  -- customers holds lock rows only: no foreign key to check
    -- One session per payment follows from the id itself (UUIDv5 of the payment id), so no
    -- second unique index is maintained for it.
    payment_id        text NOT NULL,
    session_type      text NOT NULL,
    status            text NOT NULL CHECK (status IN ('waiting', 'live', 'completed', 'cancelled')),
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    created_event_id  uuid NOT NULL,
    mechanic_id       uuid,
    accepted_at       timestamptz,
    accepted_event_id uuid,
    closed_at         timestamptz,
    close_reason      text,
    CHECK (status <> 'live' OR (mechanic_id IS NOT NULL AND accepted_at IS NOT NULL)),
    CHECK ((status IN ('completed', 'cancelled')) = (closed_at IS NOT NULL))
);

-- R1: at most one waiting or live session per customer, whatever the code above it does.
CREATE UNIQUE INDEX sessions_one_active_per_customer
    ON sessions (customer_id) WHERE status IN ('waiting', 'live');
-- The sweeper's two scans.
CREATE INDEX sessions_waiting_by_expiry ON sessions (expires_at) WHERE status = 'waiting';
CREATE INDEX sessions_live_by_acceptance ON sessions (accepted_at) WHERE status = 'live';

-- Exactly one outcome per payment_id, ever.
CREATE TABLE payments (
    payment_id  text PRIMARY KEY,
    customer_id uuid NOT NULL,
    event_id    text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('created', 'rejected')),
    session_id  uuid NOT NULL
);

-- Input events already decided, by CloudEvents identity (source, id); pruned after the input
-- topics' retention, past which no redelivery or replay can bring them back.
CREATE TABLE processed_events (
    source       text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);
-- Rows arrive in processed_at order, so a BRIN index serves the pruning at almost no cost on
-- the hot path.
CREATE INDEX processed_events_by_age ON processed_events USING brin (processed_at);

-- Transactional outbox: written with the state change, published in seq order by the relay,
-- deleted once the broker has acknowledged it.
CREATE TABLE outbox (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL,
    key      bytea NOT NULL,
    value    bytea NOT NULL
);
