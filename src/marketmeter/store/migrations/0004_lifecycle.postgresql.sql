-- marketmeter schema, version 4 (PostgreSQL): the subscription lifecycle and its notifications
-- (docs/subscription-lifecycle.md).

-- unsubscribe-pending: when it began (ends_at holds when it turns unsubscribe-success);
-- the offer the buyer accepted, when known (the SNS message's offer-identifier).
ALTER TABLE agreements ADD COLUMN pending_since DOUBLE PRECISION;
ALTER TABLE agreements ADD COLUMN offer_id TEXT;

-- Where each product's lifecycle notifications are POSTed (webhooks), in order.
CREATE TABLE notification_urls (
    product_code TEXT NOT NULL REFERENCES products (product_code) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (product_code, position)
);

-- The event log (an outbox): one row per emitted message, written in the transaction that
-- changed the agreement. occurred_at is on the service clock; body is the JSON delivered.
CREATE TABLE lifecycle_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    product_code TEXT NOT NULL,
    buyer_account_id TEXT NOT NULL,
    license_arn TEXT,
    channel TEXT NOT NULL CHECK (channel IN ('sns', 'eventbridge', 'none')),
    topic TEXT NOT NULL,
    occurred_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX lifecycle_events_occurred ON lifecycle_events (occurred_at);

-- One delivery per event and URL; times are wall-clock epoch seconds. A deliverer claims a
-- due row by setting claimed_until (a lease), so that one event is POSTed by one node.
CREATE TABLE event_deliveries (
    event_seq BIGINT NOT NULL REFERENCES lifecycle_events (seq) ON DELETE CASCADE,
    url TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION,
    claimed_until DOUBLE PRECISION,
    delivered_at DOUBLE PRECISION,
    PRIMARY KEY (event_seq, url)
);
CREATE INDEX event_deliveries_due ON event_deliveries (status, next_attempt_at);

-- Every POST made: its HTTP status or the error.
CREATE TABLE delivery_attempts (
    event_seq BIGINT NOT NULL REFERENCES lifecycle_events (seq) ON DELETE CASCADE,
    url TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    attempted_at DOUBLE PRECISION NOT NULL,
    status_code INTEGER,
    error TEXT,
    PRIMARY KEY (event_seq, url, attempt)
);
