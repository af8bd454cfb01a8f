"""Keeps the layers pointing one way (docs/architecture.md): the whole layer map, each package
with what it may import of marketmeter, so a back-edge anywhere fails here."""

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


# The layer map: what each part of marketmeter may import of marketmeter (a module, or a
# package and everything in it). Front ends (admin, cli, testing) → operator → rules
# (metering, lifecycle, testbench) → store; the AWS wire (protocol) → rules; servicemodel, config
# and the leaves (errors, refusal, catalog.model, the types modules) under everything.
# "marketmeter" alone is the package root (its version).
LEAVES = {
    "errors": set(),
    "refusal": set(),
    "catalog/model": set(),
    "catalog/contracts": set(),
    "metering/types": set(),
    "lifecycle/types": {"marketmeter.catalog.model", "marketmeter.metering.types"},
    "protocol/hooks": {"marketmeter.errors", "marketmeter.metering.types"},
}
LAYER_MAP: dict[str, set[str]] = {
    "config": {"marketmeter.metering.windows"},
    "servicemodel": {"marketmeter.servicemodel", "marketmeter.errors"},
    "catalog": {"marketmeter.catalog", "marketmeter.servicemodel", "marketmeter.errors"},
    # the Agreement API's rules: no HTTP, no SQL
    "agreements": {
        "marketmeter.agreements",
        "marketmeter.catalog.contracts",
        "marketmeter.catalog.model",
        "marketmeter.errors",
        "marketmeter.metering.clock",
        "marketmeter.metering.types",
        "marketmeter.store.base",
    },
    "metering": {
        "marketmeter.metering",
        "marketmeter.catalog.model",
        "marketmeter.config",
        "marketmeter.errors",
        "marketmeter.refusal",
        "marketmeter.store.base",
    },
    "entitlement": {
        "marketmeter.entitlement",
        "marketmeter.catalog.model",
        "marketmeter.errors",
        "marketmeter.metering.clock",
        "marketmeter.metering.types",
        "marketmeter.store.base",
    },
    "lifecycle": {
        "marketmeter",
        "marketmeter.lifecycle",
        "marketmeter.catalog.contracts",
        "marketmeter.catalog.model",
        "marketmeter.metering",
        "marketmeter.refusal",
        "marketmeter.store.base",
    },
    "store": {
        "marketmeter.store",
        "marketmeter.catalog",
        "marketmeter.metering.types",
        "marketmeter.metering.quantities",
        "marketmeter.lifecycle.types",
    },
    "protocol": {
        "marketmeter",
        "marketmeter.agreements",
        "marketmeter.protocol",
        "marketmeter.servicemodel",
        "marketmeter.metering",
        "marketmeter.entitlement",
        "marketmeter.catalog.model",
        "marketmeter.config",
        "marketmeter.errors",
    },
    "testbench": {
        "marketmeter.testbench",
        "marketmeter.config",
        "marketmeter.errors",
        "marketmeter.metering.types",
        "marketmeter.protocol.hooks",
        "marketmeter.refusal",
        "marketmeter.servicemodel",
    },
    "operator": {
        "marketmeter",
        "marketmeter.operator",
        "marketmeter.catalog",
        "marketmeter.config",
        "marketmeter.lifecycle",
        "marketmeter.metering",
        "marketmeter.refusal",
        "marketmeter.servicemodel",
        "marketmeter.store.base",
        "marketmeter.testbench",
    },
    "admin": {
        "marketmeter",
        "marketmeter.admin",
        "marketmeter.operator",
        "marketmeter.refusal",
        "marketmeter.catalog.loader",  # the entries' pydantic models, for the OpenAPI document
    },
    "cli": {
        "marketmeter",
        "marketmeter.cli",
        "marketmeter.operator",
        "marketmeter.refusal",
        "marketmeter.config",
        "marketmeter.catalog.loader",  # reading a catalog file
        "marketmeter.lifecycle.registration_page",  # subscribe plays the buyer's browser
        "marketmeter.metering.clock",
        "marketmeter.metering.quantities",
        "marketmeter.metering.windows",
        "marketmeter.store.base",
        "marketmeter.store.open",
        "marketmeter.store.copy",
        "marketmeter.server",  # serve runs it
        "marketmeter.cluster.coordinator",  # serve --workers N runs it
        "marketmeter.observe.single_process",  # serve sets prometheus-client up first
        "marketmeter.testing.admin_client",  # the admin API's client, against a server
    },
    # metrics, call logs: of the calls the wire layer answers and the store's writes
    "observe": {"marketmeter.observe", "marketmeter.protocol.hooks", "marketmeter.store.base"},
    # the dashboard: pages over the operator, behind the admin API's browser guard
    "ui": {
        "marketmeter",
        "marketmeter.ui",
        "marketmeter.operator",
        "marketmeter.refusal",
        "marketmeter.admin.browser_guard",
    },
    "testing": {"marketmeter.testing", "marketmeter.config", "marketmeter.server"},
    # the seller's metering client runs in production against AWS: nothing of the server
    "client": {"marketmeter.client"},
    # the container image's HEALTHCHECK: serve's address from the environment, nothing else
    "healthcheck": {"marketmeter.config"},
}
# assembly: the app and the server wire every layer together; the entry points start the CLI
ASSEMBLY = {"app", "server", "cluster", "__init__", "__main__"}


def part_of(path: Path) -> str:
    """The layer-map entry of a module: a leaf module, or its top-level package."""
    relative = path.relative_to(SRC).with_suffix("")
    key = "/".join(relative.parts)
    if key in LEAVES:
        return key
    return relative.parts[0]


def allowed(name: str, permitted: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in permitted) or (
        name == "marketmeter" and "marketmeter" in permitted
    )


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_every_module_keeps_to_the_layer_map(path: Path) -> None:
    part = part_of(path)
    ours = marketmeter_imports(path)
    if part in ASSEMBLY:
        return
    assert part in LEAVES or part in LAYER_MAP, f"{part} is missing from the layer map"
    permitted = LEAVES[part] if part in LEAVES else LAYER_MAP[part]
    bad = {name for name in ours if not allowed(name, permitted)}
    assert bad == set()


def marketmeter_imports(path: Path) -> set[str]:
    """The marketmeter modules ``path`` imports (``from marketmeter import x`` is
    ``marketmeter.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "marketmeter")
        elif isinstance(node, ast.ImportFrom) and node.module == "marketmeter":
            found.update(f"marketmeter.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("marketmeter."):
            found.add(node.module or "")
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_itself_back() -> None:
    """No cycle of modules: each import, followed through, never leads back."""
    graph = {module_name(p): marketmeter_imports(p) for p in SRC.rglob("*.py")}
    graph = {m: {i for i in imported if i in graph and i != m} for m, imported in graph.items()}
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        if module in trail:
            cycle = " -> ".join((*trail[trail.index(module) :], module))
            raise AssertionError(f"import cycle: {cycle}")
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, (*trail, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
