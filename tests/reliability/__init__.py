"""Reliability proven by tests (issue 7): crashes, retries, malformed input, limits."""
