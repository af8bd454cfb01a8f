-- marketmeter schema, version 8: the catalog document last applied, recognised when it is
-- applied again unchanged (docs/catalog.md: serve --catalog skips it).

-- The document's SHA-256, and the catalog version its apply made: the digest holds only while
-- the version has not moved since (an edit, a transition, a restore move it).
ALTER TABLE catalog_state ADD COLUMN source_digest TEXT;
ALTER TABLE catalog_state ADD COLUMN digest_version INTEGER;
