"""The admin API's OpenAPI document (``admin.openapi``) and the admin token
(``admin.admin_token``), in process.

The document must list every admin route of the app, the test bench's too, so a route added
without its YAML docstring fails here; the collector fills in operation ids, path parameters
and the token's 401/403 answers. With a token, every route but health and the document needs
``Authorization: Bearer <token>``, the LocalStack chaos aliases too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from marketmeter.admin.admin_token import MISSING_TOKEN, WRONG_TOKEN
from marketmeter.admin.openapi import openapi_document
from marketmeter.app import MarketmeterApp
from marketmeter.config import Settings
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.ids import SequentialIds
from marketmeter.store.base import OperatorStore
from tests.admin.test_admin_api import WALL, pooled_key_pairs

TOKEN = "s3cret-admin-token"


def build(store: OperatorStore, admin_token: str | None = None) -> MarketmeterApp:
    return MarketmeterApp(
        Settings(admin_token=admin_token),
        store,
        FixedClock(WALL),
        SequentialIds(),
        SequentialIds(start=1000),
        key_pairs=pooled_key_pairs(),
    )


def call(app: Any, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8686"
        ) as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(send())


@pytest.fixture
def ledger(tmp_path: Any, open_test_store: Any) -> OperatorStore:
    store: OperatorStore = open_test_store(str(tmp_path / "ledger.db"))
    return store


def test_the_document_lists_every_admin_route(ledger: OperatorStore) -> None:
    app = build(ledger)
    document = call(app, "GET", "/_marketmeter/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {
        (method, mount.path + route.path)
        for mount in app.admin.routes
        if isinstance(mount, Mount)
        for route in mount.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    mounts = [m.path for m in app.admin.routes if isinstance(m, Mount)]
    assert mounts == ["/_marketmeter", "/_localstack/chaos"]
    # beside the mounts, only Prometheus's GET /metrics (text, not the JSON admin API)
    others = [r.path for r in app.admin.routes if isinstance(r, Route)]
    assert others == ["/metrics"]
    assert served == documented
    assert {
        ("POST", "/_marketmeter/reset"),
        ("PATCH", "/_marketmeter/faults"),
        ("DELETE", "/_marketmeter/faults/{id}"),
        ("PUT", "/_marketmeter/faults/effects"),
        ("POST", "/_marketmeter/snapshots/{name}/restore"),
        ("GET", "/_marketmeter/journal"),
        ("DELETE", "/_localstack/chaos/faults"),
        ("POST", "/_marketmeter/catalog"),
    } <= documented
    assert {
        ("GET", "/_marketmeter/sellers"),
        ("DELETE", "/_marketmeter/sellers/{accountId}/keys/{accessKeyId}"),
        ("PUT", "/_marketmeter/products/{productCode}"),
        ("POST", "/_marketmeter/buyers/{accountId}/keys"),
        ("GET", "/_marketmeter/keys/{version}"),
        ("GET", "/_marketmeter/openapi.json"),
    } <= documented


def test_the_document_is_openapi_3_1_with_components(ledger: OperatorStore) -> None:
    document = call(build(ledger), "GET", "/_marketmeter/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "marketmeter admin API"
    assert document["components"]["securitySchemes"] == {
        "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The server's admin token "
            "(env MARKETMETER_ADMIN_TOKEN or serve --admin-token-file).",
        }
    }
    assert document["security"] == [{"adminToken": []}, {}]
    schemas = document["components"]["schemas"]
    assert schemas["AdminError"] == {
        "description": "An admin API error: what is wrong, and the field (or parameter) at fault.",
        "properties": {
            "error": {"title": "Error", "type": "string"},
            "field": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "default": None,
                "title": "Field",
            },
        },
        "required": ["error"],
        "title": "AdminError",
        "type": "object",
    }
    # the catalog file's entries, as the loader has them
    assert schemas["SellerEntry"]["additionalProperties"] is False
    assert schemas["SellerEntry"]["properties"]["access_keys"]["items"] == {
        "$ref": "#/components/schemas/AccessKeyEntry"
    }
    assert "secret_access_key" not in str(schemas["SellerView"])
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    read_seller = document["paths"]["/_marketmeter/sellers/{accountId}"]["get"]
    assert read_seller["operationId"] == "read_seller"
    assert read_seller["parameters"] == [
        {"name": "accountId", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert sorted(read_seller["responses"]) == ["200", "401", "403", "404"]
    health = document["paths"]["/_marketmeter/health"]["get"]
    assert health["security"] == []
    assert sorted(health["responses"]) == ["200"]


class Thing(BaseModel):
    name: str


def test_the_collector() -> None:
    async def documented(request: Request) -> Response:
        """Prose for people.
        ---
        summary: A thing
        responses:
          "200":
            description: The thing
            content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}
        """
        return JSONResponse({})

    async def public(request: Request) -> Response:
        """Open to all.
        ---
        operationId: openToAll
        security: []
        responses: {"204": {description: Nothing}}
        """
        return Response(status_code=204)

    async def undocumented(request: Request) -> Response:
        """No YAML here."""
        return Response()

    document = openapi_document(
        [
            Route("/things/{name}", documented, methods=["GET"]),
            Route("/open", public, methods=["POST"]),
            Route("/hidden", undocumented, methods=["GET"]),
        ],
        [Thing],
    )
    assert sorted(document["paths"]) == ["/open", "/things/{name}"]
    thing = document["paths"]["/things/{name}"]["get"]
    assert thing["operationId"] == "documented"
    assert thing["parameters"] == [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert thing["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AdminError"
    }
    assert document["paths"]["/open"]["post"] == {
        "operationId": "openToAll",
        "security": [],
        "responses": {"204": {"description": "Nothing"}},
    }
    assert sorted(document["components"]["schemas"]) == ["AdminError", "Thing"]


# --- the admin token -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_marketmeter/health"),
        ("HEAD", "/_marketmeter/health"),
        ("GET", "/_marketmeter/openapi.json"),
    ],
)
def test_health_and_the_document_need_no_token(
    ledger: OperatorStore, method: str, path: str
) -> None:
    assert call(build(ledger, TOKEN), method, path).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_marketmeter/sellers"),
        ("DELETE", "/_marketmeter/sellers/111122223333"),
        ("GET", "/_marketmeter/clock"),
        ("POST", "/_marketmeter/keys/rotate"),
        ("GET", "/_marketmeter/faults"),
        ("GET", "/_localstack/chaos/faults"),
        ("POST", "/_marketmeter/reset"),
        ("GET", "/_marketmeter/no-such-route"),
        ("POST", "/_marketmeter/health"),
    ],
)
def test_every_other_route_needs_the_token(ledger: OperatorStore, method: str, path: str) -> None:
    app = build(ledger, TOKEN)
    missing = call(app, method, path)
    assert missing.status_code == 401
    assert missing.json() == {"error": MISSING_TOKEN, "field": "Authorization"}
    assert missing.headers["www-authenticate"] == 'Bearer realm="marketmeter admin"'
    for wrong in ("Bearer nope", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer"):
        refused = call(app, method, path, {"Authorization": wrong})
        expected = 401 if not wrong.startswith("Bearer ") else 403
        assert refused.status_code == expected, wrong
        message = MISSING_TOKEN if expected == 401 else WRONG_TOKEN
        assert refused.json() == {"error": message, "field": "Authorization"}
        assert TOKEN not in refused.text


def test_the_right_token_opens_every_route(ledger: OperatorStore) -> None:
    app = build(ledger, TOKEN)
    for scheme in ("Bearer", "bearer"):
        answer = call(app, "GET", "/_marketmeter/sellers", {"Authorization": f"{scheme} {TOKEN}"})
        assert answer.status_code == 200
        assert answer.json() == {"sellers": []}
    assert (
        call(app, "GET", "/_localstack/chaos/faults", {"Authorization": f"Bearer {TOKEN}"}).json()
        == []
    )


def test_without_a_token_nothing_is_asked(ledger: OperatorStore) -> None:
    assert call(build(ledger), "GET", "/_marketmeter/sellers").status_code == 200
