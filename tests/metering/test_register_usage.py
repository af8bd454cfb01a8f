"""The RegisterUsage rules (docs/register-usage.md), in process: the rule class and its key ring on
a real ledger of each backend (SQLite, PostgreSQL) loaded with ``tests/data/catalog.yaml``, on a
fixed clock.

Covers the product and key-version checks, key version 1 created on first need and persisted,
the PS256 JWT (verified with PyJWT against the published public key), rotation, and entitlement
checked only on a task's first registration.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import jwt
import pytest

from marketmeter.catalog.model import Agreement, AgreementState, Catalog
from marketmeter.errors import (
    AwsError,
    CustomerNotEntitledException,
    InvalidProductCodeException,
    InvalidPublicKeyVersionException,
)
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.register_usage import RegisterUsage
from marketmeter.metering.signing_keys import KeyRing, new_rsa_key_pair
from marketmeter.metering.types import (
    Caller,
    ContainerRegistration,
    RegisterUsageRequest,
    RegisterUsageResult,
)
from marketmeter.store.base import OperatorStore
from tests.conftest import OpenStore

if TYPE_CHECKING:
    from jwt.types import Options

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
EPOCH = 1795437000  # NOW in epoch seconds
AGREEMENTS_START = 1577836800.0  # 2020-01-01T00:00:00Z, as in the test catalog
ALICE = "444455556666"
ALICE_KEY = "AKIATESTALICE0000001"
ALICE_CONTAINER = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000005"
DAVE = "555566667777"
DAVE_KEY = "AKIATESTDAVE00000001"
DAVE_CONTAINER = "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000005"
# the clock is frozen in the test's past or future: check the signature, not the wall time
VERIFY: Options = {"verify_iat": False}


@functools.cache
def _pool() -> tuple[tuple[str, str], ...]:
    """Three RSA key pairs made once per test session (2048-bit generation is slow)."""
    return tuple(new_rsa_key_pair() for _ in range(3))


class PooledKeyPairs:
    """A key pair factory handing out the pool's pairs in turn: successive versions differ."""

    def __init__(self, start: int = 0) -> None:
        self._counter = itertools.count(start)

    def __call__(self) -> tuple[str, str]:
        pool = _pool()
        return pool[next(self._counter) % len(pool)]


def task(name: str | None = "task-1", key: str = ALICE_KEY) -> Caller:
    return Caller.anonymous(key, name)


class Bench:
    """RegisterUsage with its key ring, over the store, on a clock fixed at NOW."""

    def __init__(self, store: OperatorStore, key_pairs: PooledKeyPairs | None = None) -> None:
        self.store = store
        self.clock = FixedClock(NOW)
        self.keys = KeyRing(store, self.clock, key_pairs or PooledKeyPairs())
        self.operation = RegisterUsage(store, self.clock, self.keys)

    def register(
        self,
        caller: Caller | None = None,
        product: str = "prod-container",
        version: int = 1,
        nonce: str | None = None,
    ) -> RegisterUsageResult:
        request = RegisterUsageRequest(product, version, nonce)
        return asyncio.run(self.operation(request, caller or task()))

    def fails(self, error: type[AwsError], caller: Caller | None = None, **kwargs: object) -> str:
        with pytest.raises(error) as raised:
            self.register(caller, **kwargs)  # type: ignore[arg-type]
        assert type(raised.value) is error
        assert raised.value.http_status == 400
        return raised.value.message

    def public_pem(self, version: int) -> str:
        key = asyncio.run(self.keys.key(version))
        assert key is not None
        return key.public_key_pem

    def registration(self, buyer: str, name: str) -> ContainerRegistration | None:
        return asyncio.run(self.store.container_registration("prod-container", buyer, name))

    def agree(self, *agreements: Agreement) -> None:
        self.store.apply_catalog_now(Catalog(agreements=agreements))


@pytest.fixture
def bench(store: OperatorStore) -> Bench:
    return Bench(store)


def claims(result: RegisterUsageResult, public_pem: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(
        result.signature, public_pem, algorithms=["PS256"], options=VERIFY
    )
    return decoded


# --- product and key version ------------------------------------------------------------------


@pytest.mark.parametrize("product", ["prod-ami", "prod-agent", "prod-legacy", "no-such-product"])
def test_only_container_products_register(bench: Bench, product: str) -> None:
    message = bench.fails(InvalidProductCodeException, product=product, version=7)
    assert message == f"Product code '{product}' is not a valid paid container product."


def test_a_version_never_created_is_invalid(bench: Bench) -> None:
    message = bench.fails(InvalidPublicKeyVersionException, version=2)
    assert message == "Public key version 2 is invalid."
    assert [k.version for k in asyncio.run(bench.store.signing_keys())] == [1]


def test_the_key_version_is_checked_before_the_caller(bench: Bench) -> None:
    message = bench.fails(
        InvalidPublicKeyVersionException, Caller.anonymous("AKIASTRANGER00000001"), version=2
    )
    assert message == "Public key version 2 is invalid."


@pytest.mark.parametrize(
    ("caller", "who"),
    [
        (Caller.anonymous("AKIASTRANGER00000001", "task-1"), "access key AKIASTRANGER00000001"),
        (Caller.anonymous("AKIATESTSELLER000001"), "access key AKIATESTSELLER000001"),
        (Caller.anonymous(), "unsigned requests"),
    ],
)
def test_credentials_of_no_buyer_are_not_entitled(bench: Bench, caller: Caller, who: str) -> None:
    message = bench.fails(CustomerNotEntitledException, caller)
    assert message == (
        f"RegisterUsage must be signed with a buyer's credentials; {who} belongs to no buyer of "
        "the catalog (list the key under the buyer's access_keys)."
    )


# --- key version 1 ---------------------------------------------------------------------------


def test_version_1_is_created_on_first_need_and_persisted(
    store_url: str, store: OperatorStore, bench: Bench, open_test_store: OpenStore
) -> None:
    assert asyncio.run(store.signing_keys()) == []
    result = bench.register()
    [key] = asyncio.run(store.signing_keys())
    assert (key.version, key.created_at, key.retired_at) == (1, EPOCH, None)
    assert key.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert key.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert claims(result, key.public_key_pem)["publicKeyVersion"] == 1

    # another store and key ring on the same database (a restart, another node) use the same key
    reopened = open_test_store(store_url)
    other = Bench(reopened, PooledKeyPairs(start=1))
    assert other.public_pem(1) == key.public_key_pem
    again = other.register(task("task-9"))
    assert claims(again, key.public_key_pem)["productCode"] == "prod-container"
    assert len(asyncio.run(reopened.signing_keys())) == 1


# --- the signature ---------------------------------------------------------------------------


def test_signature_is_a_ps256_jwt_with_exact_claims(bench: Bench) -> None:
    result = bench.register(nonce="nonce-0123")
    assert jwt.get_unverified_header(result.signature) == {"alg": "PS256", "typ": "JWT"}
    assert claims(result, bench.public_pem(1)) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "nonce-0123",
        "iat": EPOCH,
    }
    assert result.public_key_rotation_timestamp is None


def test_without_nonce_the_claim_is_absent(bench: Bench) -> None:
    result = bench.register(nonce=None)
    assert claims(result, bench.public_pem(1)) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "iat": EPOCH,
    }


def test_iat_is_the_service_clock_in_whole_seconds(bench: Bench) -> None:
    bench.clock.advance(timedelta(seconds=90, milliseconds=999))
    result = bench.register()
    assert claims(result, bench.public_pem(1))["iat"] == EPOCH + 90


def test_a_signature_does_not_verify_with_another_key(bench: Bench) -> None:
    result = bench.register()
    other_public = _pool()[2][1]
    assert other_public != bench.public_pem(1)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(result.signature, other_public, algorithms=["PS256"], options=VERIFY)


# --- rotation ----------------------------------------------------------------------------------


def test_rotation_makes_version_2_current_and_retires_version_1(bench: Bench) -> None:
    bench.register()
    bench.clock.advance(timedelta(minutes=10))
    rotated = asyncio.run(bench.keys.rotate())
    rotation = EPOCH + 600
    assert (rotated.version, rotated.created_at, rotated.retired_at) == (2, rotation, None)
    v1, v2 = asyncio.run(bench.store.signing_keys())
    assert (v1.version, v1.retired_at, v2.version, v2.retired_at) == (1, rotation, 2, None)
    assert v1.public_key_pem != v2.public_key_pem

    old = bench.register(version=1, nonce="n1")
    assert old.public_key_rotation_timestamp == rotation
    assert claims(old, v1.public_key_pem) == {
        "productCode": "prod-container",
        "publicKeyVersion": 1,
        "nonce": "n1",
        "iat": rotation,
    }
    new = bench.register(version=2)
    assert new.public_key_rotation_timestamp is None
    assert claims(new, v2.public_key_pem) == {
        "productCode": "prod-container",
        "publicKeyVersion": 2,
        "iat": rotation,
    }
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(new.signature, v1.public_key_pem, algorithms=["PS256"], options=VERIFY)
    assert bench.fails(InvalidPublicKeyVersionException, version=3) == (
        "Public key version 3 is invalid."
    )


def test_a_second_rotation_keeps_the_first_retirement_time(bench: Bench) -> None:
    asyncio.run(bench.keys.rotate())  # creates v1 at EPOCH, then v2 retiring it at once
    bench.clock.advance(timedelta(hours=1))
    asyncio.run(bench.keys.rotate())
    keys = asyncio.run(bench.store.signing_keys())
    assert [(k.version, k.created_at, k.retired_at) for k in keys] == [
        (1, EPOCH, EPOCH),
        (2, EPOCH, EPOCH + 3600),
        (3, EPOCH + 3600, None),
    ]
    assert bench.register(version=1).public_key_rotation_timestamp == EPOCH
    assert bench.register(version=2).public_key_rotation_timestamp == EPOCH + 3600
    assert bench.register(version=3).public_key_rotation_timestamp is None


# --- entitlement, on a task's first registration only ---------------------------------------------


def test_first_registration_is_stored(bench: Bench) -> None:
    assert bench.registration(ALICE, "task-1") is None
    bench.register(task("task-1"))
    assert bench.registration(ALICE, "task-1") == ContainerRegistration(
        "prod-container", ALICE, "task-1", EPOCH
    )
    bench.clock.advance(timedelta(hours=2))
    bench.register(task("task-1"))
    assert bench.registration(ALICE, "task-1") == ContainerRegistration(
        "prod-container", ALICE, "task-1", EPOCH
    )


def test_without_session_token_the_task_is_the_access_key(bench: Bench) -> None:
    bench.register(task(None))
    assert bench.registration(ALICE, ALICE_KEY) is not None


def test_a_registered_task_is_not_rechecked_but_new_tasks_are(bench: Bench) -> None:
    bench.register(task("task-1"))
    bench.agree(
        Agreement(
            ALICE_CONTAINER,
            ALICE,
            "prod-container",
            state=AgreementState.SUSPENDED,
            starts_at=AGREEMENTS_START,
        )
    )
    bench.clock.advance(timedelta(minutes=5))
    still = bench.register(task("task-1"), nonce="again")
    assert claims(still, bench.public_pem(1))["iat"] == EPOCH + 300

    message = bench.fails(CustomerNotEntitledException, task("task-2"))
    assert message == f"Customer {ALICE} is not entitled to product 'prod-container'."
    assert bench.registration(ALICE, "task-2") is None
    bench.fails(CustomerNotEntitledException, task("task-2"))  # still refused: not registered

    bench.agree(Agreement(ALICE_CONTAINER, ALICE, "prod-container", starts_at=AGREEMENTS_START))
    bench.register(task("task-2"))
    assert bench.registration(ALICE, "task-2") == ContainerRegistration(
        "prod-container", ALICE, "task-2", EPOCH + 300
    )


@pytest.mark.parametrize(
    ("key", "account"),
    [("AKIATESTCAROL0000001", "222233334444"), (DAVE_KEY, DAVE)],
    ids=["carol-suspended", "dave-no-agreement"],
)
def test_buyers_without_an_agreement_that_bills_are_refused(
    bench: Bench, key: str, account: str
) -> None:
    message = bench.fails(CustomerNotEntitledException, task("task-1", key))
    assert message == f"Customer {account} is not entitled to product 'prod-container'."
    assert bench.registration(account, "task-1") is None


def test_a_task_name_is_per_buyer(bench: Bench) -> None:
    bench.register(task("task-1"))
    bench.fails(CustomerNotEntitledException, task("task-1", DAVE_KEY))


def test_entitlement_is_judged_on_the_service_clock(bench: Bench) -> None:
    bench.agree(Agreement(DAVE_CONTAINER, DAVE, "prod-container", starts_at=EPOCH + 3600))
    bench.fails(CustomerNotEntitledException, task("task-1", DAVE_KEY))
    bench.clock.advance(timedelta(hours=1))
    bench.register(task("task-1", DAVE_KEY))
    assert bench.registration(DAVE, "task-1") == ContainerRegistration(
        "prod-container", DAVE, "task-1", EPOCH + 3600
    )
