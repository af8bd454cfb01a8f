"""The catalog through the admin API: sellers, products (with their dimensions), buyers and
their access keys, and a whole catalog document, under ``/_marketmeter/``.

- ``GET|POST /sellers``, ``GET|PUT|DELETE /sellers/{accountId}``,
  ``POST /sellers/{accountId}/keys``, ``DELETE /sellers/{accountId}/keys/{accessKeyId}``;
- ``GET|POST /products``, ``GET|PUT|DELETE /products/{productCode}``;
- ``GET|POST /offers``, ``GET|PUT|DELETE /offers/{offerId}`` (an offer and its terms);
- ``GET|POST /buyers``, ``GET|PUT|DELETE /buyers/{accountId}``, and buyer keys as seller keys;
- ``POST /catalog``: a whole catalog document, as ``marketmeter catalog apply`` applies a file.

Bodies are the catalog file's entries; what is accepted, refused and answered is the operator's
(``operator.catalog``): these handlers only read the request and answer. Sellers and buyers
share one set of handlers (``AccountKind`` says what differs).
"""

from __future__ import annotations

import string
import tempfile
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from marketmeter.admin.routing import Endpoint, Handler, answer, body, entry, no_content
from marketmeter.admin.text_guard import MAX_STREAMED_CATALOG_BYTES, streamed_catalog
from marketmeter.catalog.loader import (
    AccessKeyEntry,
    BuyerEntry,
    OfferEntry,
    ProductEntry,
    SellerEntry,
)
from marketmeter.operator.catalog import BUYERS, SELLERS, AccountKind, CatalogOperations
from marketmeter.operator.inputs import check_known, strict_object
from marketmeter.refusal import Refusal

__all__ = [
    "CATALOG_SCHEMA_MODELS",
    "AccessKeyView",
    "BuyerList",
    "BuyerView",
    "CatalogApplied",
    "CatalogDocument",
    "OfferList",
    "ProductList",
    "SellerList",
    "SellerView",
    "catalog_endpoints",
]


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


class OfferList(BaseModel):
    offers: list[OfferEntry]


class BuyerList(BaseModel):
    buyers: list[BuyerView]


# Documents a client may send that the loader refuses with its problem list (docs/catalog.md,
# "Bounds"); in the OpenAPI document, so schemathesis's examples phase sends them too.
HOSTILE_DOCUMENT_EXAMPLES = [
    "sellers: " + "[" * 500 + "]" * 500,
    'sellers:\n  - {account_id: "123412341234", name: "a\\0b"}\n',
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef", strict=True)
    )
    + "sellers: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
    'products:\n  - {product_code: p, seller: "111122223333", kind: saas, dimensions: ['
    + ", ".join(f"d{i}" for i in range(1_001))
    + "]}\n",
    "sellers: !!python/object/apply:os.system [echo]\n",
]


_SPOOL_IN_MEMORY = 8 * 1024 * 1024  # bytes of a streamed catalog kept in memory; the rest on disk


class CatalogDocument(BaseModel):
    """A whole catalog document to apply: its YAML (or JSON) text, and a name for messages."""

    model_config = ConfigDict(extra="forbid")

    document: str = Field(examples=HOSTILE_DOCUMENT_EXAMPLES)
    source: str = Field(default="catalog", min_length=1, max_length=1024)


class CatalogApplied(BaseModel):
    """What a catalog document held, the catalog version after it, the tokens minted."""

    source: str
    sellers: int
    products: int
    buyers: int
    agreements: int
    catalogVersion: int
    tokensMinted: int


CATALOG_SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    AccessKeyEntry,
    CatalogApplied,
    CatalogDocument,
    AccessKeyView,
    BuyerEntry,
    BuyerList,
    BuyerView,
    OfferEntry,
    OfferList,
    ProductEntry,
    ProductList,
    SellerEntry,
    SellerList,
    SellerView,
)


class _DocTemplate(string.Template):
    """A docstring for one kind of account: ``@kind``, ``@{Kind}``, ``@blockers``."""

    delimiter = "@"


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


def _fill(kind: AccountKind[Any], template: str) -> str:
    return _DocTemplate(template).substitute(
        kind=kind.name, Kind=kind.name.title(), blockers=kind.blockers
    )


async def _apply_streamed(catalog: CatalogOperations, request: Request) -> dict[str, Any]:
    """The body is the document: spooled (to disk past ``_SPOOL_IN_MEMORY``), then applied
    entry by entry (``CatalogOperations.apply_stream``)."""
    source = request.query_params.get("source", "catalog")
    if not 0 < len(source) <= 1024:
        raise Refusal("source", "must be a name of 1 to 1024 characters")
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_STREAMED_CATALOG_BYTES:
                raise Refusal(
                    "body", f"must be at most {MAX_STREAMED_CATALOG_BYTES} bytes", status=413
                )
            spool.write(chunk)
        spool.seek(0)
        return await catalog.apply_stream(spool, source)


def catalog_endpoints(catalog: CatalogOperations) -> list[Endpoint]:
    """The catalog's endpoints over ``catalog``."""

    async def apply_document(request: Request) -> Response:
        """Apply a whole catalog document.
        ---
        summary: Validate a catalog document (YAML or JSON text) and upsert it, all or nothing
        description: >-
          What `marketmeter catalog apply` does with a file; every new SaaS agreement gets a
          registration token. A document with problems is refused with the whole problem list.
          As a JSON object (`document`, `source`) the document is held at once (at most 4 MiB,
          20,000 entries); sent as the body itself (`application/yaml`; a JSON catalog is YAML)
          it is streamed: read, checked and written entry by entry in one transaction, of any
          size up to 1 GiB and 2,000,000 entries (the bulk form; `source` in the query).
        tags: [catalog]
        parameters:
          - name: source
            in: query
            required: false
            description: A name for the document in messages (the bulk form).
            schema: {type: string, minLength: 1, maxLength: 1024}
        requestBody:
          required: true
          content:
            application/json: {schema: {$ref: "#/components/schemas/CatalogDocument"}}
            application/yaml: {schema: {type: string, format: binary}}
        responses:
          "200":
            description: What was applied
            content: {application/json: {schema: {$ref: "#/components/schemas/CatalogApplied"}}}
          "400": {$ref: "#/components/responses/BadInput"}
        """
        if streamed_catalog(request.headers.get("content-type")):
            return answer(await _apply_streamed(catalog, request))
        document = strict_object(await body(request, {}))
        check_known(document, ("document", "source"))
        text, source = document.get("document"), document.get("source", "catalog")
        if not isinstance(text, str):
            raise Refusal("document", "must be the catalog's YAML or JSON text")
        if not isinstance(source, str) or not 0 < len(source) <= 1024:
            raise Refusal("source", "must be a name of 1 to 1024 characters")
        return answer(await catalog.apply(text, source))

    def account_endpoints(kind: AccountKind[Any]) -> list[Endpoint]:
        """The endpoints of one kind of account: the collection, an account, and its keys."""

        async def list_accounts(request: Request) -> Response:
            return answer(await catalog.accounts(kind))

        async def create_account(request: Request) -> Response:
            return answer(await catalog.add_account(kind, await entry(request, kind.name)), 201)

        async def read_account(request: Request) -> Response:
            return answer(await catalog.account(kind, request.path_params["accountId"]))

        async def replace_account(request: Request) -> Response:
            account = request.path_params["accountId"]
            given = await entry(request, kind.name)
            return answer(await catalog.replace_account(kind, account, given))

        async def delete_account(request: Request) -> Response:
            await catalog.remove_account(kind, request.path_params["accountId"])
            return no_content()

        async def add_account_key(request: Request) -> Response:
            account = request.path_params["accountId"]
            given = strict_object(await body(request, {}))
            return answer(await catalog.add_key(kind, account, given), 201)

        async def delete_account_key(request: Request) -> Response:
            params = request.path_params
            await catalog.remove_key(kind, params["accountId"], params["accessKeyId"])
            return no_content()

        def operation(name: str, handler: Handler) -> Handler:
            handler.__name__ = _fill(kind, name)
            handler.__doc__ = _fill(kind, _ACCOUNT_DOCS[name])
            return handler

        many, one = f"/{kind.collection}", f"/{kind.collection}/{{accountId}}"
        return [
            Endpoint(many, "GET", operation("list_@{kind}s", list_accounts)),
            Endpoint(many, "POST", operation("create_@kind", create_account)),
            Endpoint(one, "GET", operation("read_@kind", read_account)),
            Endpoint(one, "PUT", operation("replace_@kind", replace_account)),
            Endpoint(one, "DELETE", operation("delete_@kind", delete_account)),
            Endpoint(f"{one}/keys", "POST", operation("add_@{kind}_key", add_account_key)),
            Endpoint(
                f"{one}/keys/{{accessKeyId}}",
                "DELETE",
                operation("delete_@{kind}_key", delete_account_key),
            ),
        ]

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
        return answer(await catalog.products())

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
        return answer(await catalog.add_product(await entry(request, "product")), 201)

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
        return answer(await catalog.product(request.path_params["productCode"]))

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
        return answer(await catalog.replace_product(code, await entry(request, "product")))

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
        await catalog.remove_product(request.path_params["productCode"])
        return no_content()

    async def list_offers(request: Request) -> Response:
        """List the offers.
        ---
        summary: List the offers with their terms (docs/catalog.md, "Offers")
        tags: [catalog]
        responses:
          "200":
            description: Every offer, by offer id
            content: {application/json: {schema: {$ref: "#/components/schemas/OfferList"}}}
        """
        return answer(await catalog.offers())

    async def create_offer(request: Request) -> Response:
        """Add an offer.
        ---
        summary: Add an offer (a catalog file's offer entry, its terms included)
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/OfferEntry"}}}
        responses:
          "201":
            description: The new offer
            content: {application/json: {schema: {$ref: "#/components/schemas/OfferEntry"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        return answer(await catalog.add_offer(await entry(request, "offer")), 201)

    async def read_offer(request: Request) -> Response:
        """Show an offer.
        ---
        summary: Show an offer and its terms
        tags: [catalog]
        responses:
          "200":
            description: The offer
            content: {application/json: {schema: {$ref: "#/components/schemas/OfferEntry"}}}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        return answer(await catalog.offer(request.path_params["offerId"]))

    async def replace_offer(request: Request) -> Response:
        """Replace an offer.
        ---
        summary: Replace an offer's entry, its terms included
        tags: [catalog]
        requestBody:
          required: true
          content: {application/json: {schema: {$ref: "#/components/schemas/OfferEntry"}}}
        responses:
          "200":
            description: The offer as it is now
            content: {application/json: {schema: {$ref: "#/components/schemas/OfferEntry"}}}
          "400": {$ref: "#/components/responses/BadInput"}
          "404": {$ref: "#/components/responses/NotFound"}
        """
        offer_id = request.path_params["offerId"]
        return answer(await catalog.replace_offer(offer_id, await entry(request, "offer")))

    async def delete_offer(request: Request) -> Response:
        """Delete an offer.
        ---
        summary: Delete an offer (not while agreements were made on it)
        tags: [catalog]
        responses:
          "204": {description: Deleted}
          "404": {$ref: "#/components/responses/NotFound"}
          "409": {$ref: "#/components/responses/Conflict"}
        """
        await catalog.remove_offer(request.path_params["offerId"])
        return no_content()

    return [
        *account_endpoints(SELLERS),
        Endpoint("/products", "GET", list_products),
        Endpoint("/products", "POST", create_product),
        Endpoint("/products/{productCode}", "GET", read_product),
        Endpoint("/products/{productCode}", "PUT", replace_product),
        Endpoint("/products/{productCode}", "DELETE", delete_product),
        *account_endpoints(BUYERS),
        Endpoint("/offers", "GET", list_offers),
        Endpoint("/offers", "POST", create_offer),
        Endpoint("/offers/{offerId}", "GET", read_offer),
        Endpoint("/offers/{offerId}", "PUT", replace_offer),
        Endpoint("/offers/{offerId}", "DELETE", delete_offer),
        Endpoint("/catalog", "POST", apply_document),
    ]
