-- marketmeter schema, version 6: offers and their terms, the buyer's choices on an agreement
-- (docs/catalog.md, "Offers"; docs/agreement-api.md).

-- An offer of a product. buyers: a JSON array of account ids (empty: a public offer);
-- terms: a JSON array of [<AcceptedTerm member>, <the term's members as JSON text>].
CREATE TABLE offers (
    offer_id TEXT PRIMARY KEY,
    product_code TEXT NOT NULL REFERENCES products (product_code),
    name TEXT NOT NULL DEFAULT '',
    buyers TEXT NOT NULL DEFAULT '[]',
    terms TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX offers_product ON offers (product_code);

-- What the buyer chose on the offer's configurable terms, as JSON
-- ({"selector", "dimensions": [[key, quantity], ...], "autoRenew"}); NULL: nothing chosen.
ALTER TABLE agreements ADD COLUMN configuration TEXT;
