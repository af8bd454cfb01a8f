"""Keeps the layers pointing one way: protocol → metering → store.base (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "marketmeter"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("metering"), ids=lambda p: p.name)
def test_rules_know_no_http_no_sql_no_wire(path: Path) -> None:
    forbidden = (
        "marketmeter.protocol",
        "marketmeter.admin",
        "marketmeter.store.sqlite",
        "marketmeter.store.postgres",
        "sqlite3",
        "psycopg",
        "starlette",
        "uvicorn",
        "orjson",
        "botocore",
    )
    bad = {name for name in imports_of(path) if name.startswith(forbidden)}
    assert bad == set()


@pytest.mark.parametrize("path", modules("protocol"), ids=lambda p: p.name)
def test_the_wire_layer_reaches_no_store_backend(path: Path) -> None:
    bad = {n for n in imports_of(path) if n.startswith(("marketmeter.store", "sqlite3", "psycopg"))}
    assert bad == set()


@pytest.mark.parametrize("name", ["errors.py", "metering/types.py", "catalog/model.py"])
def test_leaf_modules_import_nothing_of_ours(name: str) -> None:
    assert {n for n in imports_of(SRC / name) if n.startswith("marketmeter")} == set()


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_every_module_says_its_role(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no module docstring"


# What code outside store/ may import of it: the contract (typed methods and their records),
# opening a store, and copying a ledger between two. The SQL, the connections and the backends
# stay inside (no callable over a connection leaves store/).
STORE_CONTRACT = {"marketmeter.store.base", "marketmeter.store.open", "marketmeter.store.copy"}


def store_modules_imported(path: Path) -> set[str]:
    """The ``marketmeter.store`` modules ``path`` imports, ``from marketmeter.store import x``
    counted as ``marketmeter.store.x``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("marketmeter.store"))
        elif isinstance(node, ast.ImportFrom) and node.module == "marketmeter.store":
            found.update(f"marketmeter.store.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "marketmeter.store."
        ):
            found.add(node.module or "")
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(SRC.rglob("*.py")) if p.relative_to(SRC).parts[0] != "store"],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_only_the_store_contract_leaves_the_store(path: Path) -> None:
    assert store_modules_imported(path) - STORE_CONTRACT == set()
