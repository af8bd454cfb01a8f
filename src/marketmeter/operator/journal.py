"""The request journal's view, shared by ``GET /_marketmeter/journal`` and
``marketmeter journal``: filters from text, entries to JSON.

Filters: ``operation``, ``product``, ``accessKeyId``, ``status``, ``errorType``, ``since`` and
``until`` (service-clock times, ISO 8601 or epoch seconds), ``after`` (an entry id) and
``limit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from marketmeter.operator.inputs import iso, parse_count, parse_time
from marketmeter.refusal import Refusal
from marketmeter.servicemodel.spec import served_operation_names
from marketmeter.testbench.journal import JournalEntry, JournalQuery

__all__ = ["JOURNAL_FILTERS", "MAX_LIMIT", "entry_json", "journal_query"]

MAX_LIMIT = 10_000
JOURNAL_FILTERS = (
    "operation",
    "product",
    "accessKeyId",
    "status",
    "errorType",
    "since",
    "until",
    "after",
    "limit",
)


def journal_query(filters: Mapping[str, str]) -> JournalQuery:
    for name in filters:
        if name not in JOURNAL_FILTERS:
            raise Refusal(name, f"unknown filter; known: {', '.join(JOURNAL_FILTERS)}")
    operation = filters.get("operation") or None
    if operation is not None and operation not in served_operation_names():
        raise Refusal("operation", f"must be one of {', '.join(served_operation_names())}")
    status = filters.get("status")
    since = filters.get("since")
    until = filters.get("until")
    after = filters.get("after")
    return JournalQuery(
        operation=operation,
        product_code=filters.get("product") or None,
        access_key_id=filters.get("accessKeyId") or None,
        status=parse_count("status", status, 100, 599) if status else None,
        error_type=filters.get("errorType") or None,
        since=parse_time("since", since) if since else None,
        until=parse_time("until", until) if until else None,
        after=parse_count("after", after, 0, 2**62) if after else None,
        limit=parse_count("limit", filters.get("limit") or "100", 1, MAX_LIMIT),
    )


# A body nested deeper than this is shown as text: the admin API's JSON encoder recurses.
_MAX_SHOWN_DEPTH = 64


def _body(raw: bytes) -> Any:
    """A body as JSON when it is JSON (nested at most ``_MAX_SHOWN_DEPTH`` levels), else as
    text (bad UTF-8 replaced); ``None`` if empty."""
    if not raw:
        return None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    else:
        if _depth_at_most(parsed, _MAX_SHOWN_DEPTH):
            return parsed
    return raw.decode("utf-8", errors="replace")


def _depth_at_most(value: Any, most: int) -> bool:
    """Whether ``value`` nests at most ``most`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > most:
            return False
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    """An entry as the admin API shows it (camelCase, bodies decoded)."""
    return {
        "id": entry.id,
        "time": iso(entry.time),
        "epoch": entry.time,
        "wallTime": iso(entry.wall_time),
        "requestId": entry.request_id,
        "operation": entry.operation,
        "target": entry.target,
        "accessKeyId": entry.access_key_id,
        "productCode": entry.product_code,
        "status": entry.status,
        "errorType": entry.error_type,
        "verdicts": list(entry.verdicts),
        "fault": entry.fault,
        "durationMs": round(entry.duration_ms, 3),
        "request": _body(entry.request_body),
        "response": _body(entry.response_body),
    }
