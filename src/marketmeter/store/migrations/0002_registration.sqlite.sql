-- marketmeter schema, version 2: the rest of the API (docs/meter-usage.md, docs/saas-registration.md, docs/register-usage.md).

-- Free-trial agreements (their registration POST says x-amzn-marketplace-offer-type=free-trial).
ALTER TABLE agreements ADD COLUMN free_trial INTEGER NOT NULL DEFAULT 0;

-- Which operation billed a row, and for MeterUsage the calling instance, task or pod.
ALTER TABLE usage_records ADD COLUMN operation TEXT NOT NULL DEFAULT 'BatchMeterUsage';
ALTER TABLE usage_records ADD COLUMN instance TEXT;

-- MeterUsage of per-request products: one ClientToken per buyer account, bound to the
-- fingerprint of the parameters it was first used with (docs/meter-usage.md).
CREATE TABLE request_claims (
    customer_account TEXT NOT NULL,
    client_token TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    metering_record_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (customer_account, client_token)
);

-- ResolveCustomer: registration tokens (docs/saas-registration.md). Expiry is the service's setting.
CREATE TABLE registration_tokens (
    token TEXT PRIMARY KEY,
    product_code TEXT NOT NULL REFERENCES products (product_code),
    buyer_account_id TEXT NOT NULL REFERENCES buyers (account_id),
    license_arn TEXT NOT NULL REFERENCES agreements (license_arn),
    offer_type TEXT,
    issued_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX registration_tokens_by_buyer ON registration_tokens (buyer_account_id, issued_at);

-- RegisterUsage: one RSA key pair per public key version (docs/register-usage.md).
CREATE TABLE signing_keys (
    version INTEGER PRIMARY KEY,
    private_key_pem TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    retired_at DOUBLE PRECISION
);

-- RegisterUsage: tasks and pods registered while entitled; later calls are not re-checked.
CREATE TABLE container_registrations (
    product_code TEXT NOT NULL,
    buyer_account_id TEXT NOT NULL,
    task TEXT NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (product_code, buyer_account_id, task)
);
