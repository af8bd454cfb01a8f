"""Reliability harnesses, run as documented commands (docs/reliability.md):
``python -m reliability.crash`` (SIGKILL and immediate-stop crash test) and its siblings."""
