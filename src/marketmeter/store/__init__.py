"""Where the catalog and the ledger live: SQLite by default (PostgreSQL later)."""
