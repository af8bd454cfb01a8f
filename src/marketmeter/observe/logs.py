"""The server's logs: one line per answered call (``CallLogLine``, logger
``marketmeter.calls``, level INFO), one per admin API request (``RequestLogLine``, logger
``marketmeter.admin``: method, path, status, latency; never its query, headers or body), and
every other record of marketmeter and uvicorn, as text or as JSON Lines (``configure``), at a
chosen level.

A call's line carries its request id, operation, caller (the access key id it was signed with,
never a secret), product, status, AWS error type, fault injected, records and latency, and the
request journal's id for it. Nothing secret is ever logged: no request or response body, no
header; and every line, whatever logged it (an exception's message included), goes through
``redact`` before it is written, which masks SigV4 signatures, bearer tokens, secret access
keys, registration tokens, private keys and the exact values given as secrets (the admin
token).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from marketmeter.protocol.hooks import JournalEntry

__all__ = [
    "ADMIN_LOGGER",
    "CALL_LOGGER",
    "LEVELS",
    "CallLogLine",
    "LogFormat",
    "RequestLogLine",
    "configure",
    "formatter",
    "redact",
]

CALL_LOGGER = "marketmeter.calls"
ADMIN_LOGGER = "marketmeter.admin"
LEVELS = ("debug", "info", "warning", "error")
LogFormat = Literal["text", "json"]
REDACTED = "<redacted>"

_PATTERNS = (
    re.compile(r"(Signature=)[0-9A-Fa-f]+"),
    re.compile(r"(?i)(Bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(secret[_-]?(?:access[_-]?)?key\W{1,4})[^\s\"',;}]+"),
    re.compile(r"(?i)(registration[_-]?token\W{1,4})[^\s\"',;}]+"),
    re.compile(r"(?i)(x-amzn-marketplace-token\W{1,4})[^\s\"',;}]+"),
    re.compile(r"(?i)(admin[_-]?token\W{1,4})[^\s\"',;}]+"),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----).*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret it may hold masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _time(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Formatter(logging.Formatter):
    """One line per record, text or JSON, redacted."""

    def __init__(self, fmt: LogFormat, secrets: Iterable[str]) -> None:
        super().__init__()
        self.fmt = fmt
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] | None = getattr(record, "call", None)
        message = record.getMessage()
        if self.fmt == "json":
            line: dict[str, Any] = {
                "time": _time(record.created),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
            }
            if fields is not None:
                line.update(fields)
            if record.exc_info:
                line["exception"] = self.formatException(record.exc_info)
            text = orjson.dumps(line).decode()
        else:
            text = f"{_time(record.created)} {record.levelname} {record.name}: {message}"
            if fields is not None:
                shown = (
                    f"{k}={v}" for k, v in fields.items() if v is not None and k != "operation"
                )
                text += " " + " ".join(shown)
            if record.exc_info:
                text += "\n" + self.formatException(record.exc_info)
        return redact(text, self.secrets)


def formatter(fmt: LogFormat, secrets: Iterable[str] = ()) -> logging.Formatter:
    """A record as one ``fmt`` line, redacted (``secrets``: exact values to mask too)."""
    return _Formatter(fmt, secrets)


def configure(fmt: LogFormat, level: str, secrets: Iterable[str] = ()) -> None:
    """Send every log record at ``level`` or above to stderr, one ``fmt`` line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


class CallLogLine:
    """A ``CallLog`` writing one INFO line per answered call to ``marketmeter.calls``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(CALL_LOGGER)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def record(self, entry: JournalEntry) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        call = {
            "request_id": entry.request_id,
            "operation": entry.operation,
            "caller": entry.access_key_id,
            "product": entry.product_code,
            "status": entry.status,
            "error_type": entry.error_type,
            "fault": entry.fault,
            "records": len(entry.verdicts),
            "latency_ms": round(entry.duration_ms, 3),
            "journal_id": entry.id or None,
        }
        self.logger.info("%s", entry.operation or "-", extra={"call": call})


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Message, Receive, Send], Awaitable[None]]


class RequestLogLine:
    """ASGI middleware writing one INFO line per HTTP request to ``marketmeter.admin``."""

    def __init__(self, app: Asgi, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger or logging.getLogger(ADMIN_LOGGER)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            request = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status or None,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            self.logger.info("%s %s", scope["method"], scope["path"], extra={"call": request})
