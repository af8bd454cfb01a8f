"""``plan_subscription`` (``marketmeter subscribe``): the buyer, agreement and registration
token a subscription creates or reuses, its input errors, and the plan applied to a real ledger
(each backend) with the resulting token resolved by ResolveCustomer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from marketmeter.catalog.model import (
    LICENSE_ARN_FORMAT,
    Agreement,
    AgreementState,
    Buyer,
    Catalog,
    agreement_id_for,
    customer_identifier_for,
    license_arn_for,
)
from marketmeter.errors import ExpiredTokenException
from marketmeter.lifecycle.subscriptions import plan_subscription
from marketmeter.lifecycle.types import Subscription
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.registration_tokens import DEFAULT_TOKEN_TTL, SequentialTokens
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.types import (
    Caller,
    RegistrationToken,
    ResolveCustomerRequest,
    ResolveCustomerResult,
)
from marketmeter.refusal import Refusal
from marketmeter.store.base import OperatorStore

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
EPOCH = 1795437000.0  # NOW in epoch seconds
HOUR = 1795435200.0  # 2026-11-23T12:00:00Z: new agreements start at the hour of subscribing
NEW = "123456789012"  # an account the test catalog does not know
NEW_IDENTIFIER = "8ykhpql83fte8"  # customer_identifier_for(NEW)
ALICE = "444455556666"
CAROL = "222233334444"
DAVE = "555566667777"
ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
CAROL_LEGACY = "arn:aws:license-manager::222233334444:license:l-c0000000000000000000000000000001"


def token_value(n: int) -> str:
    """The n-th value of ``SequentialTokens()``."""
    return "test-token-" + str(n).rjust(53, "0")


def plan(
    store: OperatorStore, product: str, buyer: str, now: float = EPOCH, free_trial: bool = False
) -> Subscription:
    return plan_subscription(
        store.catalog_snapshot_now(), product, buyer, now, SequentialTokens(), free_trial
    )


def resolve(store: OperatorStore, value: str, at: datetime = NOW) -> ResolveCustomerResult:
    operation = ResolveCustomer(store, FixedClock(at), DEFAULT_TOKEN_TTL)
    return asyncio.run(operation(ResolveCustomerRequest(value), Caller.anonymous()))


# --- new buyers ----------------------------------------------------------------------------------


def test_a_new_buyer_of_a_legacy_product_gets_a_customer_identifier(store: OperatorStore) -> None:
    subscription = plan(store, "prod-legacy", NEW)
    license_arn = license_arn_for(NEW, "prod-legacy", repr(EPOCH))
    assert LICENSE_ARN_FORMAT.fullmatch(license_arn)
    # AWS's form: AWS Marketplace's license-issuing account, not the buyer's
    assert license_arn.startswith("arn:aws:license-manager::294406891311:license:l-")
    assert customer_identifier_for(NEW) == NEW_IDENTIFIER
    buyer = Buyer(NEW, NEW_IDENTIFIER)
    agreement = Agreement(
        license_arn=license_arn,
        buyer_account_id=NEW,
        product_code="prod-legacy",
        state=AgreementState.SUBSCRIBED,
        starts_at=HOUR,
        ends_at=None,
        free_trial=False,
    )
    assert subscription.buyer == buyer
    assert subscription.agreement == agreement
    assert (subscription.created_buyer, subscription.created_agreement) == (True, True)
    assert subscription.token == RegistrationToken(
        token_value(1), "prod-legacy", NEW, license_arn, EPOCH, None
    )
    assert subscription.changes == Catalog(buyers=(buyer,), agreements=(agreement,))


def test_a_new_buyer_of_a_concurrent_agreements_product_gets_no_identifier(
    store: OperatorStore,
) -> None:
    subscription = plan(store, "prod-ca", NEW)
    assert subscription.buyer == Buyer(NEW)
    assert subscription.created_buyer is True
    assert subscription.token is not None
    assert subscription.token.product_code == "prod-ca"
    assert subscription.changes.buyers == (Buyer(NEW),)


@pytest.mark.parametrize("product", ["prod-ami", "prod-agent", "prod-container"])
def test_non_saas_products_get_an_agreement_but_no_token_nor_identifier(
    store: OperatorStore, product: str
) -> None:
    subscription = plan(store, product, NEW)
    assert subscription.buyer == Buyer(NEW)
    assert subscription.token is None
    assert subscription.created_agreement is True
    assert subscription.agreement.product_code == product
    assert subscription.agreement.starts_at == HOUR
    assert subscription.changes == Catalog(
        buyers=(Buyer(NEW),), agreements=(subscription.agreement,)
    )


def test_an_existing_buyer_keeps_its_identifier(store: OperatorStore) -> None:
    subscription = plan(store, "prod-legacy", DAVE)
    assert subscription.buyer.customer_identifier == "cust-dave"
    assert subscription.buyer.access_keys != ()  # the catalog's buyer, unchanged
    assert (subscription.created_buyer, subscription.created_agreement) == (False, True)
    assert subscription.changes.buyers == ()
    assert subscription.changes.agreements == (subscription.agreement,)


def test_a_buyer_without_identifier_gets_one_for_a_legacy_product(store: OperatorStore) -> None:
    first = plan(store, "prod-ca", NEW)
    store.apply_catalog_now(first.changes)
    second = plan(store, "prod-legacy", NEW)
    assert second.created_buyer is False
    assert second.buyer == Buyer(NEW, NEW_IDENTIFIER)
    assert second.changes.buyers == (Buyer(NEW, NEW_IDENTIFIER),)


def test_a_taken_customer_identifier_is_refused(store: OperatorStore) -> None:
    store.apply_catalog_now(Catalog(buyers=(Buyer("999900001111", NEW_IDENTIFIER),)))
    with pytest.raises(Refusal) as raised:
        plan(store, "prod-legacy", NEW)
    assert (raised.value.field, raised.value.message) == (
        "buyer",
        f"CustomerIdentifier {NEW_IDENTIFIER} is taken",
    )


# --- agreements ----------------------------------------------------------------------------------


def test_an_agreement_that_bills_now_is_reused(store: OperatorStore) -> None:
    subscription = plan(store, "prod-legacy", ALICE)
    assert subscription.agreement.license_arn == ALICE_LEGACY
    assert (subscription.created_buyer, subscription.created_agreement) == (False, False)
    assert subscription.changes == Catalog()
    assert subscription.token == RegistrationToken(
        token_value(1), "prod-legacy", ALICE, ALICE_LEGACY, EPOCH, None
    )


@pytest.mark.parametrize(
    "buyer",
    [CAROL, "666677778888", "333344445555", "888899990000"],
    ids=["suspended", "ended-2021", "starts-2099", "unsubscribed"],
)
def test_without_an_agreement_that_bills_now_a_new_one_starts_now(
    store: OperatorStore, buyer: str
) -> None:
    subscription = plan(store, "prod-legacy", buyer)
    assert subscription.created_agreement is True
    assert subscription.agreement == Agreement(
        license_arn_for(buyer, "prod-legacy", repr(EPOCH)), buyer, "prod-legacy", starts_at=HOUR
    )
    assert subscription.agreement.license_arn != CAROL_LEGACY


def test_the_agreement_starts_at_the_hour_and_the_token_on_a_whole_second(
    store: OperatorStore,
) -> None:
    at = EPOCH + 45.6  # 12:30:45.6
    subscription = plan(store, "prod-legacy", NEW, now=at)
    assert subscription.agreement.starts_at == HOUR
    assert subscription.agreement.license_arn == license_arn_for(NEW, "prod-legacy", repr(at))
    assert subscription.token is not None
    assert subscription.token.issued_at == EPOCH + 45
    store.apply_catalog_now(subscription.changes)
    snapshot = store.catalog_snapshot_now()
    # usage stamped with the start of the hour of subscribing is billable; the hour before not
    assert snapshot.entitlement(NEW, "prod-legacy", HOUR) == subscription.agreement
    assert snapshot.entitlement(NEW, "prod-legacy", HOUR - 1) is None


def test_subscriptions_at_other_times_get_other_licenses(store: OperatorStore) -> None:
    first = plan(store, "prod-legacy", NEW)
    later = plan(store, "prod-legacy", NEW, now=EPOCH + 1)
    assert first.agreement.license_arn != later.agreement.license_arn
    assert plan(store, "prod-legacy", NEW).agreement.license_arn == first.agreement.license_arn


def test_free_trial(store: OperatorStore) -> None:
    subscription = plan(store, "prod-ca", NEW, free_trial=True)
    assert subscription.agreement.free_trial is True
    assert subscription.token is not None
    assert subscription.token.offer_type == "free-trial"
    store.apply_catalog_now(subscription.changes)
    again = plan(store, "prod-ca", NEW)  # the trial agreement is reused, still a trial
    assert again.created_agreement is False
    assert again.token is not None
    assert again.token.offer_type == "free-trial"


def test_no_free_trial_by_default(store: OperatorStore) -> None:
    subscription = plan(store, "prod-ca", NEW)
    assert subscription.agreement.free_trial is False
    assert subscription.token is not None
    assert subscription.token.offer_type is None


# --- input errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "buyer", "field", "message"),
    [
        ("no-such-product", NEW, "product", "no product with product code 'no-such-product'"),
        ("no-such-product", "12", "product", "no product with product code 'no-such-product'"),
        ("prod-legacy", "12345", "buyer", "'12345' is not a 12-digit AWS account id"),
        (
            "prod-legacy",
            "1234567890123",
            "buyer",
            "'1234567890123' is not a 12-digit AWS account id",
        ),
        ("prod-legacy", "12345678901a", "buyer", "'12345678901a' is not a 12-digit AWS account id"),
        ("prod-legacy", "", "buyer", "'' is not a 12-digit AWS account id"),
        ("prod-legacy", "111122223333", "buyer", "111122223333 is a seller account"),
        ("prod-legacy", "999988887777", "buyer", "999988887777 is a seller account"),
    ],
)
def test_input_errors_name_the_field(
    store: OperatorStore, product: str, buyer: str, field: str, message: str
) -> None:
    with pytest.raises(Refusal) as raised:
        plan(store, product, buyer)
    assert (raised.value.field, raised.value.message) == (field, message)
    assert str(raised.value) == f"{field}: {message}"


# --- applied ---------------------------------------------------------------------------------


def test_an_applied_subscription_token_resolves(store: OperatorStore) -> None:
    subscription = plan(store, "prod-legacy", NEW)
    assert subscription.token is not None
    store.apply_catalog_now(subscription.changes, [subscription.token])
    license_arn = subscription.agreement.license_arn
    assert resolve(store, subscription.token.value) == ResolveCustomerResult(
        product_code="prod-legacy",
        customer_aws_account_id=NEW,
        license_arn=license_arn,
        agreement_id=agreement_id_for(license_arn),
        customer_identifier=NEW_IDENTIFIER,
    )
    stored = store.catalog_snapshot_now()
    assert stored.buyers[NEW] == Buyer(NEW, NEW_IDENTIFIER)
    assert stored.agreements_by_license[license_arn] == subscription.agreement

    again = plan(store, "prod-legacy", NEW)  # subscribing twice changes nothing
    assert (again.created_buyer, again.created_agreement, again.changes) == (
        False,
        False,
        Catalog(),
    )
    assert again.agreement.license_arn == license_arn

    with pytest.raises(ExpiredTokenException):
        resolve(store, subscription.token.value, at=datetime(2026, 11, 23, 16, 30, tzinfo=UTC))


def test_an_applied_concurrent_agreements_subscription_resolves_without_identifier(
    store: OperatorStore,
) -> None:
    subscription = plan(store, "prod-ca", DAVE)
    assert subscription.token is not None
    store.apply_catalog_now(subscription.changes, [subscription.token])
    result = resolve(store, subscription.token.value)
    assert (result.customer_aws_account_id, result.license_arn, result.customer_identifier) == (
        DAVE,
        subscription.agreement.license_arn,
        None,
    )
