"""Where the catalog and the ledger live: embedded SQLite by default, or PostgreSQL shared by
several nodes. Code outside this package uses the contract (``store.base``) and opens a store
with ``store.open``; the SQL stays in here."""
