"""The test bench's admin routes: fault rules, quotas, the journal, reset and snapshots.

- ``GET|POST|PATCH|DELETE /faults`` (LocalStack's chaos API verbs: read, replace, add,
  remove; ``DELETE`` without a body removes every rule), ``DELETE /faults/{id}``;
  ``GET|POST /faults/effects`` (``{"latency": ms}`` on every call); ``GET|PUT /faults/quota``.
  The same fault and effect routes answer under ``/_localstack/chaos/``, so tooling written for
  LocalStack's chaos API works unchanged.
- ``GET|DELETE /journal`` (read with filters; empty).
- ``POST /reset``: empty the ledger (``{"dropCatalog": true}`` drops the catalog too), and put
  the clock, fault rules and journal back as the server started, except those named in
  ``keep``.
- ``GET|POST /snapshots``, ``GET|DELETE /snapshots/{name}``,
  ``POST /snapshots/{name}/restore``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter.admin.clock_control import clock_json
from marketmeter.admin.inputs import NO_BODY, iso, json_body
from marketmeter.admin.journal_view import entry_json, journal_query
from marketmeter.metering.clock import Clock, ServiceClock
from marketmeter.refusal import Refusal
from marketmeter.store.base import SnapshotError, SnapshotInfo, Store
from marketmeter.testbench.controls import BenchControls
from marketmeter.testbench.faults import parse_rules

__all__ = ["SNAPSHOT_NAME", "bench_routes"]

SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEEPABLE = ("clock", "faults", "journal")
_MAX_LATENCY_MS = 60_000


async def _json_body(request: Request) -> Any:
    """The body as JSON; None when there is none (as for a JSON ``null``)."""
    body = await json_body(request)
    return None if body is NO_BODY else body


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise Refusal("body", "must be a JSON object")
    return body


def _known(body: dict[str, Any], known: tuple[str, ...]) -> None:
    for name in body:
        if name not in known:
            raise Refusal(name, f"unknown field; known: {', '.join(known)}")


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


def bench_routes(store: Store, clock: Clock, bench: BenchControls) -> list[Route]:
    faults = bench.faults

    def rules_response(status: int = 200) -> Response:
        return JSONResponse(faults.rules_json(), status_code=status)

    def rules_of(body: Any) -> Any:
        try:
            return parse_rules(body)
        except Refusal as error:
            raise Refusal(error.field, error.message) from None

    # --- fault rules ------------------------------------------------------------------------

    async def fault_list(request: Request) -> Response:
        return rules_response()

    async def fault_replace(request: Request) -> Response:
        faults.set_rules(rules_of(await _json_body(request)))
        return rules_response()

    async def fault_add(request: Request) -> Response:
        faults.add_rules(rules_of(await _json_body(request)))
        return rules_response()

    async def fault_remove(request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            faults.clear()
        else:
            faults.remove_rules(rules_of(body))
        return rules_response()

    async def fault_remove_one(request: Request) -> Response:
        text = request.path_params["id"]
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            raise Refusal("id", "must be a rule id (a whole number)")
        if not faults.remove_rule(int(text)):
            return JSONResponse({"error": f"no fault rule {text}", "field": "id"}, 404)
        return rules_response()

    async def effects_read(request: Request) -> Response:
        return JSONResponse({"latency": faults.latency_ms})

    async def effects_set(request: Request) -> Response:
        body = _object(await _json_body(request))
        _known(body, ("latency",))
        latency = body.get("latency", 0)
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or not 0 <= latency <= _MAX_LATENCY_MS
        ):
            raise Refusal("latency", f"must be milliseconds from 0 to {_MAX_LATENCY_MS}")
        faults.latency_ms = float(latency)
        return JSONResponse({"latency": faults.latency_ms})

    async def quota_read(request: Request) -> Response:
        return JSONResponse(bench.quotas.state_json())

    async def quota_set(request: Request) -> Response:
        body = _object(await _json_body(request))
        _known(body, ("profile", "rates"))
        profile = body.get("profile", "aws")
        rates = body.get("rates")
        if not isinstance(profile, str):
            raise Refusal("profile", "must be off, aws or custom")
        if rates is not None and not isinstance(rates, dict):
            raise Refusal("rates", "must map operation names to calls per second")
        try:
            bench.quotas.configure(profile, rates)
        except Refusal as error:
            raise Refusal(error.field, error.message) from None
        return JSONResponse(bench.quotas.state_json())

    # --- journal ----------------------------------------------------------------------------

    async def journal_read(request: Request) -> Response:
        query = journal_query(dict(request.query_params))
        entries = bench.journal.query(query)
        return JSONResponse(
            {"entries": [entry_json(e) for e in entries], "stats": bench.journal.stats()}
        )

    async def journal_clear(request: Request) -> Response:
        bench.journal.clear()
        return JSONResponse({"stats": bench.journal.stats()})

    # --- reset and snapshots ----------------------------------------------------------------

    async def reset(request: Request) -> Response:
        body = _object(await _json_body(request))
        _known(body, ("dropCatalog", "keep"))
        drop_catalog = body.get("dropCatalog", False)
        if not isinstance(drop_catalog, bool):
            raise Refusal("dropCatalog", "must be true or false")
        keep = body.get("keep", [])
        if not isinstance(keep, list) or any(k not in _KEEPABLE for k in keep):
            raise Refusal("keep", f"must be a list of: {', '.join(_KEEPABLE)}")
        deleted = await store.reset(drop_catalog)
        if "clock" not in keep and isinstance(clock, ServiceClock):
            clock.reset()
        bench.reset(faults="faults" not in keep, journal="journal" not in keep)
        state = clock.state() if isinstance(clock, ServiceClock) else None
        return JSONResponse(
            {
                "deleted": deleted,
                "catalogDropped": drop_catalog,
                "kept": sorted(set(keep)),
                "clock": clock_json(state) if state is not None else None,
            }
        )

    async def snapshot_list(request: Request) -> Response:
        found = await store.snapshots()
        return JSONResponse({"snapshots": [snapshot_json(s) for s in found]})

    async def snapshot_save(request: Request) -> Response:
        body = _object(await _json_body(request))
        _known(body, ("name",))
        name = _snapshot_name(body.get("name"))
        info = await store.save_snapshot(name, clock.now().timestamp())
        return JSONResponse(snapshot_json(info), status_code=201)

    def missing(name: str) -> Response:
        return JSONResponse({"error": f"no snapshot named {name!r}", "field": "name"}, 404)

    async def snapshot_read(request: Request) -> Response:
        name = _snapshot_name(request.path_params["name"])
        for info in await store.snapshots():
            if info.name == name:
                return JSONResponse(snapshot_json(info))
        return missing(name)

    async def snapshot_restore(request: Request) -> Response:
        name = _snapshot_name(request.path_params["name"])
        try:
            info = await store.restore_snapshot(name)
        except SnapshotError as error:
            return JSONResponse({"error": str(error), "field": "name"}, 409)
        if info is None:
            return missing(name)
        return JSONResponse(snapshot_json(info))

    async def snapshot_delete(request: Request) -> Response:
        name = _snapshot_name(request.path_params["name"])
        if not await store.delete_snapshot(name):
            return missing(name)
        return Response(status_code=204)

    routes = [
        Route("/_marketmeter/journal", journal_read, methods=["GET"]),
        Route("/_marketmeter/journal", journal_clear, methods=["DELETE"]),
        Route("/_marketmeter/faults/quota", quota_read, methods=["GET"]),
        Route("/_marketmeter/faults/quota", quota_set, methods=["PUT"]),
        Route("/_marketmeter/reset", reset, methods=["POST"]),
        Route("/_marketmeter/snapshots", snapshot_list, methods=["GET"]),
        Route("/_marketmeter/snapshots", snapshot_save, methods=["POST"]),
        Route("/_marketmeter/snapshots/{name}", snapshot_read, methods=["GET"]),
        Route("/_marketmeter/snapshots/{name}", snapshot_delete, methods=["DELETE"]),
        Route("/_marketmeter/snapshots/{name}/restore", snapshot_restore, methods=["POST"]),
    ]
    for prefix in ("/_marketmeter/faults", "/_localstack/chaos/faults"):
        routes += [
            Route(prefix, fault_list, methods=["GET"]),
            Route(prefix, fault_replace, methods=["POST"]),
            Route(prefix, fault_add, methods=["PATCH"]),
            Route(prefix, fault_remove, methods=["DELETE"]),
        ]
    routes += [
        Route("/_marketmeter/faults/{id}", fault_remove_one, methods=["DELETE"]),
        Route("/_marketmeter/faults/effects", effects_read, methods=["GET"]),
        Route("/_marketmeter/faults/effects", effects_set, methods=["POST", "PUT"]),
        Route("/_localstack/chaos/effects", effects_read, methods=["GET"]),
        Route("/_localstack/chaos/effects", effects_set, methods=["POST", "PUT"]),
    ]
    return routes
