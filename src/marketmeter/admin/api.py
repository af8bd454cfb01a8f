"""The JSON admin API under ``/_marketmeter/``: health and the billed-usage view.

Errors are ``{"error": "<message>", "field": "<name>"}`` with status 400; nothing here ever
answers with a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter import __version__
from marketmeter.admin.usage import AdminInputError, record_json, usage_query
from marketmeter.store.base import Store

__all__ = ["admin_app"]


def admin_app(store: Store) -> Starlette:
    async def health(request: Request) -> Response:
        snapshot = await store.catalog_snapshot()
        return JSONResponse(
            {"status": "ok", "version": __version__, "catalogVersion": snapshot.version}
        )

    async def usage(request: Request) -> Response:
        try:
            query = usage_query(dict(request.query_params))
        except AdminInputError as error:
            return JSONResponse({"error": error.message, "field": error.field}, status_code=400)
        records = await store.usage(query)
        return JSONResponse({"records": [record_json(r) for r in records]})

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
        ],
        exception_handlers={404: not_found, 405: bad_method},
        lifespan=lifespan,
    )
