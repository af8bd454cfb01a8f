"""The JSON admin API under ``/_marketmeter/``.

- ``GET /health``; ``GET /usage`` (billed records);
- ``GET|PUT|DELETE /clock``, ``POST /clock/advance`` (the service clock);
- ``GET|POST /tokens`` (SaaS registration tokens);
- ``GET /keys``, ``GET /keys/{version}`` (PEM), ``POST /keys/rotate`` (RegisterUsage keys);
- the test bench's faults, quotas, journal, reset and snapshots (``admin.bench_api``).

Errors are ``{"error": "<message>", "field": "<name>"}`` with a 4xx status; nothing here ever
answers with a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter import __version__
from marketmeter.admin.bench_api import bench_routes
from marketmeter.admin.clock_control import advance_clock, clock_json, set_clock
from marketmeter.admin.inputs import AdminInputError, parse_count
from marketmeter.admin.registration import key_json, mint_request, token_json
from marketmeter.admin.usage import record_json, usage_query
from marketmeter.metering.clock import Clock, ClockState, ServiceClock
from marketmeter.metering.registration_tokens import TokenGenerator, TokenRequestError, mint_token
from marketmeter.metering.signing_keys import KeyRing
from marketmeter.store.base import Store, TokenQuery
from marketmeter.testbench.controls import BenchControls

__all__ = ["PEM_CONTENT_TYPE", "admin_app"]

PEM_CONTENT_TYPE = "application/x-pem-file"


def _problem(field: str, message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message, "field": field}, status_code=status)


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AdminInputError("body", "is not valid JSON") from None


def admin_app(
    store: Store,
    clock: Clock,
    keys: KeyRing,
    tokens: TokenGenerator,
    token_ttl: timedelta,
    bench: BenchControls,
) -> Starlette:
    async def health(request: Request) -> Response:
        snapshot = await store.catalog_snapshot()
        return JSONResponse(
            {"status": "ok", "version": __version__, "catalogVersion": snapshot.version}
        )

    async def usage(request: Request) -> Response:
        query = usage_query(dict(request.query_params))
        records = await store.usage(query)
        return JSONResponse({"records": [record_json(r) for r in records]})

    # --- clock -----------------------------------------------------------------------------

    def controllable() -> ServiceClock:
        if not isinstance(clock, ServiceClock):
            raise AdminInputError("clock", "this server's clock cannot be moved")
        return clock

    async def clock_state(request: Request) -> Response:
        if isinstance(clock, ServiceClock):
            return JSONResponse(clock_json(clock.state()))
        return JSONResponse(clock_json(ClockState(clock.now(), "frozen", timedelta(0))))

    async def clock_set(request: Request) -> Response:
        service_clock = controllable()
        set_clock(service_clock, await _json_body(request))
        return JSONResponse(clock_json(service_clock.state()))

    async def clock_advance(request: Request) -> Response:
        service_clock = controllable()
        advance_clock(service_clock, await _json_body(request))
        return JSONResponse(clock_json(service_clock.state()))

    async def clock_reset(request: Request) -> Response:
        service_clock = controllable()
        service_clock.reset()
        return JSONResponse(clock_json(service_clock.state()))

    # --- registration tokens ---------------------------------------------------------------

    async def token_list(request: Request) -> Response:
        params = dict(request.query_params)
        known = {"product", "buyer", "limit"}
        for name in params:
            if name not in known:
                raise AdminInputError(name, f"unknown filter; known: {', '.join(sorted(known))}")
        limit = parse_count("limit", params.get("limit", "100"), 1, 10_000)
        query = TokenQuery(params.get("product"), params.get("buyer"), limit)
        now = clock.now().timestamp()
        found = await store.registration_tokens(query)
        return JSONResponse({"tokens": [token_json(t, token_ttl, now) for t in found]})

    async def token_mint(request: Request) -> Response:
        product, buyer, license_arn, free_trial = mint_request(await _json_body(request))
        catalog = await store.catalog_snapshot()
        now = clock.now().timestamp()
        try:
            token = mint_token(catalog, product, buyer, now, tokens, license_arn, free_trial)
        except TokenRequestError as error:
            field = {"product": "productCode", "buyer": "buyerAccountId"}.get(
                error.field, error.field
            )
            return _problem(field, error.message)
        await store.issue_tokens([token])
        return JSONResponse(token_json(token, token_ttl, now), status_code=201)

    # --- signing keys ----------------------------------------------------------------------

    async def key_list(request: Request) -> Response:
        return JSONResponse({"keys": [key_json(k) for k in await keys.keys()]})

    async def key_pem(request: Request) -> Response:
        text = request.path_params["version"]
        readable = text.isascii() and text.isdigit() and len(text) < 10
        key = await keys.key(int(text)) if readable else None
        if key is None:
            return _problem("version", f"no public key version {text}", 404)
        return Response(key.public_key_pem, media_type=PEM_CONTENT_TYPE)

    async def key_rotate(request: Request) -> Response:
        return JSONResponse(key_json(await keys.rotate()), status_code=201)

    # --- errors and lifespan ---------------------------------------------------------------

    async def bad_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AdminInputError)
        return _problem(exc.field, exc.message)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"no such admin resource: {request.url.path}"}, 404)

    async def bad_method(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"{request.method} is not allowed here"}, 405)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    return Starlette(
        routes=[
            Route("/_marketmeter/health", health, methods=["GET"]),
            Route("/_marketmeter/usage", usage, methods=["GET"]),
            Route("/_marketmeter/clock", clock_state, methods=["GET"]),
            Route("/_marketmeter/clock", clock_set, methods=["PUT"]),
            Route("/_marketmeter/clock", clock_reset, methods=["DELETE"]),
            Route("/_marketmeter/clock/advance", clock_advance, methods=["POST"]),
            Route("/_marketmeter/tokens", token_list, methods=["GET"]),
            Route("/_marketmeter/tokens", token_mint, methods=["POST"]),
            Route("/_marketmeter/keys", key_list, methods=["GET"]),
            Route("/_marketmeter/keys/rotate", key_rotate, methods=["POST"]),
            Route("/_marketmeter/keys/{version}", key_pem, methods=["GET"]),
            *bench_routes(store, clock, bench),
        ],
        exception_handlers={AdminInputError: bad_input, 404: not_found, 405: bad_method},
        lifespan=lifespan,
    )
