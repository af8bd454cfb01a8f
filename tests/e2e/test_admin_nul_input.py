"""NUL characters in admin input are refused with a 400 naming the field, before any route,
so both backends answer the same (PostgreSQL cannot store U+0000 in text)."""

from __future__ import annotations

import httpx
import pytest

from marketmeter.admin.text_guard import NUL_MESSAGE
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.reused_server


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/_marketmeter/usage?product=a%00b", "product"),
        ("/_marketmeter/tokens?limit=1&buyer=%00", "buyer"),
        ("/_marketmeter/agreements?product=p%00", "product"),
    ],
)
def test_a_nul_in_a_query_parameter_names_it(server: ServerProcess, path: str, field: str) -> None:
    answer = httpx.get(server.url + path)
    assert (answer.status_code, answer.json()) == (400, {"error": NUL_MESSAGE, "field": field})


def test_a_nul_in_a_body_is_refused_and_nothing_is_created(server: ServerProcess) -> None:
    seller = {"account_id": "123412341234", "name": "a\u0000b"}
    answer = httpx.post(f"{server.url}/_marketmeter/sellers", json=seller)
    assert (answer.status_code, answer.json()) == (400, {"error": NUL_MESSAGE, "field": "body"})
    assert httpx.get(f"{server.url}/_marketmeter/sellers/123412341234").status_code == 404


@pytest.mark.fresh_server  # creates a seller
def test_an_escaped_backslash_before_u0000_is_plain_text(server: ServerProcess) -> None:
    seller = {"account_id": "123412341234", "name": "a\\u0000b"}
    answer = httpx.post(f"{server.url}/_marketmeter/sellers", json=seller)
    assert answer.status_code == 201, answer.text
    shown = httpx.get(f"{server.url}/_marketmeter/sellers/123412341234").json()
    assert shown["name"] == "a\\u0000b"
