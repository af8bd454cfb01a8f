"""ResolveCustomer of a token resolved before: the same answer until it expires (AWS's
documented behaviour, the default), or ``ExpiredTokenException`` under ``single-use``; on both
backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from marketmeter.catalog.model import Agreement, Buyer, Catalog, Product, ProductKind, Seller
from marketmeter.config import TokenReuse
from marketmeter.errors import ExpiredTokenException
from marketmeter.metering.clock import FixedClock
from marketmeter.metering.resolve_customer import ResolveCustomer
from marketmeter.metering.types import Caller, RegistrationToken, ResolveCustomerRequest
from marketmeter.store.base import OperatorStore

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
ARN = "arn:aws:license-manager::294406891311:license:l-a0000000000000000000000000000001"
TOKEN = "T" * 64


def seeded(store: OperatorStore) -> OperatorStore:
    catalog = Catalog(
        sellers=(Seller("111122223333"),),
        products=(Product("prod", "111122223333", ProductKind.SAAS, ("users",)),),
        buyers=(Buyer("444455556666", "cust"),),
        agreements=(Agreement(ARN, "444455556666", "prod"),),
    )
    token = RegistrationToken(TOKEN, "prod", "444455556666", ARN, NOW.timestamp() - 60)
    store.apply_catalog_now(catalog, [token])
    return store


@pytest.mark.parametrize("reuse", list(TokenReuse))
def test_a_token_resolved_again(store: OperatorStore, reuse: TokenReuse) -> None:
    resolve = ResolveCustomer(seeded(store), FixedClock(NOW), timedelta(hours=4), reuse)
    request = ResolveCustomerRequest(TOKEN)
    first = asyncio.run(resolve(request, Caller.anonymous()))
    assert first.customer_identifier == "cust"
    if reuse is TokenReuse.REUSABLE:
        assert asyncio.run(resolve(request, Caller.anonymous())) == first
        return
    with pytest.raises(ExpiredTokenException) as refused:
        asyncio.run(resolve(request, Caller.anonymous()))
    assert refused.value.message == "The registration token has already been used."
