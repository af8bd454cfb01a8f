-- marketmeter schema, version 3: named snapshots of the whole state (the seller's test bench).

-- data: the zlib-compressed JSON of every state table's rows; counts: rows per table (JSON).
-- A snapshot is restored only into the schema version it was taken under.
CREATE TABLE snapshots (
    name TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    schema_version INTEGER NOT NULL,
    counts TEXT NOT NULL,
    data BLOB NOT NULL
);
