"""The JSON admin API under ``/_marketmeter/``.

- ``GET /health``; ``GET /usage`` (billed records);
- ``GET|PUT|DELETE /clock``, ``POST /clock/advance`` (the service clock);
- ``GET|POST /tokens`` (SaaS registration tokens);
- ``GET /keys``, ``GET /keys/{version}`` (PEM), ``POST /keys/rotate`` (RegisterUsage keys);
- the catalog: sellers, products, buyers and their access keys (``admin.catalog_api``);
- ``GET /openapi.json``: the OpenAPI 3.1 document of all of the above (``admin.openapi``);
- the test bench's faults, quotas, journal, reset and snapshots (``admin.bench_api``), which
  the document leaves out.

Errors are ``{"error": "<message>", "field": "<name>"}`` with a 4xx status; nothing here ever
answers with a traceback. With an admin token, every route but health and the document
requires it (``admin.admin_token``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter import __version__
from marketmeter.admin.admin_token import AdminTokenGuard
from marketmeter.admin.api_models import API_SCHEMA_MODELS
from marketmeter.admin.bench_api import bench_routes
from marketmeter.admin.catalog_api import (
    CATALOG_SCHEMA_MODELS,
    AccessKeyFactory,
    catalog_routes,
    random_access_key,
)
from marketmeter.admin.clock_control import advance_clock, clock_json, set_clock
from marketmeter.admin.inputs import NO_BODY, json_body, parse_count
from marketmeter.admin.openapi import openapi_document
from marketmeter.admin.registration import key_json, mint_request, token_json
from marketmeter.admin.text_guard import NulTextGuard
from marketmeter.admin.usage import record_json, usage_query
from marketmeter.metering.clock import Clock, ClockState, ServiceClock
from marketmeter.metering.registration_tokens import TokenGenerator, mint_token
from marketmeter.metering.signing_keys import KeyRing
from marketmeter.refusal import Refusal
from marketmeter.store.base import Store, TokenQuery
from marketmeter.testbench.controls import BenchControls

__all__ = ["ADMIN_SCHEMA_MODELS", "PEM_CONTENT_TYPE", "admin_app"]

PEM_CONTENT_TYPE = "application/x-pem-file"
ADMIN_SCHEMA_MODELS = (*API_SCHEMA_MODELS, *CATALOG_SCHEMA_MODELS)


def _problem(field: str | None, message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message, "field": field}, status_code=status)


async def _json_body(request: Request) -> Any:
    body = await json_body(request)
    return {} if body is NO_BODY else body


def admin_app(
    store: Store,
    clock: Clock,
    keys: KeyRing,
    tokens: TokenGenerator,
    token_ttl: timedelta,
    bench: BenchControls,
    *,
    admin_token: str | None = None,
    access_keys: AccessKeyFactory = random_access_key,
    extra_routes: Sequence[Route] = (),
    extra_schema_models: Sequence[type[BaseModel]] = (),
) -> Starlette:
    """The admin API over the service's parts. With ``admin_token`` every route but health
    and the OpenAPI document requires ``Authorization: Bearer <admin_token>``;
    ``access_keys`` makes the key pairs of ``POST .../keys`` without a body."""

    async def health(request: Request) -> Response:
        """The server is up.
        ---
        summary: Health and the catalog version served
        tags: [server]
        security: []
        responses:
          "200":
            description: Up
            content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}
        """
        snapshot = await store.catalog_snapshot()
        return JSONResponse(
            {"status": "ok", "version": __version__, "catalogVersion": snapshot.version}
        )

    async def usage(request: Request) -> Response:
        """Billed records.
        ---
        summary: Billed records, oldest usage first
        tags: [usage]
        parameters:
          - {name: product, in: query, schema: {type: string}, description: A product code}
          - name: customer
            in: query
            schema: {type: string}
            description: An AWS account id or a legacy CustomerIdentifier
          - {name: dimension, in: query, schema: {type: string}}
          - name: from
            in: query
            schema: {type: string}
            description: Usage at or after (ISO 8601 or epoch seconds)
          - {name: to, in: query, schema: {type: string}, description: Usage before}
          - name: limit
            in: query
            schema: {type: integer, minimum: 1, maximum: 100000, default: 1000}
        responses:
          "200":
            description: The records
            content: {application/json: {schema: {$ref: "#/components/schemas/UsageRecords"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        query = usage_query(dict(request.query_params))
        records = await store.usage(query)
        return JSONResponse({"records": [record_json(r) for r in records]})

    # --- clock -----------------------------------------------------------------------------

    def controllable() -> ServiceClock:
        if not isinstance(clock, ServiceClock):
            raise Refusal("clock", "this server's clock cannot be moved")
        return clock

    async def clock_state(request: Request) -> Response:
        """The service clock.
        ---
        summary: Read the service clock
        tags: [clock]
        responses:
          "200":
            description: The clock
            content: {application/json: {schema: {$ref: "#/components/schemas/ClockState"}}}
        """
        if isinstance(clock, ServiceClock):
            return JSONResponse(clock_json(clock.state()))
        return JSONResponse(clock_json(ClockState(clock.now(), "frozen", timedelta(0))))

    async def clock_set(request: Request) -> Response:
        """Set, offset or freeze the service clock.
        ---
        summary: Set the clock to a time, run it at an offset, or freeze it
        tags: [clock]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/ClockChange"}}}
        responses:
          "200":
            description: The clock as it is now
            content: {application/json: {schema: {$ref: "#/components/schemas/ClockState"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        service_clock = controllable()
        set_clock(service_clock, await _json_body(request))
        return JSONResponse(clock_json(service_clock.state()))

    async def clock_advance(request: Request) -> Response:
        """Move the service clock.
        ---
        summary: Move the clock by some seconds (negative moves it back)
        tags: [clock]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/ClockAdvance"}}}
        responses:
          "200":
            description: The clock as it is now
            content: {application/json: {schema: {$ref: "#/components/schemas/ClockState"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        service_clock = controllable()
        body = await _json_body(request)
        for name in body if isinstance(body, dict) else ():
            if name != "seconds":
                raise Refusal(name, "unknown field; known: seconds")
        advance_clock(service_clock, body)
        return JSONResponse(clock_json(service_clock.state()))

    async def clock_reset(request: Request) -> Response:
        """Back to wall time.
        ---
        summary: Put the clock back to wall time
        tags: [clock]
        responses:
          "200":
            description: The clock as it is now
            content: {application/json: {schema: {$ref: "#/components/schemas/ClockState"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        service_clock = controllable()
        service_clock.reset()
        return JSONResponse(clock_json(service_clock.state()))

    # --- registration tokens ---------------------------------------------------------------

    async def token_list(request: Request) -> Response:
        """Registration tokens.
        ---
        summary: Issued registration tokens, newest first
        tags: [tokens]
        parameters:
          - {name: product, in: query, schema: {type: string}}
          - {name: buyer, in: query, schema: {type: string}, description: A buyer account id}
          - name: limit
            in: query
            schema: {type: integer, minimum: 1, maximum: 10000, default: 100}
        responses:
          "200":
            description: The tokens
            content: {application/json: {schema: {$ref: "#/components/schemas/TokenList"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        params = dict(request.query_params)
        known = {"product", "buyer", "limit"}
        for name in params:
            if name not in known:
                raise Refusal(name, f"unknown filter; known: {', '.join(sorted(known))}")
        limit = parse_count("limit", params.get("limit", "100"), 1, 10_000)
        query = TokenQuery(params.get("product"), params.get("buyer"), limit)
        now = clock.now().timestamp()
        found = await store.registration_tokens(query)
        return JSONResponse({"tokens": [token_json(t, token_ttl, now) for t in found]})

    async def token_mint(request: Request) -> Response:
        """Mint a registration token.
        ---
        summary: Mint a registration token for a buyer's agreement, for ResolveCustomer
        tags: [tokens]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/MintToken"}}}
        responses:
          "201":
            description: The token
            content: {application/json: {schema: {$ref: "#/components/schemas/TokenInfo"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        product, buyer, license_arn, free_trial = mint_request(await _json_body(request))
        catalog = await store.catalog_snapshot()
        now = clock.now().timestamp()
        try:
            token = mint_token(catalog, product, buyer, now, tokens, license_arn, free_trial)
        except Refusal as error:
            field = {"product": "productCode", "buyer": "buyerAccountId"}.get(
                error.field or "", error.field
            )
            return _problem(field, error.message)
        await store.issue_tokens([token])
        return JSONResponse(token_json(token, token_ttl, now), status_code=201)

    # --- signing keys ----------------------------------------------------------------------

    async def key_list(request: Request) -> Response:
        """RegisterUsage public keys.
        ---
        summary: Every RegisterUsage public key version
        tags: [keys]
        responses:
          "200":
            description: The keys
            content: {application/json: {schema: {$ref: "#/components/schemas/KeyList"}}}
        """
        return JSONResponse({"keys": [key_json(k) for k in await keys.keys()]})

    async def key_pem(request: Request) -> Response:
        """One public key as PEM.
        ---
        summary: A RegisterUsage public key version as PEM
        tags: [keys]
        parameters:
          - {name: version, in: path, required: true, schema: {type: integer, minimum: 0}}
        responses:
          "200":
            description: The public key
            content: {application/x-pem-file: {schema: {type: string}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        text = request.path_params["version"]
        readable = text.isascii() and text.isdigit() and len(text) < 10
        key = await keys.key(int(text)) if readable else None
        if key is None:
            return _problem("version", f"no public key version {text}", 404)
        return Response(key.public_key_pem, media_type=PEM_CONTENT_TYPE)

    async def key_rotate(request: Request) -> Response:
        """Rotate the RegisterUsage key.
        ---
        summary: Make a new RegisterUsage key version (the previous one retires)
        tags: [keys]
        responses:
          "201":
            description: The new key
            content: {application/json: {schema: {$ref: "#/components/schemas/SigningKeyInfo"}}}
        """
        return JSONResponse(key_json(await keys.rotate()), status_code=201)

    # --- errors and lifespan ---------------------------------------------------------------

    async def bad_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        return _problem(exc.field, exc.message, exc.status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"no such admin resource: {request.url.path}"}, 404)

    async def bad_method(request: Request, exc: Exception) -> Response:
        path = request.url.path
        matching = [r for r in routes if isinstance(r, Route) and r.path_regex.fullmatch(path)]
        literal = [r for r in matching if r.path == path]  # /keys/rotate, not /keys/{version}
        allowed = sorted({method for r in literal or matching for method in r.methods or ()})
        return JSONResponse(
            {"error": f"{request.method} is not allowed here"},
            405,
            {"Allow": ", ".join(allowed)},
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    async def openapi(request: Request) -> Response:
        """This document.
        ---
        summary: The admin API's OpenAPI 3.1 document
        tags: [server]
        security: []
        responses:
          "200":
            description: The document
            content: {application/json: {schema: {type: object}}}
        """
        return JSONResponse(document)

    documented = [
        Route("/_marketmeter/health", health, methods=["GET"]),
        Route("/_marketmeter/openapi.json", openapi, methods=["GET"]),
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
        *catalog_routes(store, access_keys),
        *extra_routes,  # documented like the rest (e.g. admin.lifecycle_api's)
    ]
    document = openapi_document(documented, (*ADMIN_SCHEMA_MODELS, *extra_schema_models))
    routes = [*documented, *bench_routes(store, clock, bench)]
    return Starlette(
        routes=routes,
        middleware=[Middleware(AdminTokenGuard, token=admin_token), Middleware(NulTextGuard)],
        exception_handlers={
            Refusal: bad_input,
            404: not_found,
            405: bad_method,
        },
        lifespan=lifespan,
    )
