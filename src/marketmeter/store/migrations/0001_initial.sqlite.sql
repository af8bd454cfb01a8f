-- marketmeter schema, version 1: catalog and ledger (docs/catalog.md, docs/batch-meter-usage.md).

CREATE TABLE sellers (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT ''
);

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('seller', 'buyer')),
    account_id TEXT NOT NULL
);

CREATE TABLE products (
    product_code TEXT PRIMARY KEY,
    seller_account_id TEXT NOT NULL REFERENCES sellers (account_id),
    kind TEXT NOT NULL CHECK (kind IN ('saas', 'ami', 'container')),
    integration TEXT NOT NULL CHECK (integration IN ('legacy', 'concurrent-agreements')),
    name TEXT NOT NULL DEFAULT '',
    registration_url TEXT,
    per_request_metering INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE dimensions (
    product_code TEXT NOT NULL REFERENCES products (product_code),
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (product_code, name)
);

CREATE TABLE buyers (
    account_id TEXT PRIMARY KEY,
    customer_identifier TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT ''
);

CREATE TABLE agreements (
    license_arn TEXT PRIMARY KEY,
    buyer_account_id TEXT NOT NULL REFERENCES buyers (account_id),
    product_code TEXT NOT NULL REFERENCES products (product_code),
    state TEXT NOT NULL
        CHECK (state IN ('subscribed', 'unsubscribe-pending', 'unsubscribed', 'suspended')),
    starts_at DOUBLE PRECISION,
    ends_at DOUBLE PRECISION
);

-- Bumped by every catalog change, so that servers know when to reload their cached snapshot.
CREATE TABLE catalog_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO catalog_state (id, version) VALUES (1, 0);

-- The ledger: append-only, one row per billed record.
CREATE TABLE usage_records (
    seq INTEGER PRIMARY KEY,
    hour INTEGER NOT NULL,
    scope TEXT NOT NULL,
    customer_account TEXT NOT NULL,
    dimension TEXT NOT NULL,
    quantity_micros INTEGER NOT NULL,  -- the quantity × 10^6: exact, compared by value
    metering_record_id TEXT NOT NULL,
    product_code TEXT NOT NULL,
    license_arn TEXT,
    customer_identifier TEXT,
    usage_timestamp DOUBLE PRECISION NOT NULL,
    allocations TEXT,
    received_at DOUBLE PRECISION NOT NULL
);

-- The deduplication key (docs/batch-meter-usage.md). Led by the hour bucket: writes stay local in the index
-- (performance notes: a customer-first index halved throughput).
CREATE UNIQUE INDEX usage_records_dedupe
    ON usage_records (hour, scope, customer_account, dimension);
