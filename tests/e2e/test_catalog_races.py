"""Catalog edits racing each other through the admin API of a real server: every invariant is
decided inside the writing transaction, so exactly one of two conflicting requests wins, the
loser is a 4xx naming the field (never a 500, never a silent last-writer-wins), and the
catalog stays consistent. Each race runs ``TRIALS`` times on fresh ids; the suite runs on
SQLite and, with ``MARKETMETER_TEST_DB=postgresql``, on PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

TRIALS = 40


Call = tuple[str, str, dict[str, Any] | None, float]
"""A request of a race: method, URL, JSON body (or None), seconds to wait first."""


def race(*calls: Call) -> list[httpx.Response]:
    """Send ``calls`` at once, one thread and one connection each; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)
    clients = [httpx.Client(timeout=30) for _ in calls]

    def run(index: int) -> None:
        method, url, body, delay = calls[index]
        barrier.wait()
        time.sleep(delay)
        answers[index] = clients[index].request(method, url, json=body)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def account(trial: int, base: int) -> str:
    return f"{base + trial:012d}"


def created(client: httpx.Client, url: str, body: dict[str, Any]) -> None:
    answer = client.post(url, json=body)
    assert answer.status_code == 201, answer.text


def catalog_of(server: ServerProcess) -> dict[str, Any]:
    """The catalog as the admin API lists it."""
    admin = f"{server.url}/_marketmeter"
    return {
        "sellers": httpx.get(f"{admin}/sellers").json()["sellers"],
        "buyers": httpx.get(f"{admin}/buyers").json()["buyers"],
        "products": httpx.get(f"{admin}/products").json()["products"],
        "agreements": httpx.get(f"{admin}/agreements?limit=10000").json()["agreements"],
        "tokens": httpx.get(f"{admin}/tokens?limit=1000").json()["tokens"],
    }


def assert_consistent(server: ServerProcess) -> None:
    """No key with two owners, no account both seller and buyer, no product without its
    seller, no agreement or token without its buyer and product, no CustomerIdentifier
    shared."""
    shown = catalog_of(server)
    sellers = {s["account_id"] for s in shown["sellers"]}
    buyers = {b["account_id"] for b in shown["buyers"]}
    products = {p["product_code"] for p in shown["products"]}
    accounts = shown["sellers"] + shown["buyers"]
    keys = [k["access_key_id"] for a in accounts for k in a["access_keys"]]
    assert len(keys) == len(set(keys))
    assert not sellers & buyers
    assert {p["seller"] for p in shown["products"]} <= sellers
    assert {a["buyerAccountId"] for a in shown["agreements"]} <= buyers
    assert {a["productCode"] for a in shown["agreements"]} <= products
    identifiers = [b["customer_identifier"] for b in shown["buyers"] if b["customer_identifier"]]
    assert len(identifiers) == len(set(identifiers))
    assert {t["customerAWSAccountId"] for t in shown["tokens"]} <= buyers
    assert {t["productCode"] for t in shown["tokens"]} <= products


def test_one_access_key_id_raced_onto_a_seller_and_a_buyer_has_one_owner(
    server: ServerProcess,
) -> None:
    admin = f"{server.url}/_marketmeter"
    with httpx.Client() as setup:
        for trial in range(TRIALS):
            seller, buyer = account(trial, 100000000000), account(trial, 200000000000)
            created(setup, f"{admin}/sellers", {"account_id": seller})
            created(setup, f"{admin}/buyers", {"account_id": buyer})
    for trial in range(TRIALS):
        seller, buyer = account(trial, 100000000000), account(trial, 200000000000)
        key = {"access_key_id": f"AKIARACE{trial:012d}", "secret_access_key": f"s-{trial}"}
        to_seller, to_buyer = race(
            ("POST", f"{admin}/sellers/{seller}/keys", key, 0.0),
            ("POST", f"{admin}/buyers/{buyer}/keys", key, 0.0),
        )
        statuses = sorted([to_seller.status_code, to_buyer.status_code])
        assert statuses == [201, 409], (to_seller.text, to_buyer.text)
        loser, winner_path = (
            (to_buyer, f"sellers/{seller}")
            if to_seller.status_code == 201
            else (to_seller, f"buyers/{buyer}")
        )
        assert loser.json()["field"] == "access_key_id"
        assert "already belongs to account" in loser.json()["error"]
        seller_keys = httpx.get(f"{admin}/sellers/{seller}").json()["access_keys"]
        buyer_keys = httpx.get(f"{admin}/buyers/{buyer}").json()["access_keys"]
        owned = {"sellers": seller_keys, "buyers": buyer_keys}
        assert owned[winner_path.split("/")[0]] == [{"access_key_id": key["access_key_id"]}]
        assert seller_keys + buyer_keys == [{"access_key_id": key["access_key_id"]}]
    assert_consistent(server)


def test_a_product_created_while_its_seller_is_deleted_is_never_an_orphan(
    server: ServerProcess,
) -> None:
    admin = f"{server.url}/_marketmeter"
    winners = {"product": 0, "delete": 0}
    for trial in range(TRIALS):
        seller = account(trial, 300000000000)
        with httpx.Client() as setup:
            created(setup, f"{admin}/sellers", {"account_id": seller})
        product = {
            "product_code": f"race-{trial}",
            "seller": seller,
            "kind": "saas",
            "dimensions": ["users"],
        }
        create, delete = race(
            ("POST", f"{admin}/products", product, 0.0),
            ("DELETE", f"{admin}/sellers/{seller}", None, 0.0),
        )
        if create.status_code == 201:
            assert (delete.status_code, delete.json()["field"]) == (409, "accountId")
            assert delete.json()["error"] == f"seller {seller} has products: race-{trial}"
            assert httpx.get(f"{admin}/sellers/{seller}").status_code == 200
            winners["product"] += 1
        else:
            assert delete.status_code == 204, delete.text
            # refused on the snapshot (400, the loader) or inside the transaction (409)
            assert (create.status_code, create.json()["field"]) in (
                (400, "seller"),
                (409, "seller"),
            )
            assert httpx.get(f"{admin}/products/race-{trial}").status_code == 404
            winners["delete"] += 1
    assert sum(winners.values()) == TRIALS
    assert_consistent(server)


def test_two_buyers_with_one_customer_identifier_one_wins(server: ServerProcess) -> None:
    admin = f"{server.url}/_marketmeter"
    for trial in range(TRIALS):
        first, second = account(trial, 400000000000), account(trial, 500000000000)
        identifier = f"cust-race-{trial}"
        answers = race(
            (
                "POST",
                f"{admin}/buyers",
                {"account_id": first, "customer_identifier": identifier},
                0.0,
            ),
            (
                "POST",
                f"{admin}/buyers",
                {"account_id": second, "customer_identifier": identifier},
                0.0,
            ),
        )
        statuses = sorted(a.status_code for a in answers)
        loser = next(a for a in answers if a.status_code != 201)
        # 409 inside the transaction, or 400 when the loader already saw the winner
        assert statuses in ([201, 400], [201, 409]), [a.text for a in answers]
        assert loser.json()["field"] == "customer_identifier"
        holders = [
            b["account_id"]
            for b in catalog_of(server)["buyers"]
            if b["customer_identifier"] == identifier
        ]
        assert len(holders) == 1
    assert_consistent(server)


# sellers the document also carries, so that it takes a while to check (a "long" apply)
_FILLER = "sellers:\n" + "".join(
    f'  - {{account_id: "{610000000000 + i}", name: filler {i}}}\n' for i in range(300)
)


def _document(trial: int, buyer: str) -> str:
    return _FILLER + (
        "agreements:\n"
        f'  - buyer: "{buyer}"\n'
        f"    product: race-apply-{trial}\n"
        f"    license_arn: arn:aws:license-manager::{buyer}:license:l-{trial:032x}\n"
        "    start: 2020-01-01T00:00:00Z\n"
    )


def test_a_catalog_apply_racing_deletes_leaves_no_dangling_agreement(
    server: ServerProcess,
) -> None:
    admin = f"{server.url}/_marketmeter"
    seller = "600000000000"
    with httpx.Client() as setup:
        created(setup, f"{admin}/sellers", {"account_id": seller})
    outcomes = {"apply": 0, "delete": 0}
    for trial in range(TRIALS):
        buyer = account(trial, 700000000000)
        with httpx.Client() as setup:
            created(setup, f"{admin}/buyers", {"account_id": buyer})
            product = {"product_code": f"race-apply-{trial}", "seller": seller, "kind": "saas"}
            created(setup, f"{admin}/products", {**product, "dimensions": ["users"]})
        body = {"document": _document(trial, buyer), "source": "race"}
        delay = (trial % 8) * 0.004  # the deletions land at moments across the apply
        apply, delete_buyer, delete_product = race(
            ("POST", f"{admin}/catalog", body, 0.0),
            ("DELETE", f"{admin}/buyers/{buyer}", None, delay),
            ("DELETE", f"{admin}/products/race-apply-{trial}", None, delay),
        )
        answers = [apply, delete_buyer, delete_product]
        assert all(a.status_code < 500 for a in answers), [a.text for a in answers]
        if apply.status_code == 200:
            # the agreement came first: neither deletion went through
            assert apply.json()["tokensMinted"] == 1
            assert delete_buyer.status_code == 409, delete_buyer.text
            assert delete_product.status_code == 409, delete_product.text
            outcomes["apply"] += 1
        else:
            # a deletion came first: the document is refused, naming what is gone
            arn = f"arn:aws:license-manager::{buyer}:license:l-{trial:032x}"
            inside = {
                ("buyer_account_id", f"agreement {arn}: no buyer with account_id {buyer}"),
                (
                    "product_code",
                    f"agreement {arn}: no product with product_code race-apply-{trial}",
                ),
            }
            refusal = (apply.json()["field"], apply.json()["error"])
            if apply.status_code == 409:  # decided inside the transaction
                assert refusal in inside
            else:  # the loader already saw the deletion
                assert (apply.status_code, refusal[0]) == (400, "catalog"), apply.text
                assert "nothing applied" in refusal[1]
            assert 204 in (delete_buyer.status_code, delete_product.status_code)
            outcomes["delete"] += 1
    assert sum(outcomes.values()) == TRIALS
    assert_consistent(server)
