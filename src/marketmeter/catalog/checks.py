"""Checking a catalog one entry at a time: fields (the pydantic entry models), the service
model's constraints on identifiers, and references (a product's seller, an agreement's buyer
and product) resolved against the entries before it plus what the ledger already holds
(``KnownKeys``: keys only, never the stored entries themselves).

``CatalogChecker`` takes the entries in the order a document lists them and hands back each
one it found nothing wrong with, as a domain value to write, as soon as everything it refers
to is known: in a file that lists sellers, products, buyers and agreements in that order, at
once; an entry that refers to one listed later is held until ``finish``. ``finish`` returns
every problem in the order the loader always listed them: unknown sections, then each
section's field problems (sellers, products, buyers, agreements; entry by entry), then each
section's problems of meaning, each naming its entry and field, e.g.::

    products[1] (demo-saas): kind: Input should be 'saas', 'ami' or 'container'

What the checker keeps grows with the number of keys (account ids, product codes, LicenseArns,
access key ids, CustomerIdentifiers), not with the entries' other fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from marketmeter.catalog.entries import (
    SECTIONS,
    AccessKeyEntry,
    AgreementEntry,
    BuyerEntry,
    ProductEntry,
    SellerEntry,
)
from marketmeter.catalog.model import (
    LICENSE_ARN_FORMAT,
    LICENSE_ISSUER_ACCOUNT,
    AccessKey,
    Agreement,
    AgreementState,
    Buyer,
    Catalog,
    Integration,
    Product,
    ProductKind,
    Seller,
    license_arn_forms,
)
from marketmeter.servicemodel.spec import service_model
from marketmeter.servicemodel.validation import Checker, Violations, compile_shape

__all__ = ["CatalogChecker", "Entry", "KnownKeys"]

Entry = Seller | Product | Buyer | Agreement
_ORDER = {section: position for position, section in enumerate(SECTIONS)}


@dataclass
class KnownKeys:
    """What the stored catalog holds that a new entry may refer to or clash with."""

    sellers: set[str] = field(default_factory=set)
    products: dict[str, ProductKind] = field(default_factory=dict)  # product code: kind
    buyers: set[str] = field(default_factory=set)
    key_owners: dict[str, str] = field(default_factory=dict)  # access key id: account id
    identifier_owners: dict[str, str] = field(default_factory=dict)  # CustomerIdentifier: buyer
    license_arns: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, catalog: Catalog) -> KnownKeys:
        owners: list[Seller | Buyer] = [*catalog.sellers, *catalog.buyers]
        return cls(
            sellers={s.account_id for s in catalog.sellers},
            products={p.product_code: p.kind for p in catalog.products},
            buyers={b.account_id for b in catalog.buyers},
            key_owners={k.access_key_id: o.account_id for o in owners for k in o.access_keys},
            identifier_owners={
                b.customer_identifier: b.account_id for b in catalog.buyers if b.customer_identifier
            },
            license_arns={a.license_arn for a in catalog.agreements},
        )


# A problem's place in the list: (phase: 0 unknown section, 1 fields, 2 meaning; section's
# position; entry index; the problem's position among its entry's).
_Key = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Reference:
    """A reference to an entry of ``section`` that may still be listed later."""

    section: str
    value: str
    problem: str


class CatalogChecker:
    """Checks entries one by one against ``known`` (see the module's docstring), which it
    grows with the catalog's own keys (its ``license_arns`` stay the ledger's)."""

    def __init__(self, known: KnownKeys) -> None:
        self._known = known
        self._problems: list[tuple[_Key, str]] = []
        self._closed: set[str] = set()
        self._seen_sections: set[str] = set()
        # grown in place: the known keys and the catalog's so far
        self._sellers = known.sellers
        self._products = known.products
        self._buyers = known.buyers
        self._key_owners = known.key_owners
        self._identifier_owners = known.identifier_owners
        self._file_sellers: set[str] = set()
        self._file_products: set[str] = set()
        self._file_buyers: dict[str, int] = {}  # account id: index of its first entry
        self._flagged_buyers: set[str] = set()
        self._file_arns: set[str] = set()
        self._pending: list[tuple[Entry, list[tuple[_Key, _Reference]]]] = []

    @property
    def failed(self) -> bool:
        """True once a problem is known (nothing of the catalog will be applied)."""
        return bool(self._problems)

    @property
    def product_kinds(self) -> dict[str, ProductKind]:
        """Every product's kind: the ledger's and the catalog's so far."""
        return self._products

    def _problem(self, key: _Key, message: str) -> None:
        self._problems.append((key, message))

    # --- sections -------------------------------------------------------------------------

    def section(self, name: str, value: Any = None, is_list: bool = True) -> bool:
        """A section starts (``is_list``) or is a whole value that is not a list; True if its
        entries are to be checked."""
        if name not in SECTIONS:
            self._problem(
                (0, 0, 0, len(self._problems)),
                f"{name}: unknown section; known: {', '.join(SECTIONS)}",
            )
            return False
        if name in self._seen_sections:
            self._problem((1, _ORDER[name], -1, 0), f"{name}: listed twice")
        self._seen_sections.add(name)
        if not is_list:
            if value:
                self._problem((1, _ORDER[name], -1, 0), f"{name}: must be a list")
            self._closed.add(name)
            return False
        return True

    def close(self, name: str) -> None:
        """The section's list ended."""
        self._closed.add(name)

    # --- entries --------------------------------------------------------------------------

    def entry(self, section: str, index: int, raw: Any) -> Entry | None:
        """Check one entry; the domain value if it can be written now."""
        model = SECTIONS[section]
        try:
            parsed = model.model_validate(raw)
        except ValidationError as error:
            order = _ORDER[section]
            label = _label(raw)
            for seq, detail in enumerate(error.errors()):
                self._problem((1, order, index, seq), _describe(section, index, label, detail))
            return None
        problems: list[str | _Reference] = []
        value: Entry
        if isinstance(parsed, SellerEntry):
            value = self._seller(index, parsed, problems)
        elif isinstance(parsed, ProductEntry):
            value = self._product(index, parsed, problems)
        elif isinstance(parsed, BuyerEntry):
            value = self._buyer(index, parsed, problems)
        else:
            assert isinstance(parsed, AgreementEntry)
            value = self._agreement(index, parsed, problems)
        return self._decide(_ORDER[section], index, value, problems)

    def _decide(
        self, order: int, index: int, value: Entry, problems: list[str | _Reference]
    ) -> Entry | None:
        if not problems:
            return None if self._problems else value
        waiting: list[tuple[_Key, _Reference]] = []
        for seq, problem in enumerate(problems):
            key = (2, order, index, seq)
            if isinstance(problem, str):
                self._problem(key, problem)
            elif not self._resolved(problem):
                if problem.section in self._closed:
                    self._problem(key, problem.problem)
                else:
                    waiting.append((key, problem))
        if waiting:
            self._pending.append((value, waiting))
            return None
        return None if self._problems else value

    def _resolved(self, reference: _Reference) -> bool:
        if reference.section == "sellers":
            return reference.value in self._sellers
        if reference.section == "buyers":
            return reference.value in self._buyers
        return reference.value in self._products

    def finish(self) -> tuple[list[str], list[Entry]]:
        """Every problem, in order, and the entries held until now (when there is none)."""
        held: list[Entry] = []
        for value, waiting in self._pending:
            for key, reference in waiting:
                if not self._resolved(reference):
                    self._problem(key, reference.problem)
            held.append(value)
        # a buyer listed before a seller with its account id
        order = _ORDER["buyers"]
        for account in sorted(self._file_sellers & self._file_buyers.keys()):
            if account not in self._flagged_buyers:
                index = self._file_buyers[account]
                self._problem((2, order, index, -1), _buyer_twice(index, account))
        self._problems.sort(key=lambda problem: problem[0])
        problems = [message for _, message in self._problems]
        return problems, ([] if problems else sorted(held, key=_write_order))

    # --- each section's meaning -----------------------------------------------------------

    def _claim_keys(
        self, where: str, account: str, keys: list[AccessKeyEntry], problems: list[str | Any]
    ) -> None:
        for i, key in enumerate(keys):
            owner = self._key_owners.setdefault(key.access_key_id, account)
            if owner != account:
                problems.append(
                    f"{where}: access_keys[{i}].access_key_id: {key.access_key_id} already "
                    f"belongs to account {owner}"
                )

    def _seller(self, i: int, s: SellerEntry, problems: list[str | _Reference]) -> Seller:
        where = f"sellers[{i}] ({s.account_id})"
        if s.account_id in self._file_sellers:
            problems.append(f"{where}: account_id: listed twice")
        self._file_sellers.add(s.account_id)
        self._sellers.add(s.account_id)
        self._claim_keys(where, s.account_id, s.access_keys, problems)
        return Seller(s.account_id, s.name, _keys(s.access_keys))

    def _product(self, i: int, p: ProductEntry, problems: list[str | _Reference]) -> Product:
        where = f"products[{i}] ({p.product_code})"
        _wire_check("ProductCode", p.product_code, f"{where}: product_code", problems)
        if not p.product_code:
            problems.append(f"{where}: product_code: must not be empty")
        if p.product_code in self._file_products:
            problems.append(f"{where}: product_code: listed twice")
        self._file_products.add(p.product_code)
        self._products[p.product_code] = ProductKind(p.kind)
        problems.append(
            _Reference(
                "sellers", p.seller, f"{where}: seller: no seller with account_id {p.seller}"
            )
        )
        if len(set(p.dimensions)) != len(p.dimensions):
            problems.append(f"{where}: dimensions: a dimension is listed twice")
        for j, dimension in enumerate(p.dimensions):
            _wire_check("UsageDimension", dimension, f"{where}: dimensions[{j}]", problems)
        return Product(
            product_code=p.product_code,
            seller_account_id=p.seller,
            kind=ProductKind(p.kind),
            dimensions=tuple(p.dimensions),
            integration=Integration(p.integration),
            name=p.name,
            registration_url=p.registration_url,
            per_request_metering=p.per_request_metering,
            notification_urls=tuple(p.notification_urls),
        )

    def _buyer(self, i: int, b: BuyerEntry, problems: list[str | _Reference]) -> Buyer:
        where = f"buyers[{i}] ({b.account_id})"
        if b.account_id in self._file_buyers or b.account_id in self._sellers:
            problems.append(_buyer_twice(i, b.account_id))
            self._flagged_buyers.add(b.account_id)
        self._file_buyers.setdefault(b.account_id, i)
        self._buyers.add(b.account_id)
        if b.customer_identifier is not None:
            _wire_check(
                "CustomerIdentifier",
                b.customer_identifier,
                f"{where}: customer_identifier",
                problems,
            )
            holder = self._identifier_owners.setdefault(b.customer_identifier, b.account_id)
            if holder != b.account_id or not b.customer_identifier:
                problems.append(
                    f"{where}: customer_identifier: {b.customer_identifier!r} is empty or "
                    f"already used by buyer {holder}"
                )
        self._claim_keys(where, b.account_id, b.access_keys, problems)
        return Buyer(b.account_id, b.customer_identifier, b.name, _keys(b.access_keys))

    def _agreement(self, i: int, a: AgreementEntry, problems: list[str | _Reference]) -> Agreement:
        start, end = _epoch(a.start), _epoch(a.end)
        arn = a.license_arn or _derived_license_arn(
            a.buyer, a.product, start, self._known.license_arns
        )
        where = f"agreements[{i}] ({a.buyer} × {a.product})"
        if a.buyer not in self._buyers:
            problems.append(
                _Reference("buyers", a.buyer, f"{where}: buyer: no buyer with account_id {a.buyer}")
            )
        if a.product not in self._products:
            problems.append(
                _Reference(
                    "products",
                    a.product,
                    f"{where}: product: no product with product_code {a.product}",
                )
            )
        if LICENSE_ARN_FORMAT.fullmatch(arn) is None:
            problems.append(
                f"{where}: license_arn: must look like "
                f"arn:aws:license-manager::{LICENSE_ISSUER_ACCOUNT}:license:l-<32 hex digits>"
            )
        if arn in self._file_arns:
            problems.append(f"{where}: license_arn: listed twice")
        self._file_arns.add(arn)
        if start is not None and end is not None and end <= start:
            problems.append(f"{where}: end: must be after start")
        return Agreement(arn, a.buyer, a.product, AgreementState(a.state), start, end, a.free_trial)


def _write_order(entry: Entry) -> int:
    """Sellers, products, buyers, agreements: what an entry refers to is written before it."""
    if isinstance(entry, Seller):
        return 0
    if isinstance(entry, Product):
        return 1
    return 2 if isinstance(entry, Buyer) else 3


def _buyer_twice(index: int, account: str) -> str:
    return f"buyers[{index}] ({account}): account_id: listed twice (buyers and sellers included)"


def _describe(section: str, index: int, label: str, error: Any) -> str:
    """A pydantic error as a problem: ``section[index] (label): field: message``."""
    where = f"{section}[{index}]{label}"
    field = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    parts = [part for part in (where, field) if part]
    return f"{': '.join(parts)}: {message}"


def _label(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    for key in ("product_code", "account_id", "license_arn"):
        if isinstance(entry.get(key), str | int):
            return f" ({entry[key]})"
    if "buyer" in entry and "product" in entry:
        return f" ({entry['buyer']} × {entry['product']})"
    return ""


@cache
def _shape_checker(shape_name: str) -> Checker:
    return compile_shape(service_model().shape_for(shape_name))


def _wire_check(shape_name: str, value: str, where: str, problems: list[str | _Reference]) -> None:
    """Check an identifier with the service model's own constraints for that shape."""
    violations = Violations()
    _shape_checker(shape_name)(value, where, violations)
    problems.extend(
        v.replace("Member must", "must")
        .replace(f" at '{where}'", "")
        .replace("Value", f"{where}:", 1)
        for v in violations
    )


def _derived_license_arn(
    buyer: str, product: str, start: float | None, existing_arns: set[str]
) -> str:
    """The LicenseArn of an agreement the catalog gives none: AWS's form, unless the ledger
    already holds this agreement under the ARN earlier versions derived (buyer's account)."""
    arn, legacy = license_arn_forms(buyer, product, str(start))
    return legacy if legacy in existing_arns else arn


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _keys(entries: Iterable[AccessKeyEntry]) -> tuple[AccessKey, ...]:
    return tuple(AccessKey(k.access_key_id, k.secret_access_key) for k in entries)
