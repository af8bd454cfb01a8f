"""Hostile catalog documents sent to ``POST /_marketmeter/catalog`` of a real server: each is
the loader's problem list (a 400 naming ``catalog``), the same on both backends, and nothing
of it is applied."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

SELLER = 'sellers:\n  - {account_id: "123412341234", name: NAME}\n'


def _product(dimensions: list[str]) -> str:
    return (
        'sellers:\n  - {account_id: "123412341234"}\n'
        "products:\n"
        '  - {product_code: hostile, seller: "123412341234", kind: saas, dimensions: ['
        + ", ".join(dimensions)
        + "]}\n"
    )


def _problems(*problems: str) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"hostile: {len(problems)} problem(s), nothing applied:\n{lines}"


CASES = {
    "nested 500 levels": (
        "sellers: " + "[" * 500 + "]" * 500,
        "the document nests deeper than 16 levels",
    ),
    "nested block mappings": (
        "sellers:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)),
        "the document nests deeper than 16 levels",
    ),
    "a NUL in a name": (
        SELLER.replace("NAME", '"a\\0b"'),
        "sellers[0].name: must not contain NUL (U+0000)",
    ),
    "a 2 MB name": (
        SELLER.replace("NAME", "x" * 2_000_000),
        "sellers[0] (123412341234): name: String should have at most 1024 characters",
    ),
    "a 10 MB document": (
        SELLER.replace("NAME", "x" * 10_000_000),
        "the document is longer than 4194304 characters",
    ),
    "a 100 kB secret": (
        'sellers:\n  - {account_id: "123412341234", access_keys: [{access_key_id: '
        'AKIAHOSTILE000000001, secret_access_key: "' + "s" * 100_000 + '"}]}\n',
        "sellers[0] (123412341234): access_keys.0.secret_access_key: String should have at "
        "most 1024 characters",
    ),
    "200,000 dimensions": (
        _product([f"d{i}" for i in range(200_000)]),
        "products[0] (hostile): dimensions: List should have at most 1000 items after "
        "validation, not 200000",
    ),
    "a 5 kB URL": (
        _product(["users"]).replace("]}", "], registration_url: 'https://" + "u" * 5000 + "'}"),
        "products[0] (hostile): registration_url: String should have at most 2048 characters",
    ),
    "aliases expanding to millions": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, n in zip("abcde", "bcdef", strict=True)
        )
        + "sellers: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
        "the document has more than 500000 values",
    ),
    "30,000 entries": (
        "agreements:\n" + '  - {buyer: "444455556666", product: prod-ami}\n' * 30_000,
        "the file has 30000 entries, more than 20000",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_catalog_document_is_a_problem_list(server: ServerProcess, case: str) -> None:
    document, problem = CASES[case]
    before = httpx.get(f"{server.url}/_marketmeter/sellers").json()
    answer = httpx.post(
        f"{server.url}/_marketmeter/catalog",
        json={"document": document, "source": "hostile"},
        timeout=60,
    )
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": _problems(problem), "field": "catalog"},
    )
    assert httpx.get(f"{server.url}/_marketmeter/sellers").json() == before
