"""The test bench's operator actions: fault rules (LocalStack's chaos API verbs), the latency
effect, quotas, the request journal, reset and snapshots.

The fault rules, the quota profile and the journal are the running server's
(``testbench.controls.BenchControls``); reset and snapshots also act on the ledger. Each action
answers a JSON-ready value and refuses bad input with a ``Refusal`` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marketmeter.metering.clock import Clock, ServiceClock
from marketmeter.operator.clock import clock_json
from marketmeter.operator.inputs import check_known, iso, json_object
from marketmeter.operator.journal import entry_json, journal_query
from marketmeter.refusal import Refusal
from marketmeter.store.base import SnapshotError, SnapshotInfo, Store
from marketmeter.testbench.controls import BenchControls
from marketmeter.testbench.faults import checked_latency, parse_rules

__all__ = ["KEEPABLE", "SNAPSHOT_NAME", "BenchOperations", "snapshot_json"]

SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
KEEPABLE = ("clock", "faults", "journal")


def _snapshot_name(text: Any) -> str:
    if not isinstance(text, str) or not SNAPSHOT_NAME.fullmatch(text):
        raise Refusal("name", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
    return text


def snapshot_json(info: SnapshotInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "createdAt": iso(info.created_at),
        "counts": info.counts,
        "sizeBytes": info.size_bytes,
    }


class BenchOperations:
    """The bench of one server over its store and clock."""

    def __init__(self, store: Store, clock: Clock, bench: BenchControls) -> None:
        self.store = store
        self.clock = clock
        self.bench = bench

    # --- fault rules ----------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        """Every rule, with its id and counters."""
        return self.bench.faults.rules_json()

    def replace_rules(self, body: Any) -> list[dict[str, Any]]:
        self.bench.faults.set_rules(parse_rules(body))
        return self.rules()

    def add_rules(self, body: Any) -> list[dict[str, Any]]:
        self.bench.faults.add_rules(parse_rules(body))
        return self.rules()

    def remove_rules(self, body: Any) -> list[dict[str, Any]]:
        """Remove the rules ``body`` lists (LocalStack's DELETE); None removes every rule."""
        if body is None:
            self.bench.faults.clear()
        else:
            self.bench.faults.remove_rules(parse_rules(body))
        return self.rules()

    def remove_rule(self, text: str) -> list[dict[str, Any]]:
        """Remove the rule whose id is ``text``."""
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            raise Refusal("id", "must be a rule id (a whole number)")
        if not self.bench.faults.remove_rule(int(text)):
            raise Refusal.not_found("id", f"no fault rule {text}")
        return self.rules()

    def effects(self) -> dict[str, Any]:
        return {"latency": self.bench.faults.latency_ms}

    def set_effects(self, body: Any) -> dict[str, Any]:
        """``{"latency": ms}`` added to every call (0 removes it)."""
        given = json_object(body)
        check_known(given, ("latency",))
        self.bench.faults.latency_ms = checked_latency("latency", given.get("latency", 0))
        return self.effects()

    def quota(self) -> dict[str, Any]:
        return self.bench.quotas.state_json()

    def set_quota(self, body: Any) -> dict[str, Any]:
        """``{"profile": "off"|"aws"|"custom", "rates": {operation: calls per second}}``."""
        given = json_object(body)
        check_known(given, ("profile", "rates"))
        profile = given.get("profile", "aws")
        rates = given.get("rates")
        if not isinstance(profile, str):
            raise Refusal("profile", "must be off, aws or custom")
        if rates is not None and not isinstance(rates, dict):
            raise Refusal("rates", "must map operation names to calls per second")
        self.bench.quotas.configure(profile, rates)
        return self.quota()

    # --- journal --------------------------------------------------------------------------

    def journal(self, filters: Mapping[str, str]) -> dict[str, Any]:
        """Entries matching the text ``filters``, and the journal's counters."""
        entries = self.bench.journal.query(journal_query(filters))
        return {"entries": [entry_json(e) for e in entries], "stats": self.bench.journal.stats()}

    def clear_journal(self) -> dict[str, Any]:
        self.bench.journal.clear()
        return {"stats": self.bench.journal.stats()}

    # --- reset and snapshots --------------------------------------------------------------

    async def reset(self, body: Any) -> dict[str, Any]:
        """Empty the ledger (``{"dropCatalog": true}``: the catalog too); put the clock, fault
        rules and journal back as the server started, except those named in ``keep``."""
        given = json_object(body)
        check_known(given, ("dropCatalog", "keep"))
        drop_catalog = given.get("dropCatalog", False)
        if not isinstance(drop_catalog, bool):
            raise Refusal("dropCatalog", "must be true or false")
        keep = given.get("keep", [])
        if not isinstance(keep, list) or any(k not in KEEPABLE for k in keep):
            raise Refusal("keep", f"must be a list of: {', '.join(KEEPABLE)}")
        deleted = await self.store.reset(drop_catalog)
        clock = self.clock if isinstance(self.clock, ServiceClock) else None
        if "clock" not in keep and clock is not None:
            clock.reset()
        self.bench.reset(faults="faults" not in keep, journal="journal" not in keep)
        return {
            "deleted": deleted,
            "catalogDropped": drop_catalog,
            "kept": sorted(set(keep)),
            "clock": clock_json(clock.state()) if clock is not None else None,
        }

    async def snapshots(self) -> dict[str, Any]:
        return {"snapshots": [snapshot_json(s) for s in await self.store.snapshots()]}

    async def save_snapshot(self, body: Any) -> dict[str, Any]:
        """``{"name": N}``: the whole state as N, replacing a snapshot of that name."""
        given = json_object(body)
        check_known(given, ("name",))
        name = _snapshot_name(given.get("name"))
        return snapshot_json(await self.store.save_snapshot(name, self.clock.now().timestamp()))

    async def snapshot(self, name: str) -> dict[str, Any]:
        checked = _snapshot_name(name)
        for info in await self.store.snapshots():
            if info.name == checked:
                return snapshot_json(info)
        raise _missing(checked)

    async def restore_snapshot(self, name: str) -> dict[str, Any]:
        checked = _snapshot_name(name)
        try:
            info = await self.store.restore_snapshot(checked)
        except SnapshotError as error:
            raise Refusal.conflict("name", str(error)) from None
        if info is None:
            raise _missing(checked)
        return snapshot_json(info)

    async def delete_snapshot(self, name: str) -> None:
        checked = _snapshot_name(name)
        if not await self.store.delete_snapshot(checked):
            raise _missing(checked)


def _missing(name: str) -> Refusal:
    return Refusal.not_found("name", f"no snapshot named {name!r}")
