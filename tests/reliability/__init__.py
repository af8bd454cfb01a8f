"""Reliability proven by tests (docs/reliability.md): crashes, retries, malformed input, limits."""
