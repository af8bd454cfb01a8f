"""The entries of a catalog file as pydantic models (unknown fields refused, so typos
surface), the bounds every catalog document is held to (docs/catalog.md lists them) and
``CatalogError``, the problem list of a catalog that cannot be applied."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_CHARS",
    "MAX_ENTRIES",
    "MAX_NODES",
    "MAX_NUL_PROBLEMS",
    "MAX_STREAM_ENTRIES",
    "SECTIONS",
    "AccessKeyEntry",
    "AgreementEntry",
    "BuyerEntry",
    "CatalogEntry",
    "CatalogError",
    "ProductEntry",
    "SellerEntry",
]

AccountId = str

MAX_DOCUMENT_CHARS = 4 * 1024 * 1024  # a document held at once, in characters
MAX_DEPTH = 16  # nesting levels (a catalog file needs 5: file, section, entry, keys, key)
MAX_NODES = 500_000  # values in a document held at once (in each entry of a streamed one),
# each alias counted every time it is used
MAX_ENTRIES = 20_000  # entries of a document held at once (an admin API body), all sections
MAX_STREAM_ENTRIES = 2_000_000  # entries of a file or body read entry by entry (streamed)
MAX_DIMENSIONS = 1_000  # per product
MAX_NOTIFICATION_URLS = 100  # per product
MAX_NAME = 1_024  # characters of a seller's, product's or buyer's name
MAX_SECRET = 1_024  # characters of a secret access key
MAX_URL = 2_048  # characters of a registration or notification URL
MAX_IDENTIFIER = 1_024  # characters of a product code, dimension or CustomerIdentifier (the
# service model's own limit, 255, is checked next, with its own message)
MAX_NUL_PROBLEMS = 20  # NUL characters reported (the rest are not listed)

Name = Annotated[str, Field(max_length=MAX_NAME)]
Url = Annotated[str, Field(max_length=MAX_URL, pattern=r"^https?://")]
Identifier = Annotated[str, Field(max_length=MAX_IDENTIFIER)]


class CatalogError(Exception):
    """A catalog file that cannot be applied; ``problems`` name entry and field each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing applied:\n{lines}")


class CatalogEntry(BaseModel):
    """An entry of a catalog file; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessKeyEntry(CatalogEntry):
    """An access key pair of a seller or a buyer."""

    access_key_id: str = Field(min_length=16, max_length=128, pattern=r"^[A-Z0-9]+$")
    secret_access_key: str = Field(min_length=1, max_length=MAX_SECRET)


class SellerEntry(CatalogEntry):
    """A seller account (``sellers:``)."""

    account_id: AccountId = Field(pattern=r"^[0-9]{12}$")
    name: Name = ""
    access_keys: list[AccessKeyEntry] = []


class ProductEntry(CatalogEntry):
    """A product and its dimensions (``products:``)."""

    product_code: Identifier
    seller: AccountId
    kind: Literal["saas", "ami", "container"]
    dimensions: list[Identifier] = Field(min_length=1, max_length=MAX_DIMENSIONS)
    integration: Literal["legacy", "concurrent-agreements"] = "legacy"
    name: Name = ""
    registration_url: Url | None = None
    per_request_metering: bool = False
    notification_urls: list[Url] = Field(default=[], max_length=MAX_NOTIFICATION_URLS)


class BuyerEntry(CatalogEntry):
    """A buyer account (``buyers:``)."""

    account_id: AccountId = Field(pattern=r"^[0-9]{12}$")
    customer_identifier: Identifier | None = None
    name: Name = ""
    access_keys: list[AccessKeyEntry] = []


class AgreementEntry(CatalogEntry):
    """A buyer's agreement for a product (``agreements:``)."""

    buyer: AccountId
    product: str
    license_arn: str | None = None
    state: Literal["subscribed", "unsubscribe-pending", "unsubscribed", "suspended"] = "subscribed"
    start: datetime | None = None
    end: datetime | None = None
    free_trial: bool = False


# The sections of a catalog file, in the order they are checked (and written).
SECTIONS: dict[str, type[CatalogEntry]] = {
    "sellers": SellerEntry,
    "products": ProductEntry,
    "buyers": BuyerEntry,
    "agreements": AgreementEntry,
}
