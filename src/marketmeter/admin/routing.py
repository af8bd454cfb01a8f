"""How every admin route is built: an ``Endpoint`` (path under the mount, method, handler), its
handler answering with ``answer`` and reading its body with ``body``.

Each route module (``admin.api``, ``admin.catalog_api``, ``admin.lifecycle_api``,
``admin.bench_api``) lists its endpoints as a table over the ``Operator``; ``admin.api`` mounts
them once under ``/_marketmeter`` (and the chaos routes under ``/_localstack/chaos``). A
handler's docstring after ``---`` is its OpenAPI operation (``admin.openapi``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter.admin.inputs import NO_BODY, json_body
from marketmeter.refusal import Refusal

__all__ = ["Endpoint", "Handler", "answer", "body", "entry", "no_content", "query", "routes"]

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One admin operation: ``method`` on ``path`` (relative to its mount)."""

    path: str
    method: str
    handler: Handler


def routes(endpoints: Iterable[Endpoint]) -> list[Route]:
    return [Route(e.path, e.handler, methods=[e.method]) for e in endpoints]


def answer(value: Any, status: int = 200) -> Response:
    """``value`` as the JSON answer."""
    return JSONResponse(value, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)


async def body(request: Request, absent: Any = None) -> Any:
    """The request's JSON body; ``absent`` when there is none (a JSON ``null`` is None)."""
    value = await json_body(request)
    return absent if value is NO_BODY else value


async def entry(request: Request, kind: str) -> dict[str, Any]:
    """The body, which must be a ``kind`` entry of the catalog (a JSON object)."""
    value = await json_body(request)
    if value is NO_BODY:
        raise Refusal("body", f"must be a {kind} entry (a JSON object)")
    if not isinstance(value, dict):
        raise Refusal("body", "must be a JSON object")
    return value


def query(request: Request) -> dict[str, str]:
    """The query string's parameters (the last value of a repeated one)."""
    params: Mapping[str, str] = request.query_params
    return dict(params)
