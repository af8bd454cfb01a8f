"""``marketmeter serve --workers N``: several worker processes answering HTTP in front of one
coordinator process that owns the store's writer and the test bench (docs/performance.md,
"Several processes")."""
