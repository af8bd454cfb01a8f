-- marketmeter schema, version 5 (PostgreSQL): pricing models and entitlements (docs/entitlement-service.md),
-- and registration tokens' first resolution.

-- How a product is sold; every product stored before this version is sold by usage.
ALTER TABLE products ADD COLUMN pricing_model TEXT NOT NULL DEFAULT 'usage'
    CHECK (pricing_model IN ('usage', 'contract', 'contract-with-consumption'));

-- What each agreement entitles its buyer to, per dimension. value_type names the member of
-- GetEntitlements' Value (integer, double, boolean, string); value is its text. expires_at
-- NULL: the agreement's end.
CREATE TABLE entitlements (
    license_arn TEXT NOT NULL REFERENCES agreements (license_arn) ON DELETE CASCADE,
    dimension TEXT NOT NULL,
    position INTEGER NOT NULL,
    value_type TEXT NOT NULL CHECK (value_type IN ('integer', 'double', 'boolean', 'string')),
    value TEXT NOT NULL,
    expires_at DOUBLE PRECISION,
    PRIMARY KEY (license_arn, dimension)
);

-- ResolveCustomer under --token-reuse single-use: when a token was first resolved
-- (docs/saas-registration.md).
ALTER TABLE registration_tokens ADD COLUMN resolved_at DOUBLE PRECISION;
