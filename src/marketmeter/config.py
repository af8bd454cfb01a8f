"""One frozen ``Settings`` object: built once (by the CLI or a test), passed in, never global."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from marketmeter.metering.meter_usage import DryRunAnswer
from marketmeter.metering.registration_tokens import DEFAULT_TOKEN_TTL
from marketmeter.metering.windows import UsageWindow, WindowPolicy
from marketmeter.protocol.endpoint import DEFAULT_MAX_BODY_BYTES
from marketmeter.protocol.limits import ConnectionLimits
from marketmeter.testbench.journal import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES

__all__ = ["DEFAULT_DB", "DEFAULT_HOST", "DEFAULT_PORT", "Settings"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8686
DEFAULT_DB = "marketmeter.db"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db: str = DEFAULT_DB  # a SQLite path or URL (sqlite:///path)
    catalog: Path | None = None  # None: the bundled demo catalog, if the ledger has none yet
    auth: Literal["open", "sigv4"] = "open"  # sigv4: verify every signature (strict mode)
    admin_token: str | None = None  # strict mode: the admin API's bearer token (never logged)
    unsubscribe_delay: timedelta = timedelta(hours=1)  # unsubscribe-pending → -success
    window: WindowPolicy = WindowPolicy.SIX_HOURS
    future_skew: timedelta = timedelta(minutes=5)
    synchronous: Literal["full", "normal"] = "full"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # bounds per client
    meter_usage_max_age: timedelta = timedelta(hours=6)  # MeterUsage: "less than 6 hours"
    dry_run_answer: DryRunAnswer = DryRunAnswer.SUCCESS  # MeterUsage DryRun that would succeed
    token_ttl: timedelta = DEFAULT_TOKEN_TTL  # registration tokens expire after this
    quota: Literal["off", "aws"] = "off"  # throttle per account at AWS's published rates
    journal_entries: int = DEFAULT_MAX_ENTRIES  # request journal bounds (0: no journal)
    journal_bytes: int = DEFAULT_MAX_BYTES
    usage_window: UsageWindow = field(init=False)  # BatchMeterUsage
    meter_usage_window: UsageWindow = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "usage_window", UsageWindow(self.window, self.future_skew))
        object.__setattr__(
            self,
            "meter_usage_window",
            UsageWindow(future_skew=self.future_skew, age=self.meter_usage_max_age),
        )
