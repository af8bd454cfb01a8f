"""StrictAuth: the signing key decides the account and its kind, the kind decides the
operations; a catalog change (a rotated secret) is seen at once."""

from __future__ import annotations

import asyncio

import pytest

from marketmeter.catalog.model import AccessKey, Buyer, Catalog, CatalogSnapshot, Seller
from marketmeter.errors import (
    AccessDeniedException,
    InvalidSignatureException,
    UnrecognizedClientException,
)
from marketmeter.metering.types import Caller
from marketmeter.protocol.auth import StrictAuth
from marketmeter.protocol.sigv4 import SigV4Verifier
from tests.protocol.test_sigv4 import NOW, SELLER_KEY, SELLER_SECRET, signed

BUYER_KEY, BUYER_SECRET = "AKIATESTALICE0000001", "alice-secret"


def catalog(version: int, seller_secret: str = SELLER_SECRET) -> CatalogSnapshot:
    return CatalogSnapshot(
        version,
        Catalog(
            sellers=(Seller("111122223333", "", (AccessKey(SELLER_KEY, seller_secret),)),),
            buyers=(Buyer("444455556666", None, "", (AccessKey(BUYER_KEY, BUYER_SECRET),)),),
        ),
    )


class Catalogs:
    def __init__(self) -> None:
        self.current = catalog(1)

    async def __call__(self) -> CatalogSnapshot:
        return self.current


def strict(catalogs: Catalogs) -> StrictAuth:
    return StrictAuth(catalogs, SigV4Verifier(wall_clock=lambda: NOW.timestamp()))


def test_a_seller_key_makes_a_seller_caller() -> None:
    caller = asyncio.run(strict(Catalogs()).authenticate(signed(region="eu-central-1")))
    assert caller == Caller("seller", "111122223333", SELLER_KEY, None, "eu-central-1")


def test_a_buyer_key_with_a_session_token_makes_a_buyer_caller() -> None:
    request = signed(
        key=BUYER_KEY, secret=BUYER_SECRET, extra_headers={"X-Amz-Security-Token": "i-0abc"}
    )
    caller = asyncio.run(strict(Catalogs()).authenticate(request))
    assert caller == Caller("buyer", "444455556666", BUYER_KEY, "i-0abc", "us-east-1")


def test_a_rotated_secret_takes_effect_with_the_next_catalog_version() -> None:
    catalogs = Catalogs()
    auth = strict(catalogs)
    assert asyncio.run(auth.authenticate(signed())).kind == "seller"
    catalogs.current = catalog(2, seller_secret="rotated")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        asyncio.run(auth.authenticate(signed()))
    assert asyncio.run(auth.authenticate(signed(secret="rotated"))).kind == "seller"


def test_a_removed_key_is_unrecognized() -> None:
    catalogs = Catalogs()
    auth = strict(catalogs)
    catalogs.current = CatalogSnapshot(2, Catalog())
    with pytest.raises(UnrecognizedClientException):
        asyncio.run(auth.authenticate(signed()))


@pytest.mark.parametrize(
    ("kind", "operation", "allowed"),
    [
        ("seller", "BatchMeterUsage", True),
        ("seller", "ResolveCustomer", True),
        ("seller", "MeterUsage", False),
        ("seller", "RegisterUsage", False),
        ("buyer", "BatchMeterUsage", False),
        ("buyer", "ResolveCustomer", False),
        ("buyer", "MeterUsage", True),
        ("buyer", "RegisterUsage", True),
    ],
)
def test_each_kind_of_key_calls_its_own_operations(
    kind: str, operation: str, allowed: bool
) -> None:
    caller = Caller("seller" if kind == "seller" else "buyer", "111122223333", "AKIAKEY")
    auth = strict(Catalogs())
    if allowed:
        auth.authorize(caller, operation)
        return
    with pytest.raises(AccessDeniedException) as failure:
        auth.authorize(caller, operation)
    other = "buyer's" if kind == "seller" else "seller's"
    assert failure.value.message == (
        f"User: arn:aws:iam::111122223333:root is not authorized to perform: "
        f"aws-marketplace:{operation} with a {kind}'s access key AKIAKEY; {operation} is called "
        f"with a {other} credentials"
    )
