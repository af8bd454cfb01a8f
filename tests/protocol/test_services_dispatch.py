"""One endpoint, several services: ``X-Amz-Target`` picks the service and its operation; each
answers in its own JSON version; the credential scope's region is checked against the named
service's regions; the journal names the operation of a call refused before it runs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from marketmeter.catalog.model import AccessKey, Catalog, CatalogSnapshot, Seller
from marketmeter.errors import AwsError
from marketmeter.metering.ids import SequentialIds
from marketmeter.metering.types import Caller
from marketmeter.protocol.auth import OpenAuth, StrictAuth
from marketmeter.protocol.endpoint import AwsEndpoint, RequestNotes
from marketmeter.protocol.services import ServiceBinding
from marketmeter.protocol.sigv4 import SigV4Verifier
from marketmeter.servicemodel.spec import AGREEMENT, ENTITLEMENT, METERING, regions_of
from marketmeter.testbench.journal import Journal, JournalQuery
from tests.protocol.test_sigv4 import NOW, SELLER_KEY, SELLER_SECRET, signed


async def entitlements(params: dict[str, Any], caller: Caller, notes: RequestNotes) -> Any:
    notes.product_code = params["ProductCode"]
    return {"Seen": params}


async def describe(params: dict[str, Any], caller: Caller, notes: RequestNotes) -> Any:
    return {"agreementId": params["agreementId"]}


def agreement_error(failure: AwsError, request_id: str) -> bytes:
    return orjson.dumps({"message": failure.message, "requestId": request_id})


def endpoint(journal: Journal, strict: bool = False) -> AwsEndpoint:
    services = (
        ServiceBinding(METERING, {}),
        ServiceBinding(ENTITLEMENT, {"GetEntitlements": entitlements}),
        ServiceBinding(AGREEMENT, {"DescribeAgreement": describe}, agreement_error),
    )
    snapshot = CatalogSnapshot(
        1, Catalog(sellers=(Seller("111122223333", "", (AccessKey(SELLER_KEY, SELLER_SECRET),)),))
    )

    async def catalog() -> CatalogSnapshot:
        return snapshot

    auth = (
        StrictAuth(catalog, SigV4Verifier(wall_clock=lambda: NOW.timestamp()))
        if strict
        else OpenAuth()
    )
    return AwsEndpoint(services, auth, SequentialIds(), journal=journal)


def post(app: AwsEndpoint, target: str, body: bytes, **headers: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mm") as client:
            return await client.post("/", content=body, headers={"x-amz-target": target, **headers})

    return asyncio.run(send())


def test_each_target_reaches_its_service_in_its_json_version() -> None:
    app = endpoint(Journal())
    got = post(app, "AWSMPEntitlementService.GetEntitlements", b'{"ProductCode":"p"}')
    assert (got.status_code, got.headers["content-type"], got.json()) == (
        200,
        "application/x-amz-json-1.1",
        {"Seen": {"ProductCode": "p"}},
    )
    got = post(app, "AWSMPCommerceService_v20200301.DescribeAgreement", b'{"agreementId":"a"}')
    assert (got.status_code, got.headers["content-type"], got.json()) == (
        200,
        "application/x-amz-json-1.0",
        {"agreementId": "a"},
    )


def test_each_service_validates_with_its_own_model_and_writes_its_own_errors() -> None:
    app = endpoint(Journal())
    got = post(app, "AWSMPEntitlementService.GetEntitlements", b'{"Filter":{"DIMENSION":[]}}')
    assert got.status_code == 400
    assert got.headers["x-amzn-errortype"] == "ValidationException"
    assert got.json()["message"] == (
        "2 validation errors detected: Value null at 'productCode' failed to satisfy "
        "constraint: Member must not be null; Value '[]' at 'filter.DIMENSION' failed to "
        "satisfy constraint: Member must have length greater than or equal to 1"
    )
    got = post(app, "AWSMPCommerceService_v20200301.DescribeAgreement", b"{}")
    assert (got.status_code, got.headers["content-type"]) == (400, "application/x-amz-json-1.0")
    assert got.json() == {
        "message": "1 validation error detected: Value null at 'agreementId' failed to satisfy "
        "constraint: Member must not be null",
        "requestId": got.headers["x-amzn-requestid"],
    }


@pytest.mark.parametrize(
    "target",
    ["AWSMPCommerceService_v20200301.GetAgreementTerms", "AWSMPEntitlementService.Nope", ""],
)
def test_a_target_without_a_handler_is_an_unknown_operation(target: str) -> None:
    got = post(endpoint(Journal()), target, b"{}")
    assert (got.status_code, got.headers["x-amzn-errortype"]) == (400, "UnknownOperationException")


def test_the_journal_names_the_operation_of_a_call_refused_before_it_runs() -> None:
    journal = Journal()
    app = endpoint(journal, strict=True)
    got = post(app, "AWSMPEntitlementService.GetEntitlements", b'{"ProductCode":"p"}')
    assert got.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    got = post(app, "AWSMPEntitlementService.Nope", b"{}")
    entries = journal.query(JournalQuery())
    assert {(e.operation, e.error_type) for e in entries} == {
        ("GetEntitlements", "MissingAuthenticationTokenException"),
        (None, "MissingAuthenticationTokenException"),
    }


def test_the_scope_region_must_be_one_the_named_service_is_offered_in() -> None:
    assert regions_of(ENTITLEMENT) == {"us-east-1", "cn-northwest-1", "eusc-de-east-1"}
    auth = StrictAuth(
        lambda: _snapshot(), SigV4Verifier(wall_clock=lambda: NOW.timestamp(), regions=None)
    )
    metering_ok = asyncio.run(auth.authenticate(signed(region="eu-west-1"), METERING))
    assert metering_ok.region == "eu-west-1"
    with pytest.raises(AwsError) as refused:
        asyncio.run(auth.authenticate(signed(region="eu-west-1"), ENTITLEMENT))
    assert (refused.value.code, refused.value.message) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. ",
    )
    with pytest.raises(AwsError):
        asyncio.run(auth.authenticate(signed(region=""), METERING))


async def _snapshot() -> CatalogSnapshot:
    return CatalogSnapshot(
        1, Catalog(sellers=(Seller("111122223333", "", (AccessKey(SELLER_KEY, SELLER_SECRET),)),))
    )
