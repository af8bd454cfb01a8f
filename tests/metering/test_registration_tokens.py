"""SaaS registration tokens (docs/saas-registration.md): the token format of ``RandomTokens`` and
``SequentialTokens``, ``mint_token`` (errors by field, the agreement it picks, the free-trial
offer type) and ``tokens_for_new_agreements`` (only new SaaS agreements that bill)."""

from __future__ import annotations

import pytest

from marketmeter.catalog.model import (
    Agreement,
    AgreementState,
    Catalog,
    Integration,
    Product,
    ProductKind,
)
from marketmeter.metering.registration_tokens import (
    FREE_TRIAL,
    TOKEN_FORMAT,
    RandomTokens,
    SequentialTokens,
    mint_token,
    tokens_for_new_agreements,
)
from marketmeter.metering.types import RegistrationToken
from marketmeter.refusal import Refusal
from marketmeter.store.base import OperatorStore

EPOCH = 1795437000.0  # 2026-11-23T12:30:00Z
ALICE = "444455556666"
BOB = "777788889999"
CAROL = "222233334444"
DAVE = "555566667777"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
BOB_LEGACY = "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000001"
CAROL_LEGACY = "arn:aws:license-manager::222233334444:license:l-c0000000000000000000000000000001"
ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def arn(account: str, n: int) -> str:
    return f"arn:aws:license-manager::{account}:license:l-{n:032x}"


def first_token(n: int) -> str:
    """The n-th value of ``SequentialTokens()``."""
    return "test-token-" + str(n).rjust(53, "0")


# --- format ------------------------------------------------------------------------------------


def test_random_tokens_are_64_url_safe_characters_and_distinct() -> None:
    generate = RandomTokens()
    values = [generate() for _ in range(500)]
    assert len(set(values)) == 500
    for value in values:
        assert len(value) == 64
        assert set(value) <= ALPHABET
        assert TOKEN_FORMAT.fullmatch(value)


def test_sequential_tokens_are_well_formed_and_predictable() -> None:
    generate = SequentialTokens()
    assert [generate() for _ in range(3)] == [first_token(1), first_token(2), first_token(3)]
    assert first_token(1) == "test-token-00000000000000000000000000000000000000000000000000001"
    assert len(first_token(1)) == 64
    assert TOKEN_FORMAT.fullmatch(first_token(1))
    assert SequentialTokens()() == first_token(1)  # each generator counts from 1


def test_sequential_tokens_with_a_prefix() -> None:
    generate = SequentialTokens(prefix="buyer-a-")
    value = generate()
    assert value == "buyer-a-" + "0" * 55 + "1"
    assert TOKEN_FORMAT.fullmatch(value)
    for _ in range(8):
        value = generate()
    assert value.endswith("0009")


@pytest.mark.parametrize(
    "value",
    ["", "a" * 63, "a" * 65, "a" * 63 + "=", "a" * 63 + "+", "a" * 63 + "/", "a" * 63 + "."],
)
def test_token_format_refuses_other_shapes(value: str) -> None:
    assert TOKEN_FORMAT.fullmatch(value) is None


# --- mint_token: errors ------------------------------------------------------------------------


def mint_error(store: OperatorStore, product: str, buyer: str, **kwargs: object) -> Refusal:
    snapshot = store.catalog_snapshot_now()
    with pytest.raises(Refusal) as raised:
        mint_token(snapshot, product, buyer, EPOCH, SequentialTokens(), **kwargs)  # type: ignore[arg-type]
    return raised.value


def test_unknown_product(store: OperatorStore) -> None:
    error = mint_error(store, "no-such-product", ALICE)
    assert (error.field, error.message) == (
        "product",
        "no product with product code 'no-such-product'",
    )
    assert str(error) == "product: no product with product code 'no-such-product'"


def test_non_saas_products(store: OperatorStore) -> None:
    error = mint_error(store, "prod-container", ALICE)
    assert (error.field, error.message) == (
        "product",
        "prod-container is not a SaaS product (kind: container); "
        "registration tokens are for SaaS products",
    )
    error = mint_error(store, "prod-ami", ALICE)
    assert error.field == "product"
    assert error.message == (
        "prod-ami is not a SaaS product (kind: ami); registration tokens are for SaaS products"
    )


def test_unknown_buyer(store: OperatorStore) -> None:
    error = mint_error(store, "prod-legacy", "123456789012")
    assert (error.field, error.message) == ("buyer", "no buyer with account id '123456789012'")


@pytest.mark.parametrize(
    ("buyer", "product"),
    [
        (DAVE, "prod-legacy"),  # no agreement
        (CAROL, "prod-legacy"),  # suspended
        ("888899990000", "prod-legacy"),  # unsubscribed
        (BOB, "prod-other"),  # agreements with other products only
    ],
)
def test_no_agreement_that_bills(store: OperatorStore, buyer: str, product: str) -> None:
    error = mint_error(store, product, buyer)
    assert (error.field, error.message) == (
        "buyer",
        f"buyer {buyer} has no active agreement for {product}; subscribe first: "
        f"marketmeter subscribe --product {product} --buyer {buyer}",
    )


@pytest.mark.parametrize(
    "license_arn",
    [BOB_LEGACY, ALICE_CA, arn(ALICE, 0xFFFF)],
    ids=["another-buyers", "another-products", "unknown"],
)
def test_license_arn_must_be_the_buyers_agreement_for_the_product(
    store: OperatorStore, license_arn: str
) -> None:
    error = mint_error(store, "prod-legacy", ALICE, license_arn=license_arn)
    assert (error.field, error.message) == (
        "licenseArn",
        f"{license_arn} is not an agreement of buyer {ALICE} for prod-legacy",
    )


# --- mint_token: the agreement and the offer type -------------------------------------------------


def test_mints_a_token_for_the_buyers_agreement(store: OperatorStore) -> None:
    snapshot = store.catalog_snapshot_now()
    minted = mint_token(snapshot, "prod-legacy", ALICE, EPOCH, SequentialTokens())
    assert minted == RegistrationToken(
        value=first_token(1),
        product_code="prod-legacy",
        buyer_account_id=ALICE,
        license_arn=ALICE_LEGACY,
        issued_at=EPOCH,
        offer_type=None,
    )


def test_issue_times_are_whole_seconds(store: OperatorStore) -> None:
    snapshot = store.catalog_snapshot_now()
    minted = mint_token(snapshot, "prod-legacy", ALICE, EPOCH + 0.999, SequentialTokens())
    assert minted.issued_at == EPOCH
    incoming = Catalog(agreements=(Agreement(arn(DAVE, 1), DAVE, "prod-legacy"),))
    [issued] = tokens_for_new_agreements(snapshot, incoming, EPOCH + 59.5, SequentialTokens())
    assert issued.issued_at == EPOCH + 59


def test_picks_the_latest_started_agreement_that_bills(store: OperatorStore) -> None:
    newer = arn(ALICE, 0x100)
    store.apply_catalog_now(
        Catalog(
            agreements=(
                Agreement(newer, ALICE, "prod-legacy", starts_at=EPOCH - 86400),
                Agreement(
                    arn(ALICE, 0x200),
                    ALICE,
                    "prod-legacy",
                    AgreementState.SUSPENDED,
                    starts_at=EPOCH - 3600,
                ),
            )
        )
    )
    snapshot = store.catalog_snapshot_now()
    assert (
        mint_token(snapshot, "prod-legacy", ALICE, EPOCH, SequentialTokens()).license_arn == newer
    )


def test_a_named_license_arn_is_used_even_if_it_does_not_bill(store: OperatorStore) -> None:
    snapshot = store.catalog_snapshot_now()
    minted = mint_token(
        snapshot, "prod-legacy", CAROL, EPOCH, SequentialTokens(), license_arn=CAROL_LEGACY
    )
    assert (minted.buyer_account_id, minted.license_arn) == (CAROL, CAROL_LEGACY)


@pytest.mark.parametrize(
    ("agreement_trial", "override", "offer_type"),
    [
        (False, None, None),
        (True, None, FREE_TRIAL),
        (False, True, FREE_TRIAL),
        (True, False, None),
        (True, True, FREE_TRIAL),
        (False, False, None),
    ],
)
def test_free_trial_comes_from_the_agreement_unless_overridden(
    store: OperatorStore, agreement_trial: bool, override: bool | None, offer_type: str | None
) -> None:
    trial = arn(DAVE, 0x7)
    store.apply_catalog_now(
        Catalog(agreements=(Agreement(trial, DAVE, "prod-ca", free_trial=agreement_trial),))
    )
    snapshot = store.catalog_snapshot_now()
    minted = mint_token(snapshot, "prod-ca", DAVE, EPOCH, SequentialTokens(), free_trial=override)
    assert (minted.license_arn, minted.offer_type) == (trial, offer_type)
    assert FREE_TRIAL == "free-trial"


# --- tokens_for_new_agreements -----------------------------------------------------------------


def test_tokens_only_for_new_saas_agreements_that_bill(store: OperatorStore) -> None:
    current = store.catalog_snapshot_now()
    new_product = Product(
        "prod-new", "111122223333", ProductKind.SAAS, ("users",), Integration.CONCURRENT_AGREEMENTS
    )
    incoming = Catalog(
        products=(new_product,),
        agreements=(
            Agreement(ALICE_LEGACY, ALICE, "prod-legacy"),  # not new
            Agreement(arn(DAVE, 1), DAVE, "prod-legacy"),
            Agreement(arn(DAVE, 2), DAVE, "prod-ca", free_trial=True),
            Agreement(arn(DAVE, 3), DAVE, "prod-ami"),  # AMI: no registration
            Agreement(arn(DAVE, 4), DAVE, "prod-container"),  # container: no registration
            Agreement(arn(DAVE, 5), DAVE, "prod-new"),  # kind from the incoming catalog
            Agreement(arn(DAVE, 6), DAVE, "prod-other", AgreementState.SUSPENDED),
            Agreement(arn(DAVE, 7), DAVE, "prod-other", AgreementState.UNSUBSCRIBED),
            Agreement(arn(BOB, 8), BOB, "prod-other", AgreementState.UNSUBSCRIBE_PENDING),
            Agreement(arn(DAVE, 9), DAVE, "prod-unknown"),  # no such product
        ),
    )
    tokens = tokens_for_new_agreements(current, incoming, EPOCH, SequentialTokens())
    assert tokens == [
        RegistrationToken(first_token(1), "prod-legacy", DAVE, arn(DAVE, 1), EPOCH, None),
        RegistrationToken(first_token(2), "prod-ca", DAVE, arn(DAVE, 2), EPOCH, FREE_TRIAL),
        RegistrationToken(first_token(3), "prod-new", DAVE, arn(DAVE, 5), EPOCH, None),
        RegistrationToken(first_token(4), "prod-other", BOB, arn(BOB, 8), EPOCH, None),
    ]


def test_reapplying_the_same_catalog_issues_no_token(store: OperatorStore) -> None:
    incoming = Catalog(agreements=(Agreement(arn(DAVE, 1), DAVE, "prod-legacy"),))
    first = tokens_for_new_agreements(
        store.catalog_snapshot_now(), incoming, EPOCH, SequentialTokens()
    )
    assert len(first) == 1
    store.apply_catalog_now(incoming, first)
    again = tokens_for_new_agreements(
        store.catalog_snapshot_now(), incoming, EPOCH + 60, SequentialTokens()
    )
    assert again == []
