"""The catalog through the admin API: sellers, products (with their dimensions), buyers and
their access keys, under ``/_marketmeter/``.

- ``GET|POST /sellers``, ``GET|PUT|DELETE /sellers/{accountId}``,
  ``POST /sellers/{accountId}/keys``, ``DELETE /sellers/{accountId}/keys/{accessKeyId}``;
- ``GET|POST /products``, ``GET|PUT|DELETE /products/{productCode}``;
- ``GET|POST /buyers``, ``GET|PUT|DELETE /buyers/{accountId}``, and buyer keys as seller keys.

Bodies are the catalog file's entries (``catalog.loader``'s ``SellerEntry``, ``ProductEntry``,
``BuyerEntry``, ``AccessKeyEntry``), checked by the loader against the stored catalog, so an
entry the API accepts is one ``marketmeter catalog apply`` would accept. ``PUT`` replaces the
entry; a seller's or buyer's ``access_keys``, when given, replace its keys, and when left out
keep them. Secrets are answered once, by the ``POST .../keys`` that created the key, never
by a read. A deletion something refers to is a 409 naming it; every change is one
``Store.edit_catalog`` transaction, which bumps the catalog version so every node reloads.
"""

from __future__ import annotations

import functools
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter.catalog.loader import (
    AccessKeyEntry,
    BuyerEntry,
    CatalogError,
    ProductEntry,
    SellerEntry,
    load_catalog_data,
)
from marketmeter.catalog.model import AccessKey, Buyer, Catalog, CatalogSnapshot, Product, Seller
from marketmeter.store.base import CatalogEdit, CatalogReferenceError, Store

__all__ = [
    "CATALOG_SCHEMA_MODELS",
    "AccessKeyFactory",
    "AccessKeyView",
    "BuyerList",
    "BuyerView",
    "ProductList",
    "SellerList",
    "SellerView",
    "buyer_json",
    "catalog_routes",
    "product_json",
    "random_access_key",
    "seller_json",
]

AccessKeyFactory = Callable[[], tuple[str, str]]
"""Makes a new access key pair: (access key id, secret access key)."""

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def random_access_key() -> tuple[str, str]:
    """An AWS-looking pair: ``AKIA`` and 16 of A-Z 0-9; a secret of 40 base64 characters."""
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return key_id, secret


class AccessKeyView(BaseModel):
    """An access key as reads show it: its id, never its secret."""

    access_key_id: str


class SellerView(BaseModel):
    """A seller as reads show it."""

    account_id: str
    name: str
    access_keys: list[AccessKeyView]


class BuyerView(BaseModel):
    """A buyer as reads show it."""

    account_id: str
    customer_identifier: str | None
    name: str
    access_keys: list[AccessKeyView]


class SellerList(BaseModel):
    sellers: list[SellerView]


class ProductList(BaseModel):
    products: list[ProductEntry]


class BuyerList(BaseModel):
    buyers: list[BuyerView]


CATALOG_SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    AccessKeyEntry,
    AccessKeyView,
    BuyerEntry,
    BuyerList,
    BuyerView,
    ProductEntry,
    ProductList,
    SellerEntry,
    SellerList,
    SellerView,
)


class _Refusal(Exception):
    """An answer other than success: status, field, message."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def _keys_json(keys: Sequence[AccessKey]) -> list[dict[str, Any]]:
    return [{"access_key_id": key.access_key_id} for key in keys]


def seller_json(seller: Seller) -> dict[str, Any]:
    return {
        "account_id": seller.account_id,
        "name": seller.name,
        "access_keys": _keys_json(seller.access_keys),
    }


def buyer_json(buyer: Buyer) -> dict[str, Any]:
    return {
        "account_id": buyer.account_id,
        "customer_identifier": buyer.customer_identifier,
        "name": buyer.name,
        "access_keys": _keys_json(buyer.access_keys),
    }


# the entry's field names that the domain model spells otherwise
_PRODUCT_ATTRIBUTES = {"seller": "seller_account_id"}


def product_json(product: Product) -> dict[str, Any]:
    """The product as its catalog entry: every field ``ProductEntry`` has."""
    values = {
        name: getattr(product, _PRODUCT_ATTRIBUTES.get(name, name))
        for name in ProductEntry.model_fields
    }
    return ProductEntry.model_validate(
        {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    ).model_dump(mode="json")


async def _object(request: Request, entry: str | None = None) -> Any:
    """The JSON object sent; no body at all is ``{}``, or a 400 where ``entry`` must be sent."""
    body = await request.body()
    if not body.strip():
        if entry is not None:
            raise _Refusal(400, "body", f"must be a {entry} entry (a JSON object)")
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Refusal(400, "body", "is not valid JSON") from None
    if not isinstance(value, dict):
        raise _Refusal(400, "body", "must be a JSON object")
    return value


def _checked(section: str, entry: dict[str, Any], existing: Catalog) -> Catalog:
    """The entry through the catalog loader (fields, wire constraints, references)."""
    try:
        return load_catalog_data({section: [entry]}, existing, source=section)
    except CatalogError as error:
        raise _problem(section, entry, error.problems) from None


def _problem(section: str, entry: dict[str, Any], problems: list[str]) -> _Refusal:
    """A 400 naming the field of the loader's first problem (``products[0] (code): field:
    message``); every problem is in the message."""
    label = ""
    for key in ("product_code", "account_id"):
        if isinstance(entry.get(key), str | int):
            label = f" ({entry[key]})"
            break
    found: list[tuple[str, str]] = []
    for problem in problems:
        rest = problem.removeprefix(f"{section}[0]{label}").removeprefix(": ")
        field, separator, message = rest.partition(": ")
        if not separator or " " in field:
            field, message = "body", rest
        found.append((field, message))
    if len(found) == 1:
        return _Refusal(400, found[0][0], found[0][1])
    return _Refusal(400, found[0][0], "; ".join(f"{f}: {m}" for f, m in found))


def _keyed(body: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """A PUT body is the whole entry; its key must be the one the path names."""
    if body.get(key) != value:
        raise _Refusal(400, key, f"must be {value!r}, the entry this path names")
    return body


def catalog_routes(store: Store, access_keys: AccessKeyFactory = random_access_key) -> list[Route]:
    """The catalog's routes over ``store``; ``access_keys`` makes the pairs of
    ``POST .../keys`` without a body."""

    async def current() -> CatalogSnapshot:
        return await store.catalog_snapshot()

    async def apply(edit: CatalogEdit, field: str = "") -> None:
        """One transaction; a deletion something refers to is a 409 on ``field``."""
        try:
            await store.edit_catalog(edit)
        except CatalogReferenceError as error:
            raise _Refusal(409, field, str(error)) from None

    def seller_of(snapshot: CatalogSnapshot, account: str) -> Seller:
        for seller in snapshot.catalog.sellers:
            if seller.account_id == account:
                return seller
        raise _Refusal(404, "accountId", f"no seller with account_id {account}")

    def buyer_of(snapshot: CatalogSnapshot, account: str) -> Buyer:
        buyer = snapshot.buyers.get(account)
        if buyer is None:
            raise _Refusal(404, "accountId", f"no buyer with account_id {account}")
        return buyer

    def product_of(snapshot: CatalogSnapshot, code: str) -> Product:
        product = snapshot.products.get(code)
        if product is None:
            raise _Refusal(404, "productCode", f"no product with product_code {code}")
        return product

    def kept_keys(
        body: dict[str, Any], old: Sequence[AccessKey], new: Sequence[AccessKey]
    ) -> tuple[tuple[AccessKey, ...], tuple[str, ...]]:
        """The keys after a PUT, and those it removes (only if it lists ``access_keys``)."""
        if "access_keys" not in body:
            return tuple(old), ()
        listed = {key.access_key_id for key in new}
        return tuple(new), tuple(k.access_key_id for k in old if k.access_key_id not in listed)

    def guard(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        @functools.wraps(handler)
        async def answer(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except _Refusal as refusal:
                problem = {"error": refusal.message, "field": refusal.field or None}
                return JSONResponse(problem, status_code=refusal.status)
            return response

        return answer

    # --- sellers ------------------------------------------------------------------------------

    async def list_sellers(request: Request) -> Response:
        """List the sellers.
        ---
        summary: List the sellers (access key ids, never secrets)
        tags: [catalog]
        responses:
          "200":
            description: Every seller, by account id
            content: {application/json: {schema: {$ref: "#/components/schemas/SellerList"}}}
        """
        snapshot = await current()
        return JSONResponse({"sellers": [seller_json(s) for s in snapshot.catalog.sellers]})

    async def create_seller(request: Request) -> Response:
        """Add a seller.
        ---
        summary: Add a seller (a catalog file's seller entry)
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/SellerEntry"}}}
        responses:
          "201":
            description: The new seller
            content: {application/json: {schema: {$ref: "#/components/schemas/SellerView"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        body = await _object(request, "seller")
        snapshot = await current()
        account = body.get("account_id")
        if isinstance(account, str):
            if any(s.account_id == account for s in snapshot.catalog.sellers):
                raise _Refusal(409, "account_id", f"seller {account} already exists")
            if account in snapshot.buyers:
                raise _Refusal(409, "account_id", f"account {account} is a buyer")
        checked = _checked("sellers", body, snapshot.catalog)
        await apply(CatalogEdit(upserts=checked))
        return JSONResponse(seller_json(checked.sellers[0]), status_code=201)

    async def read_seller(request: Request) -> Response:
        """Show a seller.
        ---
        summary: Show a seller
        tags: [catalog]
        responses:
          "200":
            description: The seller
            content: {application/json: {schema: {$ref: "#/components/schemas/SellerView"}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        seller = seller_of(await current(), request.path_params["accountId"])
        return JSONResponse(seller_json(seller))

    async def replace_seller(request: Request) -> Response:
        """Replace a seller.
        ---
        summary: Replace a seller's entry (access_keys, when given, replace its keys)
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/SellerEntry"}}}
        responses:
          "200":
            description: The seller as it is now
            content: {application/json: {schema: {$ref: "#/components/schemas/SellerView"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        account = request.path_params["accountId"]
        body = await _object(request, "seller")
        snapshot = await current()
        old = seller_of(snapshot, account)
        entry = _keyed(body, "account_id", account)
        new = _checked("sellers", entry, snapshot.catalog).sellers[0]
        keys, removed = kept_keys(body, old.access_keys, new.access_keys)
        seller = replace(new, access_keys=keys)
        await apply(CatalogEdit(upserts=Catalog(sellers=(seller,)), delete_access_keys=removed))
        return JSONResponse(seller_json(seller))

    async def delete_seller(request: Request) -> Response:
        """Delete a seller.
        ---
        summary: Delete a seller and its access keys (not while it has products)
        tags: [catalog]
        responses:
          "204": {description: Deleted}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        seller = seller_of(await current(), request.path_params["accountId"])
        await apply(CatalogEdit(delete_sellers=(seller.account_id,)), "accountId")
        return Response(status_code=204)

    async def add_seller_key(request: Request) -> Response:
        """Add an access key to a seller.
        ---
        summary: Add an access key to a seller (generated when no body is sent)
        description: >-
          The answer is the only one that shows the secret access key.
        tags: [catalog]
        requestBody:
          required: false
          content: {application/json: {schema: {$ref: "#/components/schemas/AccessKeyEntry"}}}
        responses:
          "201":
            description: The new key pair, secret included
            content: {application/json: {schema: {$ref: "#/components/schemas/AccessKeyEntry"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        snapshot = await current()
        seller = seller_of(snapshot, request.path_params["accountId"])
        key = await new_key(request, snapshot, seller.access_keys)
        entry = {"account_id": seller.account_id, "name": seller.name, "access_keys": [key]}
        _checked("sellers", entry, snapshot.catalog)
        pair = AccessKey(key["access_key_id"], key["secret_access_key"])
        updated = replace(seller, access_keys=(*seller.access_keys, pair))
        await apply(CatalogEdit(upserts=Catalog(sellers=(updated,))))
        return JSONResponse(key, status_code=201)

    async def delete_seller_key(request: Request) -> Response:
        """Delete a seller's access key.
        ---
        summary: Delete a seller's access key
        tags: [catalog]
        responses:
          "204": {description: Deleted}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        seller = seller_of(await current(), request.path_params["accountId"])
        await apply(CatalogEdit(delete_access_keys=(owned_key(request, seller.access_keys),)))
        return Response(status_code=204)

    async def new_key(
        request: Request, snapshot: CatalogSnapshot, owned: Sequence[AccessKey]
    ) -> dict[str, Any]:
        body = await _object(request)
        if not body:
            key_id, secret = access_keys()
            return {"access_key_id": key_id, "secret_access_key": secret}
        key_id = body.get("access_key_id")
        if any(key.access_key_id == key_id for key in owned):
            raise _Refusal(409, "access_key_id", f"the account already has the key {key_id}")
        owner = snapshot.key_owners.get(key_id) if isinstance(key_id, str) else None
        if owner is not None:
            raise _Refusal(
                409, "access_key_id", f"{key_id} already belongs to account {owner.account_id}"
            )
        return dict(body)

    def owned_key(request: Request, owned: Sequence[AccessKey]) -> str:
        key_id = str(request.path_params["accessKeyId"])
        if all(key.access_key_id != key_id for key in owned):
            raise _Refusal(404, "accessKeyId", f"the account has no access key {key_id}")
        return key_id

    # --- products -----------------------------------------------------------------------------

    async def list_products(request: Request) -> Response:
        """List the products.
        ---
        summary: List the products with their dimensions
        tags: [catalog]
        responses:
          "200":
            description: Every product, by product code
            content: {application/json: {schema: {$ref: "#/components/schemas/ProductList"}}}
        """
        snapshot = await current()
        return JSONResponse({"products": [product_json(p) for p in snapshot.catalog.products]})

    async def create_product(request: Request) -> Response:
        """Add a product.
        ---
        summary: Add a product (a catalog file's product entry, dimensions included)
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/ProductEntry"}}}
        responses:
          "201":
            description: The new product
            content: {application/json: {schema: {$ref: "#/components/schemas/ProductEntry"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        body = await _object(request, "product")
        snapshot = await current()
        code = body.get("product_code")
        if isinstance(code, str) and code in snapshot.products:
            raise _Refusal(409, "product_code", f"product {code} already exists")
        checked = _checked("products", body, snapshot.catalog)
        await apply(CatalogEdit(upserts=checked))
        return JSONResponse(product_json(checked.products[0]), status_code=201)

    async def read_product(request: Request) -> Response:
        """Show a product.
        ---
        summary: Show a product
        tags: [catalog]
        responses:
          "200":
            description: The product
            content: {application/json: {schema: {$ref: "#/components/schemas/ProductEntry"}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        product = product_of(await current(), request.path_params["productCode"])
        return JSONResponse(product_json(product))

    async def replace_product(request: Request) -> Response:
        """Replace a product.
        ---
        summary: Replace a product's entry, its dimensions included
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/ProductEntry"}}}
        responses:
          "200":
            description: The product as it is now
            content: {application/json: {schema: {$ref: "#/components/schemas/ProductEntry"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        code = request.path_params["productCode"]
        body = await _object(request, "product")
        snapshot = await current()
        product_of(snapshot, code)
        checked = _checked("products", _keyed(body, "product_code", code), snapshot.catalog)
        await apply(CatalogEdit(upserts=checked))
        return JSONResponse(product_json(checked.products[0]))

    async def delete_product(request: Request) -> Response:
        """Delete a product.
        ---
        summary: Delete a product and its dimensions (not while it has agreements)
        tags: [catalog]
        responses:
          "204": {description: Deleted}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        product = product_of(await current(), request.path_params["productCode"])
        await apply(CatalogEdit(delete_products=(product.product_code,)), "productCode")
        return Response(status_code=204)

    # --- buyers -------------------------------------------------------------------------------

    async def list_buyers(request: Request) -> Response:
        """List the buyers.
        ---
        summary: List the buyers (access key ids, never secrets)
        tags: [catalog]
        responses:
          "200":
            description: Every buyer, by account id
            content: {application/json: {schema: {$ref: "#/components/schemas/BuyerList"}}}
        """
        snapshot = await current()
        return JSONResponse({"buyers": [buyer_json(b) for b in snapshot.catalog.buyers]})

    async def create_buyer(request: Request) -> Response:
        """Add a buyer.
        ---
        summary: Add a buyer (a catalog file's buyer entry)
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/BuyerEntry"}}}
        responses:
          "201":
            description: The new buyer
            content: {application/json: {schema: {$ref: "#/components/schemas/BuyerView"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        body = await _object(request, "buyer")
        snapshot = await current()
        account = body.get("account_id")
        if isinstance(account, str):
            if account in snapshot.buyers:
                raise _Refusal(409, "account_id", f"buyer {account} already exists")
            if any(s.account_id == account for s in snapshot.catalog.sellers):
                raise _Refusal(409, "account_id", f"account {account} is a seller")
        checked = _checked("buyers", body, snapshot.catalog)
        await apply(CatalogEdit(upserts=checked))
        return JSONResponse(buyer_json(checked.buyers[0]), status_code=201)

    async def read_buyer(request: Request) -> Response:
        """Show a buyer.
        ---
        summary: Show a buyer
        tags: [catalog]
        responses:
          "200":
            description: The buyer
            content: {application/json: {schema: {$ref: "#/components/schemas/BuyerView"}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        buyer = buyer_of(await current(), request.path_params["accountId"])
        return JSONResponse(buyer_json(buyer))

    async def replace_buyer(request: Request) -> Response:
        """Replace a buyer.
        ---
        summary: Replace a buyer's entry (access_keys, when given, replace its keys)
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/BuyerEntry"}}}
        responses:
          "200":
            description: The buyer as it is now
            content: {application/json: {schema: {$ref: "#/components/schemas/BuyerView"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        account = request.path_params["accountId"]
        body = await _object(request, "buyer")
        snapshot = await current()
        old = buyer_of(snapshot, account)
        entry = _keyed(body, "account_id", account)
        new = _checked("buyers", entry, snapshot.catalog).buyers[0]
        keys, removed = kept_keys(body, old.access_keys, new.access_keys)
        buyer = replace(new, access_keys=keys)
        await apply(CatalogEdit(upserts=Catalog(buyers=(buyer,)), delete_access_keys=removed))
        return JSONResponse(buyer_json(buyer))

    async def delete_buyer(request: Request) -> Response:
        """Delete a buyer.
        ---
        summary: Delete a buyer and its access keys (not while it has agreements)
        tags: [catalog]
        responses:
          "204": {description: Deleted}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        buyer = buyer_of(await current(), request.path_params["accountId"])
        await apply(CatalogEdit(delete_buyers=(buyer.account_id,)), "accountId")
        return Response(status_code=204)

    async def add_buyer_key(request: Request) -> Response:
        """Add an access key to a buyer.
        ---
        summary: Add an access key to a buyer (generated when no body is sent)
        description: >-
          The answer is the only one that shows the secret access key.
        tags: [catalog]
        requestBody:
          required: false
          content: {application/json: {schema: {$ref: "#/components/schemas/AccessKeyEntry"}}}
        responses:
          "201":
            description: The new key pair, secret included
            content: {application/json: {schema: {$ref: "#/components/schemas/AccessKeyEntry"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        snapshot = await current()
        buyer = buyer_of(snapshot, request.path_params["accountId"])
        key = await new_key(request, snapshot, buyer.access_keys)
        entry = {
            "account_id": buyer.account_id,
            "customer_identifier": buyer.customer_identifier,
            "name": buyer.name,
            "access_keys": [key],
        }
        _checked("buyers", entry, snapshot.catalog)
        pair = AccessKey(key["access_key_id"], key["secret_access_key"])
        updated = replace(buyer, access_keys=(*buyer.access_keys, pair))
        await apply(CatalogEdit(upserts=Catalog(buyers=(updated,))))
        return JSONResponse(key, status_code=201)

    async def delete_buyer_key(request: Request) -> Response:
        """Delete a buyer's access key.
        ---
        summary: Delete a buyer's access key
        tags: [catalog]
        responses:
          "204": {description: Deleted}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        buyer = buyer_of(await current(), request.path_params["accountId"])
        await apply(CatalogEdit(delete_access_keys=(owned_key(request, buyer.access_keys),)))
        return Response(status_code=204)

    prefix = "/_marketmeter"
    table: list[tuple[str, str, Callable[[Request], Any]]] = [
        ("/sellers", "GET", list_sellers),
        ("/sellers", "POST", create_seller),
        ("/sellers/{accountId}", "GET", read_seller),
        ("/sellers/{accountId}", "PUT", replace_seller),
        ("/sellers/{accountId}", "DELETE", delete_seller),
        ("/sellers/{accountId}/keys", "POST", add_seller_key),
        ("/sellers/{accountId}/keys/{accessKeyId}", "DELETE", delete_seller_key),
        ("/products", "GET", list_products),
        ("/products", "POST", create_product),
        ("/products/{productCode}", "GET", read_product),
        ("/products/{productCode}", "PUT", replace_product),
        ("/products/{productCode}", "DELETE", delete_product),
        ("/buyers", "GET", list_buyers),
        ("/buyers", "POST", create_buyer),
        ("/buyers/{accountId}", "GET", read_buyer),
        ("/buyers/{accountId}", "PUT", replace_buyer),
        ("/buyers/{accountId}", "DELETE", delete_buyer),
        ("/buyers/{accountId}/keys", "POST", add_buyer_key),
        ("/buyers/{accountId}/keys/{accessKeyId}", "DELETE", delete_buyer_key),
    ]
    return [
        Route(prefix + path, guard(handler), methods=[method]) for path, method, handler in table
    ]
