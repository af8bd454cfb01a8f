"""One frozen ``Settings`` object: built once (by the CLI or a test), passed in, never global;
with the defaults and bounds it holds (``ConnectionLimits``, the body and journal bounds, the
token lifetime). Imports nothing of ours but the window policy it configures
(``metering.windows``), so every layer may import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from marketmeter.metering.windows import UsageWindow, WindowPolicy

__all__ = [
    "COLLECTOR_THRESHOLDS",
    "DEFAULT_DB",
    "DEFAULT_HOST",
    "DEFAULT_JOURNAL_BYTES",
    "DEFAULT_JOURNAL_ENTRIES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "DEFAULT_TOKEN_TTL",
    "ConnectionLimits",
    "DryRunAnswer",
    "Settings",
    "TokenReuse",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8686
DEFAULT_DB = "marketmeter.db"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # an AWS request body (AWS's own bound)
DEFAULT_JOURNAL_ENTRIES = 10_000
# Bodies the journal keeps: about 2,000 25-record BatchMeterUsage calls, in and out. It holds
# about 1.5 times this in memory (18 MiB measured under load): 16 MiB (24 MiB held) put a
# server with two workers over 200 MB (docs/performance.md).
DEFAULT_JOURNAL_BYTES = 12 * 1024 * 1024
DEFAULT_TOKEN_TTL = timedelta(hours=4)  # a SaaS registration token resolves this long

# The cyclic garbage collector's thresholds in a serving process (CPython's: 700, 10, 10). A
# server billing 4,000 requests a second allocates over a million objects a second; with the
# defaults a full collection, which walks every tracked object (the catalog snapshot's 20,000
# buyers and their agreements, the journal), ran many times a second, and each wrote to the
# header of every object a forked worker still shared with its coordinator, copying the page.
# Reference counting frees all but cycles, which these still collect (docs/performance.md:
# 5-15 % more requests a second, 16 MiB less memory with two workers).
COLLECTOR_THRESHOLDS = (50_000, 20, 100)


class DryRunAnswer(StrEnum):
    """How MeterUsage answers a DryRun that would succeed (``serve --dry-run-answer``;
    docs/meter-usage.md)."""

    SUCCESS = "success"  # HTTP 200 {"MeteringRecordId": "DryRunOperation"}, as AWS answers
    ERROR = "error"  # 400 DryRunOperation "Request would have succeeded, ..." (EC2's pattern)


class TokenReuse(StrEnum):
    """How ResolveCustomer answers a registration token resolved before (``serve
    --token-reuse``; docs/saas-registration.md)."""

    # the same answer until the token expires, as AWS documents ("repeated calls with the same
    # token return the same values" for its lifetime)
    REUSABLE = "reusable"
    SINGLE_USE = "single-use"  # a second resolution is ExpiredTokenException


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The bounds on what one client may take from the server, in connections, bytes and whole
    seconds (defaults: ``serve --help``).

    A metering endpoint is shared by every job of a seller; one broken or hostile client (a header
    that never ends, a body sent a byte a second, thousands of idle sockets) must not take the
    service from the others. ``ConnectionLimits`` holds the bounds ``serve`` enforces, each a
    ``serve`` option; ``protocol.guarded_http`` enforces them on every connection, the endpoint
    enforces ``processing_timeout`` and the 1 MB body bound.

    What a client sees when it crosses one (AWS JSON 1.1 errors, then the connection closes):

    ==========================  ======  =========================================  ============
    bound                       status  ``__type``                                 SDKs retry
    ==========================  ======  =========================================  ============
    ``max_connections``         503     ``ServiceUnavailableException``            yes
    ``max_header_bytes``,       431     ``RequestHeaderFieldsTooLargeException``   no
    ``max_headers``
    ``header_timeout``,         408     ``RequestTimeoutException``                yes
    ``request_timeout``
    ``processing_timeout``      500     ``InternalServiceErrorException``          yes
    ``idle_timeout``            —       (the idle connection is closed)            —
    ``request_timeout``         —       (answer not read: connection aborted)      yes
    ==========================  ======  =========================================  ============

    A request cut short by any of these is never processed, except ``processing_timeout``: there
    the work may still commit after the answer; the SDK's retry is then answered with the same ids.
    """

    max_connections: int = 1000  # open connections; one more gets a 503
    max_header_bytes: int = 16 * 1024  # request line and headers together
    max_headers: int = 100  # header fields in one request
    idle_timeout: int = 5  # a connection with no request in progress is closed after this
    header_timeout: int = 10  # from a request's first byte to the end of its headers
    request_timeout: int = 30  # from a request's first byte to the end of its body
    processing_timeout: int = 90  # from a whole request to its answer (AWS endpoint)

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.header_timeout > self.request_timeout:
            raise ValueError(
                f"header_timeout ({self.header_timeout}) must not exceed "
                f"request_timeout ({self.request_timeout})"
            )


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db: str = DEFAULT_DB  # a SQLite path or URL (sqlite:///path)
    catalog: Path | None = None  # None: the bundled demo catalog, if the ledger has none yet
    catalog_dir: Path | None = None  # its catalog files are applied after ``catalog``
    auth: Literal["open", "sigv4"] = "open"  # sigv4: verify every signature (strict mode)
    admin_token: str | None = None  # strict mode: the admin API's bearer token (never logged)
    # names the admin API answers to beside the loopback names and ``host`` (a service name)
    allowed_hosts: tuple[str, ...] = ()
    unsubscribe_delay: timedelta = timedelta(hours=1)  # unsubscribe-pending → -success
    window: WindowPolicy = WindowPolicy.SIX_HOURS
    future_skew: timedelta = timedelta(minutes=5)
    synchronous: Literal["full", "normal"] = "full"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # bounds per client
    meter_usage_max_age: timedelta = timedelta(hours=6)  # MeterUsage: "less than 6 hours"
    dry_run_answer: DryRunAnswer = DryRunAnswer.SUCCESS  # MeterUsage DryRun that would succeed
    token_ttl: timedelta = DEFAULT_TOKEN_TTL  # registration tokens expire after this
    token_reuse: TokenReuse = TokenReuse.REUSABLE  # a token resolved again
    quota: Literal["off", "aws"] = "off"  # throttle per account at AWS's published rates
    journal_entries: int = DEFAULT_JOURNAL_ENTRIES  # request journal bounds (0: no journal)
    journal_bytes: int = DEFAULT_JOURNAL_BYTES
    log_format: Literal["text", "json"] = "text"  # serve's log lines (docs/observability.md)
    log_level: Literal["debug", "info", "warning", "error"] = "warning"  # info: a line per call
    workers: int = 1  # processes answering HTTP (serve --workers; 1: one process does all)
    usage_window: UsageWindow = field(init=False)  # BatchMeterUsage
    meter_usage_window: UsageWindow = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "usage_window", UsageWindow(self.window, self.future_skew))
        object.__setattr__(
            self,
            "meter_usage_window",
            UsageWindow(future_skew=self.future_skew, age=self.meter_usage_max_age),
        )
