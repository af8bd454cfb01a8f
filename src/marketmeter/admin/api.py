"""The JSON admin API: the HTTP front end of the ``Operator``, mounted once under
``/_marketmeter/`` (and LocalStack's chaos routes under ``/_localstack/chaos/``).

- ``GET /health``; ``GET /usage`` (billed records); ``GET /usage/summary`` (summed);
  ``GET /usage.csv``, ``GET /usage.jsonl`` (records or totals per window, streamed:
  ``operator.usage_export``);
- ``GET|PUT|DELETE /clock``, ``POST /clock/advance`` (the service clock);
- ``GET|POST /tokens`` (SaaS registration tokens);
- ``GET /keys``, ``GET /keys/{version}`` (PEM), ``POST /keys/rotate`` (RegisterUsage keys);
- the catalog: a whole document, sellers, products, buyers and their access keys
  (``admin.catalog_api``); agreements, their lifecycle and the event log
  (``admin.lifecycle_api``); the test bench's faults, quotas, journal, reset and snapshots
  (``admin.bench_api``);
- ``GET /openapi.json``: the OpenAPI 3.1 document of every route above (``admin.openapi``).

Handlers decide nothing: they read the request, call the operator and answer its value.
Errors are ``{"error": "<message>", "field": "<name>"}`` with a 4xx status (a ``Refusal``'s);
nothing here ever answers with a traceback. A foreign ``Host`` or ``Origin`` and a write whose
body is not JSON are refused first (``admin.browser_guard``); with an admin token, every route
but health and the document requires it (``admin.admin_token``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from marketmeter.admin.admin_token import AdminTokenGuard
from marketmeter.admin.api_models import API_SCHEMA_MODELS
from marketmeter.admin.bench_api import BENCH_SCHEMA_MODELS, bench_endpoints, chaos_endpoints
from marketmeter.admin.browser_guard import BrowserGuard, HostPolicy
from marketmeter.admin.catalog_api import CATALOG_SCHEMA_MODELS, catalog_endpoints
from marketmeter.admin.deliveries_api import DELIVERY_SCHEMA_MODELS, delivery_endpoints
from marketmeter.admin.lifecycle_api import LIFECYCLE_SCHEMA_MODELS, lifecycle_endpoints
from marketmeter.admin.openapi import openapi_document
from marketmeter.admin.routing import Endpoint, answer, body, query, routes
from marketmeter.admin.text_guard import NulTextGuard
from marketmeter.operator.service import Operator
from marketmeter.operator.usage_export import MEDIA_TYPES, UsageExport
from marketmeter.refusal import Refusal

__all__ = [
    "ADMIN_PREFIX",
    "ADMIN_SCHEMA_MODELS",
    "CHAOS_PREFIX",
    "EXPORT_ROWS_HEADER",
    "METRICS_PATH",
    "PEM_CONTENT_TYPE",
    "admin_app",
]

ADMIN_PREFIX = "/_marketmeter"
CHAOS_PREFIX = "/_localstack/chaos"
PEM_CONTENT_TYPE = "application/x-pem-file"
METRICS_PATH = "/metrics"  # Prometheus's conventional path, beside the mounts
# How many records (or totals) an export holds, sent before its body (a client's progress bar).
EXPORT_ROWS_HEADER = "X-Marketmeter-Export-Rows"
ADMIN_SCHEMA_MODELS = (
    *API_SCHEMA_MODELS,
    *CATALOG_SCHEMA_MODELS,
    *LIFECYCLE_SCHEMA_MODELS,
    *DELIVERY_SCHEMA_MODELS,
    *BENCH_SCHEMA_MODELS,
)


def _server_endpoints(operator: Operator) -> list[Endpoint]:
    """Health, usage, the clock, registration tokens and signing keys."""

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
        return answer(await operator.health())

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
        return answer(await operator.usage.records(query(request)))

    async def usage_summary(request: Request) -> Response:
        """Billed usage summed.
        ---
        summary: Billed usage summed per window and group, with a total per dimension
        tags: [usage]
        parameters:
          - name: groupBy
            in: query
            schema: {type: string}
            description: >-
              Keys besides the dimension (always one), comma-separated: product, customer,
              dimension
          - name: window
            in: query
            schema: {type: string, enum: [hour, day, month], default: day}
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
            schema: {type: integer, minimum: 1, maximum: 100000, default: 10000}
            description: Rows at most (truncated says when there were more)
        responses:
          "200":
            description: The summary
            content: {application/json: {schema: {$ref: "#/components/schemas/UsageSummary"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        return answer(await operator.summaries.summary(query(request)))

    async def usage_export(request: Request) -> Response:
        """Billed usage as CSV or JSON Lines, streamed.
        ---
        summary: Billed records, or totals per window, as CSV or JSON Lines (streamed)
        description: >-
          Records in the order they were billed, read from the ledger page by page; with
          window, quantities summed per window and key instead. The X-Marketmeter-Export-Rows
          header says how many records (or totals) follow.
        tags: [usage]
        parameters:
          - name: format
            in: path
            required: true
            schema: {type: string, enum: [csv, jsonl]}
            description: usage.csv or usage.jsonl
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
          - name: window
            in: query
            schema: {type: string, enum: [hour, day, month]}
            description: Totals per window (UTC) instead of records
          - name: group
            in: query
            schema: {type: string}
            description: >-
              Keys of the totals, comma-separated among product, customer, dimension
              (product and dimension are always keys)
        responses:
          "200":
            description: CSV (a header line, then a line per record or total) or JSON Lines
            content:
              text/csv: {schema: {type: string}}
              application/jsonl: {schema: {type: string}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        filters = {**query(request), "format": request.path_params["format"]}
        found = operator.exports.open(filters)
        size = await found.size()
        fmt = found.request.format
        return StreamingResponse(
            _export_body(found),
            media_type=MEDIA_TYPES[fmt],
            headers={
                "Content-Disposition": f'attachment; filename="usage.{fmt}"',
                EXPORT_ROWS_HEADER: str(size),
            },
        )

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
        return answer(operator.clock.state())

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
        return answer(operator.clock.set(await body(request, {})))

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
        return answer(operator.clock.advance(await body(request, {})))

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
        return answer(operator.clock.reset())

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
        return answer(await operator.tokens.list(query(request)))

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
        return answer(await operator.tokens.mint(await body(request, {})), 201)

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
        return answer(await operator.keys.list())

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
        pem = await operator.keys.public_pem(request.path_params["version"])
        return Response(pem, media_type=PEM_CONTENT_TYPE)

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
        return answer(await operator.keys.rotate(), 201)

    return [
        Endpoint("/health", "GET", health),
        Endpoint("/usage", "GET", usage),
        Endpoint("/usage/summary", "GET", usage_summary),
        Endpoint("/usage.{format}", "GET", usage_export),
        Endpoint("/clock", "GET", clock_state),
        Endpoint("/clock", "PUT", clock_set),
        Endpoint("/clock", "DELETE", clock_reset),
        Endpoint("/clock/advance", "POST", clock_advance),
        Endpoint("/tokens", "GET", token_list),
        Endpoint("/tokens", "POST", token_mint),
        Endpoint("/keys", "GET", key_list),
        Endpoint("/keys/rotate", "POST", key_rotate),
        Endpoint("/keys/{version}", "GET", key_pem),
    ]


def admin_app(
    operator: Operator,
    *,
    admin_token: str | None = None,
    hosts: HostPolicy | None = None,
    metrics: Callable[[], Awaitable[tuple[bytes, str]]] | None = None,
) -> Starlette:
    """The admin API over ``operator``. With ``admin_token`` every route but health and the
    OpenAPI document requires ``Authorization: Bearer <admin_token>``. What a browser can send
    cross-site is refused (``admin.browser_guard``); ``hosts`` are the names the server answers
    to (default: any ``Host``). With ``metrics`` (the text and its content type) it also answers
    ``GET /metrics``, behind the same guards."""

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
        if not made:
            made.append(openapi_document(mounted, ADMIN_SCHEMA_MODELS))
        return JSONResponse(made[0])

    # The document is made on the first ask, not when the app is built: parsing the routes'
    # YAML docstrings was about a seventh of the CPU time of a server's start.
    made: list[dict[str, Any]] = []

    server = _server_endpoints(operator)
    admin_endpoints = [
        server[0],
        Endpoint("/openapi.json", "GET", openapi),
        *server[1:],
        *catalog_endpoints(operator.catalog),
        *lifecycle_endpoints(operator.lifecycle),
        *delivery_endpoints(operator.deliveries),
        *bench_endpoints(operator.bench),
    ]
    mounts = {
        ADMIN_PREFIX: routes(admin_endpoints),
        CHAOS_PREFIX: routes(chaos_endpoints(operator.bench)),
    }
    mounted = [Mount(prefix, routes=table) for prefix, table in mounts.items()]
    top: list[Route | Mount] = list(mounted)
    if metrics is not None:
        scrape = metrics

        async def metrics_text(request: Request) -> Response:
            text, content_type = await scrape()
            return Response(text, headers={"Content-Type": content_type})

        top.append(Route(METRICS_PATH, metrics_text, methods=["GET"]))

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        return JSONResponse({"error": exc.message, "field": exc.field}, exc.status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"no such admin resource: {request.url.path}"}, 404)

    async def bad_method(request: Request, exc: Exception) -> Response:
        path = request.url.path
        allowed = sorted(_allowed_methods(mounts, path))
        return JSONResponse(
            {"error": f"{request.method} is not allowed here"},
            405,
            {"Allow": ", ".join(allowed)},
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await operator.store.close()

    return Starlette(
        routes=top,
        middleware=[
            Middleware(BrowserGuard, hosts=hosts or HostPolicy.any()),
            Middleware(AdminTokenGuard, token=admin_token),
            Middleware(NulTextGuard),
        ],
        exception_handlers={Refusal: refused, 404: not_found, 405: bad_method},
        lifespan=lifespan,
    )


async def _export_body(export: UsageExport) -> AsyncIterator[bytes]:
    async for chunk in export.chunks():
        yield chunk.text.encode()


def _allowed_methods(mounts: dict[str, list[Route]], path: str) -> set[str]:
    """The methods of the routes that match ``path``: a literal path's own
    (``/keys/rotate``), else those of the patterns it matches (``/keys/{version}``)."""
    for prefix, table in mounts.items():
        if path.startswith(prefix + "/"):
            inner = path.removeprefix(prefix)
            matching = [r for r in table if r.path_regex.fullmatch(inner)]
            literal = [r for r in matching if r.path == inner]
            return {method for r in literal or matching for method in r.methods or ()}
    return set()
