"""The catalog ``serve`` applies at start: ``--catalog`` and the files of ``--catalog-dir``.

A catalog directory is the container convention for seeding (mount files at ``/catalog``): its
``*.yaml``, ``*.yml`` and ``*.json`` files, hidden ones excepted, are applied in name order after
``--catalog``, as one catalog: each file may refer to what the ledger and the files before it
define, a later entry with the same key (account id, product code, license ARN) replaces an
earlier one, and a problem in any file applies none of them. The problems of every file are
listed at once, each prefixed with its file's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from marketmeter.catalog.loader import CatalogError, load_catalog_file
from marketmeter.catalog.model import Catalog

__all__ = [
    "CATALOG_SUFFIXES",
    "catalog_files",
    "load_catalog_files",
    "load_startup_files",
    "merge_catalogs",
]

CATALOG_SUFFIXES = (".yaml", ".yml", ".json")

T = TypeVar("T")


def catalog_files(directory: Path) -> list[Path]:
    """The catalog files of ``directory`` in name order (not its subdirectories)."""
    try:
        entries = list(directory.iterdir())
    except OSError as error:
        reason = error.strerror or str(error)
        raise CatalogError(str(directory), [f"cannot read the directory: {reason}"]) from error
    return sorted(
        (
            path
            for path in entries
            if path.suffix.lower() in CATALOG_SUFFIXES
            and not path.name.startswith(".")
            and path.is_file()
        ),
        key=lambda path: path.name,
    )


def load_catalog_files(
    paths: Sequence[Path], existing: Catalog | None = None, source: str = "catalog"
) -> Catalog:
    """Validate ``paths`` in order as one catalog (see the module's docstring); raise
    ``CatalogError`` (``source``) listing every problem of every file."""
    base = existing or Catalog()
    combined = Catalog()
    problems: list[str] = []
    for path in paths:
        try:
            parsed = load_catalog_file(path, merge_catalogs(base, combined))
        except CatalogError as error:
            problems.extend(f"{path.name}: {problem}" for problem in error.problems)
            continue
        combined = merge_catalogs(combined, parsed)
    if problems:
        raise CatalogError(source, problems)
    return combined


def load_startup_files(
    catalog: Path | None, catalog_dir: Path | None, existing: Catalog
) -> tuple[Catalog, str] | None:
    """What ``serve`` applies at start and a description of where it came from, or ``None``
    when there is nothing to apply (no ``--catalog`` and no catalog file in ``--catalog-dir``).
    ``--catalog`` alone is read exactly as ``marketmeter catalog apply`` reads it."""
    files = catalog_files(catalog_dir) if catalog_dir is not None else []
    if catalog is not None and not files:
        return load_catalog_file(catalog, existing), str(catalog)
    if not files:
        return None
    assert catalog_dir is not None
    paths = [catalog, *files] if catalog is not None else files
    described = f"{catalog_dir} ({len(files)} file{'' if len(files) == 1 else 's'})"
    if catalog is not None:
        described = f"{catalog} and {described}"
    return load_catalog_files(paths, existing, source=described), described


def merge_catalogs(base: Catalog, update: Catalog) -> Catalog:
    """``base`` with every entry of ``update`` added, or replacing the one with its key."""
    return Catalog(
        _upsert(base.sellers, update.sellers, lambda seller: seller.account_id),
        _upsert(base.products, update.products, lambda product: product.product_code),
        _upsert(base.buyers, update.buyers, lambda buyer: buyer.account_id),
        _upsert(base.agreements, update.agreements, lambda agreement: agreement.license_arn),
    )


def _upsert(base: tuple[T, ...], update: tuple[T, ...], key: Callable[[T], str]) -> tuple[T, ...]:
    merged = {key(entry): entry for entry in base}
    merged.update((key(entry), entry) for entry in update)
    return tuple(merged.values())
