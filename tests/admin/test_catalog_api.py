"""The catalog routes of the admin API (``admin.catalog_api``) in process, on each backend
(SQLite, PostgreSQL) with ``tests/data/catalog.yaml``: every route's happy path and every
error (400 naming the field, 404, 409 naming what refers to an entry), nothing half-applied,
secrets shown only by the POST that created a key, and every write bumping the catalog
version."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from marketmeter.admin.api import admin_app
from marketmeter.catalog.loader import ProductEntry
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.registration_tokens import SequentialTokens
from marketmeter.metering.signing_keys import KeyRing
from marketmeter.operator.catalog import random_access_key
from marketmeter.operator.service import Operator
from marketmeter.store.base import OperatorStore
from tests.admin.test_admin_api import WALL, pooled_key_pairs

SELLER = "111122223333"
OTHER_SELLER = "999988887777"
NEW = "123412341234"
DAVE = "555566667777"  # a buyer without agreements
ALICE = "444455556666"


def sequential_keys() -> Callable[[], tuple[str, str]]:
    counter = itertools.count(1)

    def make() -> tuple[str, str]:
        n = next(counter)
        return f"AKIAGENERATED{n:07d}", f"generated-secret-{n}"

    return make


class Catalog:
    """The admin app in process over ``store``."""

    def __init__(self, store: OperatorStore) -> None:
        clock = FixedClock(WALL)
        self.store = store
        operator = Operator.build(
            store,
            clock,
            key_ring=KeyRing(store, clock, pooled_key_pairs()),
            tokens=SequentialTokens(),
            token_ttl=timedelta(hours=4),
            access_keys=sequential_keys(),
        )
        self.app = admin_app(operator)

    def call(self, method: str, path: str, body: Any = None, content: bytes | None = None) -> Any:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://mm") as client:
                return await client.request(
                    method, f"/_marketmeter{path}", json=body, content=content
                )

        return asyncio.run(send())

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == status, response.text
        if status == 204:
            assert response.content == b""
            return None
        assert response.headers["content-type"] == "application/json"
        return response.json()

    def refused(
        self, status: int, method: str, path: str, body: Any = None, content: bytes | None = None
    ) -> dict[str, Any]:
        response = self.call(method, path, body, content)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        found: dict[str, Any] = response.json()
        return found

    @property
    def version(self) -> int:
        return self.store.catalog_snapshot_now().version


@pytest.fixture
def catalog(store: OperatorStore) -> Catalog:
    return Catalog(store)


# --- sellers ----------------------------------------------------------------------------------


def test_list_sellers_shows_key_ids_never_secrets(catalog: Catalog) -> None:
    assert catalog.ok("GET", "/sellers") == {
        "sellers": [
            {
                "account_id": SELLER,
                "name": "Test Seller",
                "access_keys": [{"access_key_id": "AKIATESTSELLER000001"}],
            },
            {"account_id": OTHER_SELLER, "name": "Other Seller", "access_keys": []},
        ]
    }


def test_create_read_replace_delete_a_seller(catalog: Catalog) -> None:
    body = {
        "account_id": NEW,
        "name": "New Seller",
        "access_keys": [{"access_key_id": "AKIANEWSELLER0000001", "secret_access_key": "s3"}],
    }
    created = {
        "account_id": NEW,
        "name": "New Seller",
        "access_keys": [{"access_key_id": "AKIANEWSELLER0000001"}],
    }
    assert catalog.ok("POST", "/sellers", body, 201) == created
    assert catalog.version == 2
    assert catalog.ok("GET", f"/sellers/{NEW}") == created
    snapshot = catalog.store.catalog_snapshot_now()
    assert snapshot.key_owners["AKIANEWSELLER0000001"].account_id == NEW
    # PUT without access_keys keeps the keys
    assert catalog.ok("PUT", f"/sellers/{NEW}", {"account_id": NEW, "name": "Renamed"}) == {
        **created,
        "name": "Renamed",
    }
    # PUT with access_keys replaces them
    keys = [{"access_key_id": "AKIANEWSELLER0000002", "secret_access_key": "s4"}]
    replaced = catalog.ok("PUT", f"/sellers/{NEW}", {"account_id": NEW, "access_keys": keys})
    assert replaced == {
        "account_id": NEW,
        "name": "",
        "access_keys": [{"access_key_id": "AKIANEWSELLER0000002"}],
    }
    owners = catalog.store.catalog_snapshot_now().key_owners
    assert "AKIANEWSELLER0000001" not in owners
    assert catalog.version == 4
    assert catalog.ok("DELETE", f"/sellers/{NEW}", status=204) is None
    assert catalog.version == 5
    assert "AKIANEWSELLER0000002" not in catalog.store.catalog_snapshot_now().key_owners
    assert catalog.refused(404, "GET", f"/sellers/{NEW}") == {
        "error": f"no seller with account_id {NEW}",
        "field": "accountId",
    }


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"account_id": "12"}, "account_id", "String should match pattern '^[0-9]{12}$'"),
        ({"account_id": NEW, "colour": "red"}, "colour", "unknown field"),
        ({"name": "x"}, "account_id", "Field required"),
        (
            {
                "account_id": NEW,
                "access_keys": [{"access_key_id": "short", "secret_access_key": "s"}],
            },
            "access_keys.0.access_key_id",
            "String should have at least 16 characters",
        ),
        (
            {
                "account_id": NEW,
                "access_keys": [
                    {"access_key_id": "AKIATESTALICE0000001", "secret_access_key": "x"}
                ],
            },
            "access_keys[0].access_key_id",
            "AKIATESTALICE0000001 already belongs to account 444455556666",
        ),
        ([], "body", "must be a JSON object"),
    ],
)
def test_create_seller_bad_input(catalog: Catalog, body: Any, field: str, error: str) -> None:
    assert catalog.refused(400, "POST", "/sellers", body) == {"error": error, "field": field}
    assert catalog.version == 1


def test_create_seller_without_a_body_or_with_broken_json(catalog: Catalog) -> None:
    assert catalog.refused(400, "POST", "/sellers") == {
        "error": "must be a seller entry (a JSON object)",
        "field": "body",
    }
    assert catalog.refused(400, "POST", "/sellers", content=b"{") == {
        "error": "is not valid JSON",
        "field": "body",
    }


def test_several_problems_are_all_named(catalog: Catalog) -> None:
    body = {"account_id": "1", "name": 5}
    assert catalog.refused(400, "POST", "/sellers", body) == {
        "error": "account_id: String should match pattern '^[0-9]{12}$'; "
        "name: Input should be a valid string",
        "field": "account_id",
    }


def test_create_seller_conflicts(catalog: Catalog) -> None:
    assert catalog.refused(409, "POST", "/sellers", {"account_id": SELLER}) == {
        "error": f"seller {SELLER} already exists",
        "field": "account_id",
    }
    assert catalog.refused(409, "POST", "/sellers", {"account_id": DAVE}) == {
        "error": f"account {DAVE} is a buyer",
        "field": "account_id",
    }


def test_replace_seller_errors(catalog: Catalog) -> None:
    assert catalog.refused(404, "PUT", f"/sellers/{NEW}", {"account_id": NEW}) == {
        "error": f"no seller with account_id {NEW}",
        "field": "accountId",
    }
    assert catalog.refused(400, "PUT", f"/sellers/{SELLER}", {"account_id": NEW}) == {
        "error": f"must be '{SELLER}', the entry this path names",
        "field": "account_id",
    }
    assert catalog.refused(400, "PUT", f"/sellers/{SELLER}", {"name": "x"}) == {
        "error": f"must be '{SELLER}', the entry this path names",
        "field": "account_id",
    }
    assert catalog.refused(400, "PUT", f"/sellers/{SELLER}") == {
        "error": "must be a seller entry (a JSON object)",
        "field": "body",
    }
    assert catalog.version == 1


def test_delete_a_seller_with_products_is_a_conflict(catalog: Catalog) -> None:
    assert catalog.refused(409, "DELETE", f"/sellers/{OTHER_SELLER}") == {
        "error": f"seller {OTHER_SELLER} has products: prod-other",
        "field": "accountId",
    }
    assert catalog.refused(404, "DELETE", f"/sellers/{NEW}")["field"] == "accountId"
    assert catalog.version == 1


# --- access keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sellers", "buyers"])
def test_generated_key_secret_is_shown_once(catalog: Catalog, kind: str) -> None:
    account = SELLER if kind == "sellers" else DAVE
    pair = {"access_key_id": "AKIAGENERATED0000001", "secret_access_key": "generated-secret-1"}
    assert catalog.ok("POST", f"/{kind}/{account}/keys", status=201) == pair
    assert catalog.ok("POST", f"/{kind}/{account}/keys", {}, status=201) == {
        "access_key_id": "AKIAGENERATED0000002",
        "secret_access_key": "generated-secret-2",
    }
    shown = catalog.ok("GET", f"/{kind}/{account}")["access_keys"]
    assert {"access_key_id": "AKIAGENERATED0000001"} in shown
    assert "secret" not in catalog.call("GET", f"/{kind}").text
    snapshot = catalog.store.catalog_snapshot_now()
    assert snapshot.key_owners["AKIAGENERATED0000001"].account_id == account
    assert catalog.version == 3
    assert catalog.ok("DELETE", f"/{kind}/{account}/keys/AKIAGENERATED0000001", status=204) is None
    assert "AKIAGENERATED0000001" not in catalog.store.catalog_snapshot_now().key_owners
    assert catalog.version == 4


def test_given_key_pair(catalog: Catalog) -> None:
    pair = {"access_key_id": "AKIAGIVEN00000000001", "secret_access_key": "given"}
    assert catalog.ok("POST", f"/sellers/{OTHER_SELLER}/keys", pair, 201) == pair
    key = catalog.store.catalog_snapshot_now().catalog.sellers[1].access_keys[0]
    assert (key.access_key_id, key.secret_access_key) == ("AKIAGIVEN00000000001", "given")


@pytest.mark.parametrize(
    ("path", "body", "status", "field", "error"),
    [
        (
            f"/sellers/{SELLER}/keys",
            {"access_key_id": "AKIATESTSELLER000001", "secret_access_key": "x"},
            409,
            "access_key_id",
            "the account already has the key AKIATESTSELLER000001",
        ),
        (
            f"/buyers/{DAVE}/keys",
            {"access_key_id": "AKIATESTSELLER000001", "secret_access_key": "x"},
            409,
            "access_key_id",
            f"AKIATESTSELLER000001 already belongs to account {SELLER}",
        ),
        (
            f"/sellers/{SELLER}/keys",
            {"access_key_id": "AKIAONLYTHEID0000001"},
            400,
            "access_keys.0.secret_access_key",
            "Field required",
        ),
        (
            f"/sellers/{SELLER}/keys",
            {"access_key_id": "akia-lower-case-0001", "secret_access_key": "x"},
            400,
            "access_keys.0.access_key_id",
            "String should match pattern '^[A-Z0-9]+$'",
        ),
        (f"/sellers/{NEW}/keys", None, 404, "accountId", f"no seller with account_id {NEW}"),
        (f"/buyers/{NEW}/keys", None, 404, "accountId", f"no buyer with account_id {NEW}"),
    ],
)
def test_add_key_errors(
    catalog: Catalog, path: str, body: Any, status: int, field: str, error: str
) -> None:
    assert catalog.refused(status, "POST", path, body) == {"error": error, "field": field}
    assert catalog.version == 1


@pytest.mark.parametrize("content", [b"null", b"[]", b"3"])
def test_a_body_that_is_json_but_not_an_object_is_refused_not_taken_as_none(
    catalog: Catalog, content: bytes
) -> None:
    """A JSON ``null`` is a body (unlike no body at all, which asks for a generated key)."""
    for kind, account in (("sellers", SELLER), ("buyers", DAVE)):
        assert catalog.refused(400, "POST", f"/{kind}/{account}/keys", content=content) == {
            "error": "must be a JSON object",
            "field": "body",
        }
    assert catalog.version == 1


def test_delete_key_errors(catalog: Catalog) -> None:
    # a key of another account is not this account's
    assert catalog.refused(404, "DELETE", f"/buyers/{DAVE}/keys/AKIATESTSELLER000001") == {
        "error": "the account has no access key AKIATESTSELLER000001",
        "field": "accessKeyId",
    }
    assert catalog.refused(404, "DELETE", f"/sellers/{NEW}/keys/AKIATESTSELLER000001") == {
        "error": f"no seller with account_id {NEW}",
        "field": "accountId",
    }
    assert catalog.version == 1


def test_random_access_keys_look_like_aws_keys() -> None:
    pairs = {random_access_key() for _ in range(50)}
    assert len(pairs) == 50
    for key_id, secret in pairs:
        assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key_id)
        assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)


# --- products ---------------------------------------------------------------------------------

PRODUCT = {
    "product_code": "prod-new",
    "seller": OTHER_SELLER,
    "kind": "saas",
    "dimensions": ["users", "gb"],
}


def product_view(**changes: Any) -> dict[str, Any]:
    """The answer for ``PRODUCT`` with ``changes``: every field of the entry, defaults too."""
    defaults = catalog_defaults()
    return {**defaults, **PRODUCT, **changes}


def catalog_defaults() -> dict[str, Any]:
    return ProductEntry.model_validate(PRODUCT).model_dump(mode="json")


def test_list_and_read_products(catalog: Catalog) -> None:
    products = catalog.ok("GET", "/products")["products"]
    assert [p["product_code"] for p in products] == [
        "prod-agent",
        "prod-ami",
        "prod-ca",
        "prod-container",
        "prod-legacy",
        "prod-other",
    ]
    legacy = catalog.ok("GET", "/products/prod-legacy")
    assert legacy["seller"] == SELLER
    assert legacy["dimensions"] == ["users", "api_calls"]
    assert legacy["kind"] == "saas"
    assert legacy["integration"] == "legacy"
    assert legacy["per_request_metering"] is False
    assert legacy == products[4]
    assert catalog.refused(404, "GET", "/products/prod-none") == {
        "error": "no product with product_code prod-none",
        "field": "productCode",
    }


def test_create_replace_delete_a_product(catalog: Catalog) -> None:
    assert catalog.ok("POST", "/products", PRODUCT, 201) == product_view()
    assert catalog.store.catalog_snapshot_now().products["prod-new"].dimensions == ("users", "gb")
    changed = {**PRODUCT, "dimensions": ["requests"], "integration": "concurrent-agreements"}
    assert catalog.ok("PUT", "/products/prod-new", changed) == product_view(
        dimensions=["requests"], integration="concurrent-agreements"
    )
    assert catalog.store.catalog_snapshot_now().products["prod-new"].dimensions == ("requests",)
    assert catalog.version == 3
    assert catalog.ok("DELETE", "/products/prod-new", status=204) is None
    assert "prod-new" not in catalog.store.catalog_snapshot_now().products
    assert catalog.version == 4


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"seller": NEW}, "seller", f"no seller with account_id {NEW}"),
        ({"kind": "vm"}, "kind", "Input should be 'saas', 'ami' or 'container'"),
        (
            {"dimensions": []},
            "dimensions",
            "List should have at least 1 item after validation, not 0",
        ),
        ({"dimensions": ["a", "a"]}, "dimensions", "a dimension is listed twice"),
        (
            {"registration_url": "ftp://x"},
            "registration_url",
            "String should match pattern '^https?://'",
        ),
        ({"product_code": ""}, "product_code", "must not be empty"),
    ],
)
def test_create_product_bad_input(
    catalog: Catalog, changes: dict[str, Any], field: str, error: str
) -> None:
    found = catalog.refused(400, "POST", "/products", {**PRODUCT, **changes})
    assert found["field"] == field
    assert error in found["error"]
    assert catalog.version == 1


def test_product_conflicts(catalog: Catalog) -> None:
    assert catalog.refused(409, "POST", "/products", {**PRODUCT, "product_code": "prod-ca"}) == {
        "error": "product prod-ca already exists",
        "field": "product_code",
    }
    assert catalog.refused(409, "DELETE", "/products/prod-other") == {
        "error": "product prod-other has agreements: "
        "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009",
        "field": "productCode",
    }
    assert (
        catalog.refused(
            404, "PUT", "/products/prod-none", {**PRODUCT, "product_code": "prod-none"}
        )["field"]
        == "productCode"
    )
    assert catalog.refused(400, "PUT", "/products/prod-ca", PRODUCT) == {
        "error": "must be 'prod-ca', the entry this path names",
        "field": "product_code",
    }
    assert catalog.refused(404, "DELETE", "/products/prod-none")["field"] == "productCode"
    assert "prod-other" in catalog.store.catalog_snapshot_now().products
    assert catalog.version == 1


# --- buyers -----------------------------------------------------------------------------------


def test_list_and_read_buyers(catalog: Catalog) -> None:
    buyers = catalog.ok("GET", "/buyers")["buyers"]
    assert len(buyers) == 7
    assert catalog.ok("GET", f"/buyers/{DAVE}") == {
        "account_id": DAVE,
        "customer_identifier": "cust-dave",
        "name": "no agreement",
        "access_keys": [{"access_key_id": "AKIATESTDAVE00000001"}],
    }


def test_create_replace_delete_a_buyer(catalog: Catalog) -> None:
    body = {"account_id": NEW, "customer_identifier": "cust-new", "name": "New"}
    view = {**body, "access_keys": []}
    assert catalog.ok("POST", "/buyers", body, 201) == view
    assert (
        catalog.store.catalog_snapshot_now().buyers_by_customer_identifier["cust-new"].account_id
        == NEW
    )
    assert catalog.ok("PUT", f"/buyers/{NEW}", {"account_id": NEW}) == {
        "account_id": NEW,
        "customer_identifier": None,
        "name": "",
        "access_keys": [],
    }
    assert catalog.ok("DELETE", f"/buyers/{NEW}", status=204) is None
    assert NEW not in catalog.store.catalog_snapshot_now().buyers
    assert catalog.version == 4


def test_buyer_errors(catalog: Catalog) -> None:
    assert catalog.refused(409, "POST", "/buyers", {"account_id": DAVE}) == {
        "error": f"buyer {DAVE} already exists",
        "field": "account_id",
    }
    assert catalog.refused(409, "POST", "/buyers", {"account_id": SELLER}) == {
        "error": f"account {SELLER} is a seller",
        "field": "account_id",
    }
    taken = {"account_id": NEW, "customer_identifier": "cust-alice"}
    assert catalog.refused(400, "POST", "/buyers", taken) == {
        "error": "'cust-alice' is empty or already used by buyer 444455556666",
        "field": "customer_identifier",
    }
    assert catalog.refused(409, "DELETE", f"/buyers/{ALICE}")["error"].startswith(
        f"buyer {ALICE} has agreements: arn:aws:license-manager::{ALICE}:license:l-a0000"
    )
    assert catalog.refused(404, "GET", f"/buyers/{NEW}") == {
        "error": f"no buyer with account_id {NEW}",
        "field": "accountId",
    }
    assert catalog.version == 1


def test_replacing_buyer_keys_removes_the_unlisted(catalog: Catalog) -> None:
    keys = [{"access_key_id": "AKIADAVESECOND000001", "secret_access_key": "d2"}]
    answer = catalog.ok("PUT", f"/buyers/{DAVE}", {"account_id": DAVE, "access_keys": keys})
    assert answer["access_keys"] == [{"access_key_id": "AKIADAVESECOND000001"}]
    owners = catalog.store.catalog_snapshot_now().key_owners
    assert "AKIATESTDAVE00000001" not in owners
    assert owners["AKIADAVESECOND000001"].account_id == DAVE
