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
Sellers and buyers share one set of handlers (``_AccountKind`` says what differs), and
``json_object`` reads a JSON-object body here and in ``admin.lifecycle_api``.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketmeter.admin.inputs import NO_BODY, json_body
from marketmeter.catalog.loader import (
    AccessKeyEntry,
    BuyerEntry,
    CatalogError,
    ProductEntry,
    SellerEntry,
    load_catalog_data,
)
from marketmeter.catalog.model import AccessKey, Buyer, Catalog, CatalogSnapshot, Product, Seller
from marketmeter.refusal import Refusal
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
    "json_object",
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


_AccountT = TypeVar("_AccountT", Seller, Buyer)
_Handler = Callable[[Request], Awaitable[Response]]
_Endpoint = tuple[str, str, _Handler]  # path, method, handler


class _DocTemplate(string.Template):
    """A docstring for one kind of account: ``@kind``, ``@{Kind}``, ``@blockers``."""

    delimiter = "@"


@dataclass(frozen=True)
class _AccountKind(Generic[_AccountT]):
    """What the seller routes and the buyer routes differ in."""

    name: str  # "seller": in paths (plural), operation ids and messages
    blockers: str  # what an account cannot be deleted while it has
    find: Callable[[CatalogSnapshot, str], _AccountT | None]
    entries: Callable[[Catalog], tuple[_AccountT, ...]]
    as_catalog: Callable[[_AccountT], Catalog]
    deletion: Callable[[str], CatalogEdit]
    view: Callable[[_AccountT], dict[str, Any]]

    @property
    def collection(self) -> str:
        return f"{self.name}s"

    def fill(self, template: str) -> str:
        return _DocTemplate(template).substitute(
            kind=self.name, Kind=self.name.title(), blockers=self.blockers
        )


def _find_seller(snapshot: CatalogSnapshot, account: str) -> Seller | None:
    return next((s for s in snapshot.catalog.sellers if s.account_id == account), None)


_SELLERS = _AccountKind[Seller](
    name="seller",
    blockers="products",
    find=_find_seller,
    entries=lambda catalog: catalog.sellers,
    as_catalog=lambda seller: Catalog(sellers=(seller,)),
    deletion=lambda account: CatalogEdit(delete_sellers=(account,)),
    view=seller_json,
)
_BUYERS = _AccountKind[Buyer](
    name="buyer",
    blockers="agreements",
    find=lambda snapshot, account: snapshot.buyers.get(account),
    entries=lambda catalog: catalog.buyers,
    as_catalog=lambda buyer: Catalog(buyers=(buyer,)),
    deletion=lambda account: CatalogEdit(delete_buyers=(account,)),
    view=buyer_json,
)

# the OpenAPI operations of an account kind: operation id -> docstring (``_AccountKind.fill``)
_ACCOUNT_DOCS = {
    "list_@{kind}s": """List the @{kind}s.
---
summary: List the @{kind}s (access key ids, never secrets)
tags: [catalog]
responses:
  "200":
    description: Every @kind, by account id
    content: {application/json: {schema: {$ref: "#/components/schemas/@{Kind}List"}}}
""",
    "create_@kind": """Add a @kind.
---
summary: Add a @kind (a catalog file's @kind entry)
tags: [catalog]
requestBody:
  required: true
  content: {application/json: {schema: {$ref: "#/components/schemas/@{Kind}Entry"}}}
responses:
  "201":
    description: The new @kind
    content: {application/json: {schema: {$ref: "#/components/schemas/@{Kind}View"}}}
  "400": {$ref: "#/components/responses/BadInput"}
  "409": {$ref: "#/components/responses/Conflict"}
""",
    "read_@kind": """Show a @kind.
---
summary: Show a @kind
tags: [catalog]
responses:
  "200":
    description: The @kind
    content: {application/json: {schema: {$ref: "#/components/schemas/@{Kind}View"}}}
  "404": {$ref: "#/components/responses/NotFound"}
""",
    "replace_@kind": """Replace a @kind.
---
summary: Replace a @kind's entry (access_keys, when given, replace its keys)
tags: [catalog]
requestBody:
  required: true
  content: {application/json: {schema: {$ref: "#/components/schemas/@{Kind}Entry"}}}
responses:
  "200":
    description: The @kind as it is now
    content: {application/json: {schema: {$ref: "#/components/schemas/@{Kind}View"}}}
  "400": {$ref: "#/components/responses/BadInput"}
  "404": {$ref: "#/components/responses/NotFound"}
""",
    "delete_@kind": """Delete a @kind.
---
summary: Delete a @kind and its access keys (not while it has @blockers)
tags: [catalog]
responses:
  "204": {description: Deleted}
  "404": {$ref: "#/components/responses/NotFound"}
  "409": {$ref: "#/components/responses/Conflict"}
""",
    "add_@{kind}_key": """Add an access key to a @kind.
---
summary: Add an access key to a @kind (generated when no body is sent)
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
""",
    "delete_@{kind}_key": """Delete a @kind's access key.
---
summary: Delete a @kind's access key
tags: [catalog]
responses:
  "204": {description: Deleted}
  "404": {$ref: "#/components/responses/NotFound"}
""",
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


async def json_object(request: Request, entry: str | None = None) -> dict[str, Any]:
    """The JSON object sent as the body (``Refusal`` on ``body`` if it is not one); no
    body at all is ``{}``, or, where an ``entry`` entry must be sent, an error."""
    value = await json_body(request)
    if value is NO_BODY:
        if entry is not None:
            raise Refusal("body", f"must be a {entry} entry (a JSON object)")
        return {}
    if not isinstance(value, dict):
        raise Refusal("body", "must be a JSON object")
    return value


def _checked(section: str, entry: dict[str, Any], existing: Catalog) -> Catalog:
    """The entry through the catalog loader (fields, wire constraints, references)."""
    try:
        return load_catalog_data({section: [entry]}, existing, source=section)
    except CatalogError as error:
        raise _problem(section, entry, error.problems) from None


def _problem(section: str, entry: dict[str, Any], problems: list[str]) -> Refusal:
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
        return Refusal(found[0][0], found[0][1])
    return Refusal(found[0][0], "; ".join(f"{f}: {m}" for f, m in found))


def _keyed(body: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """A PUT body is the whole entry; its key must be the one the path names."""
    if body.get(key) != value:
        raise Refusal(key, f"must be {value!r}, the entry this path names")
    return body


def catalog_routes(store: Store, access_keys: AccessKeyFactory = random_access_key) -> list[Route]:
    """The catalog's routes over ``store``; ``access_keys`` makes the pairs of
    ``POST .../keys`` without a body."""

    async def current() -> CatalogSnapshot:
        return await store.catalog_snapshot()

    async def apply(edit: CatalogEdit, field: str | None = None) -> None:
        """One transaction; a deletion something refers to is a 409 on ``field``."""
        try:
            await store.edit_catalog(edit)
        except CatalogReferenceError as error:
            raise Refusal(field, str(error), 409) from None

    def product_of(snapshot: CatalogSnapshot, code: str) -> Product:
        product = snapshot.products.get(code)
        if product is None:
            raise Refusal("productCode", f"no product with product_code {code}", 404)
        return product

    def kept_keys(
        body: dict[str, Any], old: Sequence[AccessKey], new: Sequence[AccessKey]
    ) -> tuple[tuple[AccessKey, ...], tuple[str, ...]]:
        """The keys after a PUT, and those it removes (only if it lists ``access_keys``)."""
        if "access_keys" not in body:
            return tuple(old), ()
        listed = {key.access_key_id for key in new}
        return tuple(new), tuple(k.access_key_id for k in old if k.access_key_id not in listed)

    async def new_key(
        request: Request, snapshot: CatalogSnapshot, owned: Sequence[AccessKey]
    ) -> dict[str, Any]:
        body = await json_object(request)
        if not body:
            generated, secret = access_keys()
            return {"access_key_id": generated, "secret_access_key": secret}
        key_id = body.get("access_key_id")
        if any(key.access_key_id == key_id for key in owned):
            raise Refusal("access_key_id", f"the account already has the key {key_id}", 409)
        owner = snapshot.key_owners.get(key_id) if isinstance(key_id, str) else None
        if owner is not None:
            raise Refusal(
                "access_key_id", f"{key_id} already belongs to account {owner.account_id}", 409
            )
        return dict(body)

    def owned_key(request: Request, owned: Sequence[AccessKey]) -> str:
        key_id = str(request.path_params["accessKeyId"])
        if all(key.access_key_id != key_id for key in owned):
            raise Refusal("accessKeyId", f"the account has no access key {key_id}", 404)
        return key_id

    # --- sellers and buyers -------------------------------------------------------------------

    def account_routes(kind: _AccountKind[_AccountT], other: _AccountKind[Any]) -> list[_Endpoint]:
        """The routes of one kind of account: the collection, an account, and its keys."""

        def account_of(snapshot: CatalogSnapshot, account: str) -> _AccountT:
            found = kind.find(snapshot, account)
            if found is None:
                raise Refusal("accountId", f"no {kind.name} with account_id {account}", 404)
            return found

        async def list_accounts(request: Request) -> Response:
            entries = kind.entries((await current()).catalog)
            return JSONResponse({kind.collection: [kind.view(a) for a in entries]})

        async def create_account(request: Request) -> Response:
            body = await json_object(request, kind.name)
            snapshot = await current()
            account = body.get("account_id")
            if isinstance(account, str):
                if kind.find(snapshot, account) is not None:
                    raise Refusal("account_id", f"{kind.name} {account} already exists", 409)
                if other.find(snapshot, account) is not None:
                    raise Refusal("account_id", f"account {account} is a {other.name}", 409)
            checked = _checked(kind.collection, body, snapshot.catalog)
            await apply(CatalogEdit(upserts=checked))
            return JSONResponse(kind.view(kind.entries(checked)[0]), status_code=201)

        async def read_account(request: Request) -> Response:
            found = account_of(await current(), request.path_params["accountId"])
            return JSONResponse(kind.view(found))

        async def replace_account(request: Request) -> Response:
            account = request.path_params["accountId"]
            body = await json_object(request, kind.name)
            snapshot = await current()
            old = account_of(snapshot, account)
            entry = _keyed(body, "account_id", account)
            new = kind.entries(_checked(kind.collection, entry, snapshot.catalog))[0]
            keys, removed = kept_keys(body, old.access_keys, new.access_keys)
            updated = replace(new, access_keys=keys)
            await apply(CatalogEdit(upserts=kind.as_catalog(updated), delete_access_keys=removed))
            return JSONResponse(kind.view(updated))

        async def delete_account(request: Request) -> Response:
            found = account_of(await current(), request.path_params["accountId"])
            await apply(kind.deletion(found.account_id), "accountId")
            return Response(status_code=204)

        async def add_account_key(request: Request) -> Response:
            snapshot = await current()
            # annotated: mypy cannot infer it here (a constrained type variable)
            owner: _AccountT = account_of(snapshot, request.path_params["accountId"])
            key = await new_key(request, snapshot, owner.access_keys)
            _checked(kind.collection, {**kind.view(owner), "access_keys": [key]}, snapshot.catalog)
            pair = AccessKey(key["access_key_id"], key["secret_access_key"])
            updated = replace(owner, access_keys=(*owner.access_keys, pair))
            await apply(CatalogEdit(upserts=kind.as_catalog(updated)))
            return JSONResponse(key, status_code=201)

        async def delete_account_key(request: Request) -> Response:
            owner = account_of(await current(), request.path_params["accountId"])
            await apply(CatalogEdit(delete_access_keys=(owned_key(request, owner.access_keys),)))
            return Response(status_code=204)

        def operation(name: str, handler: _Handler) -> _Handler:
            handler.__name__ = kind.fill(name)
            handler.__doc__ = kind.fill(_ACCOUNT_DOCS[name])
            return handler

        many, one = f"/{kind.collection}", f"/{kind.collection}/{{accountId}}"
        return [
            (many, "GET", operation("list_@{kind}s", list_accounts)),
            (many, "POST", operation("create_@kind", create_account)),
            (one, "GET", operation("read_@kind", read_account)),
            (one, "PUT", operation("replace_@kind", replace_account)),
            (one, "DELETE", operation("delete_@kind", delete_account)),
            (f"{one}/keys", "POST", operation("add_@{kind}_key", add_account_key)),
            (
                f"{one}/keys/{{accessKeyId}}",
                "DELETE",
                operation("delete_@{kind}_key", delete_account_key),
            ),
        ]

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
        body = await json_object(request, "product")
        snapshot = await current()
        code = body.get("product_code")
        if isinstance(code, str) and code in snapshot.products:
            raise Refusal("product_code", f"product {code} already exists", 409)
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
        body = await json_object(request, "product")
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

    prefix = "/_marketmeter"
    table: list[_Endpoint] = [
        *account_routes(_SELLERS, _BUYERS),
        ("/products", "GET", list_products),
        ("/products", "POST", create_product),
        ("/products/{productCode}", "GET", read_product),
        ("/products/{productCode}", "PUT", replace_product),
        ("/products/{productCode}", "DELETE", delete_product),
        *account_routes(_BUYERS, _SELLERS),
    ]
    return [Route(prefix + path, handler, methods=[method]) for path, method, handler in table]
