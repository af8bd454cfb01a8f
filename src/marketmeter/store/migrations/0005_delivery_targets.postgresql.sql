-- marketmeter schema, version 5: delivery targets (docs/subscription-lifecycle.md).

-- Each product's delivery targets (SNS, SQS, EventBridge, HTTP) as their catalog entries (JSON).
ALTER TABLE products ADD COLUMN notification_targets TEXT NOT NULL DEFAULT '[]';

-- event_deliveries.url names the target: a target's name, or a webhook URL of notification_urls.
-- retry_base: the attempts made before the last redelivery (the attempt limit counts from it).
ALTER TABLE event_deliveries ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;
CREATE INDEX event_deliveries_target ON event_deliveries (url, status);

-- The SNS HTTP(S) subscriptions of http targets speaking SNS's protocol: one per product,
-- target and topic, pending until its endpoint visits the SubscribeURL (with this token).
CREATE TABLE sns_subscriptions (
    token TEXT PRIMARY KEY,
    product_code TEXT NOT NULL,
    target TEXT NOT NULL,
    topic_arn TEXT NOT NULL,
    confirmed_at DOUBLE PRECISION,
    UNIQUE (product_code, target, topic_arn)
);
