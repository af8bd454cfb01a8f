"""Reading a catalog document (YAML or JSON) into validated entries: held at once
(``load_catalog``, ``load_catalog_data``: an admin API body) or entry by entry
(``stream_catalog``, ``load_catalog_file``: a file, the admin API's bulk form; see
``catalog.stream``), both checked by ``catalog.checks`` with the same problems.

Fields are checked by pydantic models (``catalog.entries``; unknown fields refused, so typos
surface); identifiers that reach the wire (product codes, dimensions, customer identifiers) are
checked against the service model's own constraints; references (a product's seller, an
agreement's buyer and product) are resolved against the file plus the catalog already stored.
Every problem is reported at once, each naming its entry and field, e.g.::

    products[1] (demo-saas): kind: Input should be 'saas', 'ami' or 'container'

A file with any problem is not applied at all.

Sizes are bounded, far beyond any real catalog, so that a hostile or broken file is a problem
list rather than a traceback, a stalled server or a value PostgreSQL cannot store (the bounds
of ``catalog.entries``; docs/catalog.md lists them): the size of a document held at once, the
nesting depth and node count (of the document held at once, of each entry streamed; aliases
counted each time they are used), the entries of a document, the dimensions and
notification URLs of a product, the length of every name, secret, URL and identifier; and no
text may hold a NUL (U+0000), which SQLite would store and PostgreSQL cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from marketmeter.catalog.checks import CatalogChecker, Entry, KnownKeys
from marketmeter.catalog.entries import (
    MAX_DEPTH,
    MAX_DOCUMENT_CHARS,
    MAX_ENTRIES,
    MAX_NODES,
    MAX_NUL_PROBLEMS,
    MAX_STREAM_ENTRIES,
    SECTIONS,
    AccessKeyEntry,
    AgreementEntry,
    BuyerEntry,
    CatalogEntry,
    CatalogError,
    ConfigurationEntry,
    EntitlementEntry,
    OfferEntry,
    ProductEntry,
    SellerEntry,
    TargetEntry,
    stored_targets,
    target_entry,
)
from marketmeter.catalog.model import Agreement, Buyer, Catalog, Offer, Product, Seller
from marketmeter.catalog.stream import LOADER, NotAMapping, Reading, TooDeep, catalog_entries

__all__ = [
    "AccessKeyEntry",
    "AgreementEntry",
    "BuyerEntry",
    "CatalogEntry",
    "CatalogError",
    "ConfigurationEntry",
    "EntitlementEntry",
    "KnownKeys",
    "OfferEntry",
    "ProductEntry",
    "SellerEntry",
    "TargetEntry",
    "as_catalog",
    "load_catalog",
    "load_catalog_data",
    "load_catalog_file",
    "read_catalog_text",
    "stored_targets",
    "stream_catalog",
    "target_entry",
]


def read_catalog_text(path: str | Path) -> str:
    """A catalog file's text; ``CatalogError`` if it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogError(str(path), [f"cannot read the file: {error.strerror}"]) from error


def load_catalog_file(path: str | Path, existing: Catalog | None = None) -> Catalog:
    """Read and validate a catalog file, entry by entry (``stream_catalog``); raise
    ``CatalogError`` listing every problem."""
    try:
        with Path(path).open("rb") as stream:
            return as_catalog(
                stream_catalog(stream, KnownKeys.of(existing or Catalog()), str(path))
            )
    except OSError as error:
        raise CatalogError(str(path), [f"cannot read the file: {error.strerror}"]) from error


def as_catalog(entries: Iterable[Entry]) -> Catalog:
    """The entries as one ``Catalog``."""
    sellers, products, buyers, agreements, offers = [], [], [], [], []
    for entry in entries:
        if isinstance(entry, Seller):
            sellers.append(entry)
        elif isinstance(entry, Product):
            products.append(entry)
        elif isinstance(entry, Buyer):
            buyers.append(entry)
        elif isinstance(entry, Offer):
            offers.append(entry)
        else:
            assert isinstance(entry, Agreement)
            agreements.append(entry)
    return Catalog(tuple(sellers), tuple(products), tuple(buyers), tuple(agreements), tuple(offers))


def load_catalog(text: str, existing: Catalog | None = None, source: str = "catalog") -> Catalog:
    """Validate catalog YAML ``text``, held at once (at most ``MAX_DOCUMENT_CHARS``);
    references may point into ``existing``."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise CatalogError(source, [f"the document is longer than {MAX_DOCUMENT_CHARS} characters"])
    try:
        raw = yaml.load(text, Loader=LOADER)  # a safe loader
    except yaml.YAMLError as error:
        raise CatalogError(source, [f"not valid YAML: {error}"]) from error
    except RecursionError:
        raise CatalogError(source, [_too_deep()]) from None
    except (ValueError, TypeError, OverflowError) as error:  # a scalar its tag cannot hold
        raise CatalogError(source, [f"not valid YAML: {error}"]) from None
    return load_catalog_data(raw, existing, source)


def _too_deep() -> str:
    return f"the document nests deeper than {MAX_DEPTH} levels"


def _document_problems(
    raw: Any, depth: int = 1, path: str = "", nodes: int = MAX_NODES
) -> list[str]:
    """The value's shape against the bounds: depth (``raw`` at ``depth``), count of values,
    NUL characters; walked without recursion, stopping at the first bound exceeded."""
    problems: list[str] = []
    count = 0
    stack: list[tuple[Any, int, str]] = [(raw, depth, path)]
    while stack:
        value, depth, path = stack.pop()
        count += 1
        if count > nodes:
            return [f"the document has more than {nodes} values"]
        if depth > MAX_DEPTH:
            return [_too_deep()]
        if isinstance(value, str):
            if "\x00" in value and len(problems) < MAX_NUL_PROBLEMS:
                problems.append(f"{path or 'the document'}: must not contain NUL (U+0000)")
        elif isinstance(value, dict):
            for key, item in value.items():
                name = str(key)
                if "\x00" in name and len(problems) < MAX_NUL_PROBLEMS:
                    problems.append(f"{path or 'the document'}: a key must not contain NUL")
                    name = name.replace("\x00", "\\0")
                stack.append((item, depth + 1, f"{path}.{name[:64]}" if path else name[:64]))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
    return problems


def load_catalog_data(
    raw: Any, existing: Catalog | None = None, source: str = "catalog"
) -> Catalog:
    """Validate a catalog already read into Python values (YAML or JSON: a mapping of
    sections to lists of entries, at most ``MAX_ENTRIES``); references may point into
    ``existing``. The admin API checks one entry at a time this way
    (``{"products": [entry]}``)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CatalogError(source, [_NOT_A_MAPPING])
    problems = _document_problems(raw)
    if problems:
        raise CatalogError(source, problems)
    entries = sum(len(v) for v in raw.values() if isinstance(v, list))
    if entries > MAX_ENTRIES:
        raise CatalogError(source, [f"the file has {entries} entries, more than {MAX_ENTRIES}"])
    checker = CatalogChecker(KnownKeys.of(existing or Catalog()))
    checked: list[Entry] = []
    for section, value in raw.items():
        name = str(section)
        if not isinstance(value, list):
            checker.section(name, value, is_list=False)
            continue
        if checker.section(name):
            for index, entry in enumerate(value):
                ready = checker.entry(name, index, entry)
                if ready is not None:
                    checked.append(ready)
        checker.close(name)
    problems, held = checker.finish()
    if problems:
        raise CatalogError(source, problems)
    return as_catalog([*checked, *held])


_NOT_A_MAPPING = "the file must be a mapping with sellers, products, ..."


def _bounded(found: list[str], nul: list[str], source: str) -> None:
    """A bound passed (raised at once) or NUL characters (kept: listed at the end)."""
    if not found[0].endswith("(U+0000)") and "a key must not" not in found[0]:
        raise CatalogError(source, found)
    nul.extend(found[: MAX_NUL_PROBLEMS - len(nul)])


def stream_catalog(
    stream: str | bytes | IO[str] | IO[bytes],
    known: KnownKeys,
    source: str = "catalog",
    checker: CatalogChecker | None = None,
) -> Iterator[Entry]:
    """Validate the catalog document ``stream`` entry by entry (``catalog.stream``; at most
    ``MAX_STREAM_ENTRIES``, each entry's values bounded as a whole document's are) against
    ``known``, the ledger's keys: yields each entry as soon as it can be written (see
    ``catalog.checks``), and after the last one raises ``CatalogError`` listing every problem
    if there is any, so that a caller writing what it yields inside one transaction rolls it
    all back. ``checker``, when given, is the one used (its product kinds tell the caller
    which agreements are for SaaS products)."""
    checker = checker or CatalogChecker(known)
    reading = Reading(MAX_NODES)
    nul: list[str] = []
    count = 0
    section = None
    try:
        for name, index, value in catalog_entries(stream, SECTIONS, MAX_DEPTH, reading):
            if name != section and section is not None:
                checker.close(section)
                section = None
            if index is None:
                found = _document_problems(value, 2, name) if reading.suspect else []
                if found:
                    _bounded(found, nul, source)
                    continue
                checker.section(name, value, is_list=False)
                continue
            if index < 0:
                section = name if checker.section(name) else None
                continue
            count += 1
            if count > MAX_STREAM_ENTRIES:
                raise CatalogError(source, [f"the file has more than {MAX_STREAM_ENTRIES} entries"])
            # walked whole against the bounds only if building it met an alias or a NUL
            found = _document_problems(value, 3, f"{name}[{index}]") if reading.suspect else []
            if found:
                _bounded(found, nul, source)
                continue
            if section is None or nul:
                continue
            ready = checker.entry(name, index, value)
            if ready is not None:
                yield ready
    except yaml.YAMLError as error:
        raise CatalogError(source, [f"not valid YAML: {error}"]) from error
    except NotAMapping:
        raise CatalogError(source, [_NOT_A_MAPPING]) from None
    except TooDeep:
        raise CatalogError(source, [_too_deep()]) from None
    if section is not None:
        checker.close(section)
    if nul:
        raise CatalogError(source, nul)
    problems, held = checker.finish()
    if problems:
        raise CatalogError(source, problems)
    yield from held
