"""The catalog directory ``serve`` applies at start (``--catalog-dir``): its files in name
order as one catalog, later entries replacing earlier ones, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketmeter.catalog.directory import catalog_files, load_catalog_files, load_startup_files
from marketmeter.catalog.loader import CatalogError
from marketmeter.catalog.model import Catalog, Seller

SELLER = 'sellers:\n  - {account_id: "111122223333", name: First}\n'
PRODUCT = (
    "products:\n"
    '  - {product_code: prod-one, seller: "111122223333", kind: saas, dimensions: [users]}\n'
)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_catalog_files_are_the_yaml_yml_and_json_files_in_name_order(tmp_path: Path) -> None:
    for name in ["20-b.yml", "10-a.yaml", "30-c.json", "README.md", ".hidden.yaml", "x.YAML"]:
        write(tmp_path, name, "{}\n")
    (tmp_path / "40-dir.yaml").mkdir()

    assert [p.name for p in catalog_files(tmp_path)] == [
        "10-a.yaml",
        "20-b.yml",
        "30-c.json",
        "x.YAML",
    ]


def test_a_later_file_refers_to_an_earlier_one_and_replaces_its_entries(tmp_path: Path) -> None:
    files = [
        write(tmp_path, "10-seller.yaml", SELLER),
        write(tmp_path, "20-product.yaml", PRODUCT),
        write(tmp_path, "30-rename.json", '{"sellers": [{"account_id": "111122223333"}]}'),
    ]

    catalog = load_catalog_files(files)

    assert catalog.sellers == (Seller(account_id="111122223333", name=""),)
    assert [p.product_code for p in catalog.products] == ["prod-one"]


def test_a_file_may_refer_to_the_catalog_already_in_the_ledger(tmp_path: Path) -> None:
    existing = Catalog(sellers=(Seller(account_id="111122223333"),))

    catalog = load_catalog_files([write(tmp_path, "p.yaml", PRODUCT)], existing)

    assert catalog.sellers == ()
    assert [p.seller_account_id for p in catalog.products] == ["111122223333"]


def test_every_problem_of_every_file_is_listed_and_nothing_is_returned(tmp_path: Path) -> None:
    files = [
        write(tmp_path, "10-product-first.yaml", PRODUCT),
        write(tmp_path, "20-seller.yaml", SELLER),
        write(tmp_path, "30-bad.yaml", 'sellers:\n  - {account_id: "12"}\n'),
    ]

    with pytest.raises(CatalogError) as raised:
        load_catalog_files(files, source="seed")

    assert str(raised.value) == (
        "seed: 2 problem(s), nothing applied:\n"
        "  - 10-product-first.yaml: products[0] (prod-one): seller: no seller with account_id "
        "111122223333\n"
        "  - 30-bad.yaml: sellers[0] (12): account_id: String should match pattern "
        "'^[0-9]{12}$'"
    )


def test_startup_files_are_the_catalog_then_the_directory(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    write(seed, "product.yaml", PRODUCT)
    catalog = write(tmp_path, "catalog.yaml", SELLER)

    loaded = load_startup_files(catalog, seed, Catalog())

    assert loaded is not None
    parsed, source = loaded
    assert source == f"{catalog} and {seed} (1 file)"
    assert [s.account_id for s in parsed.sellers] == ["111122223333"]
    assert [p.product_code for p in parsed.products] == ["prod-one"]


def test_an_empty_directory_and_no_catalog_apply_nothing(tmp_path: Path) -> None:
    assert load_startup_files(None, tmp_path, Catalog()) is None
    assert load_startup_files(None, None, Catalog()) is None


def test_a_catalog_alone_is_read_as_catalog_apply_reads_it(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", PRODUCT)

    with pytest.raises(CatalogError) as raised:
        load_startup_files(path, tmp_path / "empty-is-missing", Catalog())
    assert raised.value.problems == [
        "cannot read the directory: No such file or directory",
    ]

    with pytest.raises(CatalogError) as raised:
        load_startup_files(path, None, Catalog())
    assert str(raised.value) == (
        f"{path}: 1 problem(s), nothing applied:\n"
        "  - products[0] (prod-one): seller: no seller with account_id 111122223333"
    )
