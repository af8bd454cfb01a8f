"""The ResolveCustomer rules (docs/saas-registration.md), in process: tokens issued into a real
ledger of each backend (directly, by ``mint_token`` and by ``tokens_for_new_agreements``), resolved
on a fixed clock.

Covers malformed and unknown tokens, expiry exactly at issued + ttl, repeated resolution, the
legacy and concurrent-agreements result fields, another seller's token and a custom ttl.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from marketmeter.catalog.model import Agreement, Catalog, agreement_id_for
from marketmeter.errors import AwsError, ExpiredTokenException, InvalidTokenException
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.registration_tokens import (
    DEFAULT_TOKEN_TTL,
    SequentialTokens,
    mint_token,
    tokens_for_new_agreements,
)
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.types import (
    Caller,
    RegistrationToken,
    ResolveCustomerRequest,
    ResolveCustomerResult,
)
from marketmeter.store.base import OperatorStore

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
EPOCH = 1795437000.0  # NOW in epoch seconds
ALICE = "444455556666"
BOB = "777788889999"
DAVE = "555566667777"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
ALICE_OTHER = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009"
BOB_CA = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"
DAVE_LEGACY = "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000001"
TOKEN = "A" * 32 + "b" * 16 + "0123456789_-xyzQ"  # 64 characters of the token alphabet
INVALID = "The registration token is invalid."


def token(
    value: str = TOKEN,
    product: str = "prod-legacy",
    buyer: str = ALICE,
    license_arn: str = ALICE_LEGACY,
    issued_at: float = EPOCH,
) -> RegistrationToken:
    return RegistrationToken(value, product, buyer, license_arn, issued_at)


class Resolver:
    """ResolveCustomer over the store on a clock fixed at NOW."""

    def __init__(self, store: OperatorStore, ttl: timedelta = DEFAULT_TOKEN_TTL) -> None:
        self.store = store
        self.clock = FixedClock(NOW)
        self.operation = ResolveCustomer(store, self.clock, ttl)

    def issue(self, *tokens: RegistrationToken) -> None:
        asyncio.run(self.store.issue_tokens(tokens))

    def resolve(self, value: str, caller: Caller | None = None) -> ResolveCustomerResult:
        request = ResolveCustomerRequest(value)
        return asyncio.run(self.operation(request, caller or Caller.anonymous()))

    def fails(self, error: type[AwsError], value: str, caller: Caller | None = None) -> str:
        with pytest.raises(error) as raised:
            self.resolve(value, caller)
        assert type(raised.value) is error
        assert raised.value.http_status == 400
        return raised.value.message


@pytest.fixture
def resolver(store: OperatorStore) -> Resolver:
    return Resolver(store)


# --- results -----------------------------------------------------------------------------------


def test_legacy_product_answers_the_customer_identifier(resolver: Resolver) -> None:
    resolver.issue(token())
    assert resolver.resolve(TOKEN) == ResolveCustomerResult(
        product_code="prod-legacy",
        customer_aws_account_id=ALICE,
        license_arn=ALICE_LEGACY,
        agreement_id="agmt-j17tn7wmjtl9wohyyyfxt2p8z",
        customer_identifier="cust-alice",
    )
    assert agreement_id_for(ALICE_LEGACY) == "agmt-j17tn7wmjtl9wohyyyfxt2p8z"


def test_concurrent_agreements_product_answers_no_customer_identifier(resolver: Resolver) -> None:
    resolver.issue(token(product="prod-ca", license_arn=ALICE_CA))
    assert resolver.resolve(TOKEN) == ResolveCustomerResult(
        product_code="prod-ca",
        customer_aws_account_id=ALICE,
        license_arn=ALICE_CA,
        agreement_id="agmt-0vdyg5k8xmme8a1oi8wdy9qzk",
        customer_identifier=None,
    )


def test_the_same_token_resolves_the_same_answer_every_time(resolver: Resolver) -> None:
    resolver.issue(token())
    first = resolver.resolve(TOKEN)
    resolver.issue(token(value="B" * 64, product="prod-ca", license_arn=ALICE_CA))
    resolver.clock.advance(timedelta(hours=3, minutes=59))
    assert [resolver.resolve(TOKEN) for _ in range(3)] == [first] * 3


def test_each_token_resolves_its_own_agreement(resolver: Resolver) -> None:
    resolver.issue(
        token(value="a" * 64),
        token(value="b" * 64, product="prod-ca", buyer=BOB, license_arn=BOB_CA),
    )
    assert resolver.resolve("a" * 64).license_arn == ALICE_LEGACY
    bob = resolver.resolve("b" * 64)
    assert (bob.customer_aws_account_id, bob.license_arn, bob.agreement_id) == (
        BOB,
        BOB_CA,
        "agmt-6x4sqnijbgoz45kh2amsanc3e",
    )


def test_a_minted_token_resolves(resolver: Resolver) -> None:
    snapshot = resolver.store.catalog_snapshot_now()
    minted = mint_token(snapshot, "prod-ca", BOB, EPOCH, SequentialTokens())
    resolver.issue(minted)
    assert resolver.resolve(minted.value) == ResolveCustomerResult(
        "prod-ca", BOB, BOB_CA, agreement_id_for(BOB_CA), None
    )


def test_a_token_of_a_new_agreement_resolves(resolver: Resolver) -> None:
    incoming = Catalog(agreements=(Agreement(DAVE_LEGACY, DAVE, "prod-legacy", starts_at=EPOCH),))
    snapshot = resolver.store.catalog_snapshot_now()
    [issued] = tokens_for_new_agreements(snapshot, incoming, EPOCH, SequentialTokens())
    resolver.store.apply_catalog_now(incoming, [issued])
    assert resolver.resolve(issued.value) == ResolveCustomerResult(
        product_code="prod-legacy",
        customer_aws_account_id=DAVE,
        license_arn=DAVE_LEGACY,
        agreement_id=agreement_id_for(DAVE_LEGACY),
        customer_identifier="cust-dave",
    )


# --- invalid tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("short", id="short"),
        pytest.param("a" * 63, id="63-chars"),
        pytest.param("a" * 65, id="65-chars"),
        pytest.param("a" * 63 + "=", id="padding"),
        pytest.param("a" * 63 + "+", id="plus"),
        pytest.param("a" * 63 + "/", id="slash"),
        pytest.param("a" * 31 + " " + "a" * 32, id="space"),
        pytest.param("é" * 64, id="non-ascii"),
        pytest.param(TOKEN + "\n", id="trailing-newline"),
    ],
)
def test_malformed_tokens_are_invalid(resolver: Resolver, value: str) -> None:
    resolver.issue(token())
    assert resolver.fails(InvalidTokenException, value) == INVALID


def test_a_well_formed_token_never_issued_is_invalid(resolver: Resolver) -> None:
    resolver.issue(token())
    assert resolver.fails(InvalidTokenException, "Z" * 64) == INVALID
    assert resolver.fails(InvalidTokenException, TOKEN.lower()) == INVALID


def test_another_sellers_token_is_invalid_for_a_seller_caller(resolver: Resolver) -> None:
    resolver.issue(token(), token(value="o" * 64, product="prod-other", license_arn=ALICE_OTHER))
    other_seller = Caller("seller", "999988887777")
    assert resolver.fails(InvalidTokenException, TOKEN, other_seller) == INVALID
    owner = Caller("seller", "111122223333", "AKIATESTSELLER000001")
    assert resolver.resolve(TOKEN, owner).customer_identifier == "cust-alice"
    assert resolver.resolve("o" * 64, other_seller).product_code == "prod-other"
    assert resolver.fails(InvalidTokenException, "o" * 64, owner) == INVALID


def test_a_foreign_expired_token_is_invalid_not_expired(resolver: Resolver) -> None:
    resolver.issue(token(issued_at=EPOCH - 86400))
    assert resolver.fails(InvalidTokenException, TOKEN, Caller("seller", "999988887777")) == INVALID
    message = resolver.fails(ExpiredTokenException, TOKEN, Caller("seller", "111122223333"))
    assert message == "The registration token expired at 2026-11-22T16:30:00Z."


# --- expiry ----------------------------------------------------------------------------------


def test_token_expires_exactly_ttl_after_issue(resolver: Resolver) -> None:
    resolver.issue(token())
    resolver.clock.advance(timedelta(hours=4) - timedelta(seconds=1))
    assert resolver.resolve(TOKEN).license_arn == ALICE_LEGACY
    resolver.clock.advance(timedelta(seconds=1))
    message = resolver.fails(ExpiredTokenException, TOKEN)
    assert message == "The registration token expired at 2026-11-23T16:30:00Z."
    resolver.clock.advance(timedelta(days=30))
    assert resolver.fails(ExpiredTokenException, TOKEN) == message


@pytest.mark.parametrize(
    ("issued_at", "expired"),
    [(EPOCH - 14400, True), (EPOCH - 14399, False), (EPOCH - 14399.999, False)],
)
def test_expiry_boundary_on_issue_time(resolver: Resolver, issued_at: float, expired: bool) -> None:
    resolver.issue(token(issued_at=issued_at))
    if expired:
        message = resolver.fails(ExpiredTokenException, TOKEN)
        assert message == "The registration token expired at 2026-11-23T12:30:00Z."
    else:
        assert resolver.resolve(TOKEN).product_code == "prod-legacy"


def test_expiry_time_is_shown_to_the_second(resolver: Resolver) -> None:
    resolver.issue(token(issued_at=EPOCH + 0.75))
    resolver.clock.set(NOW + timedelta(hours=4))
    assert resolver.resolve(TOKEN).product_code == "prod-legacy"  # expires at 16:30:00.75
    resolver.clock.set(NOW + timedelta(hours=4, seconds=1))
    message = resolver.fails(ExpiredTokenException, TOKEN)
    assert message == "The registration token expired at 2026-11-23T16:30:00Z."


def test_a_custom_ttl(store: OperatorStore) -> None:
    resolver = Resolver(store, ttl=timedelta(minutes=10))
    resolver.issue(token(value="a" * 64, issued_at=EPOCH - 599), token(issued_at=EPOCH - 600))
    assert resolver.resolve("a" * 64).customer_identifier == "cust-alice"
    message = resolver.fails(ExpiredTokenException, TOKEN)
    assert message == "The registration token expired at 2026-11-23T12:30:00Z."
    long_lived = Resolver(store, ttl=timedelta(days=7))
    long_lived.clock.advance(timedelta(days=6))
    assert long_lived.resolve(TOKEN).license_arn == ALICE_LEGACY
