"""The Agreement API end to end (docs/agreement-api.md): boto3, the AWS CLI and the JS SDK v3
(@aws-sdk/client-marketplace-agreement) call every served operation against one real
``marketmeter serve --auth sigv4`` over tests/data/catalog_offers.yaml, its service clock
frozen at 2026-11-23T12:30:00Z; exact values, the model's errors, and strict auth (a seller
reads its own agreements only, a buyer none)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import httpx
import pytest
from botocore.exceptions import ClientError

from marketmeter.catalog.model import agreement_id_for
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = pytest.mark.e2e

OFFERS_CATALOG = CATALOG.parent / "catalog_offers.yaml"
ADMIN_TOKEN = "agreement-test-admin-token"
NOW = 1795437000  # 2026-11-23T12:30:00Z
SELLER = ("AKIATESTSELLER000001", "test-seller-secret")
OTHER_SELLER = ("AKIATESTOTHERSELLER1", "other-seller-secret")
BUYER = ("AKIATESTALICE0000001", "alice-secret")
ALICE_LICENSE = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"
ALICE_CA = agreement_id_for(ALICE_LICENSE)
OTHER = agreement_id_for(
    "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009"
)
PROPOSER = [
    {"name": "PartyType", "values": ["Proposer"]},
    {"name": "AgreementType", "values": ["PurchaseAgreement"]},
]
PRODUCT = {"id": "prod-uvcnsfcl78h7f", "type": "SaaSProduct"}
DESCRIBED = {
    "agreementId": ALICE_CA,
    "acceptor": {"accountId": "444455556666"},
    "proposer": {"accountId": "111122223333"},
    "startTime": 1767225600,
    "endTime": 1798761600,
    "acceptanceTime": 1767225600,
    "agreementType": "PurchaseAgreement",
    "estimatedCharges": {"currencyCode": "USD", "agreementValue": "1000"},
    "proposalSummary": {"resources": [PRODUCT], "offerId": "offer-testcontract1"},
    "status": "ACTIVE",
    "initialAgreementId": ALICE_CA,
    "endTimeBehavior": {"type": "RENEW"},
}
UPFRONT = {
    "type": "ConfigurableUpfrontPricingTerm",
    "id": "term-78c3d80af610db3beb43b3c22e770f718c4102eb737d7fe1c572f03d5a27bee5",
    "currencyCode": "USD",
    "rateCards": [
        {
            "selector": {"type": "Duration", "value": "P12M"},
            "constraints": {
                "multipleDimensionSelection": "Allowed",
                "quantityConfiguration": "Allowed",
            },
            "rateCard": [
                {"dimensionKey": "seats", "price": "100.00"},
                {"dimensionKey": "admins", "price": "250.00"},
            ],
        }
    ],
    "configuration": {
        "selectorValue": "P12M",
        "dimensions": [{"dimensionKey": "seats", "dimensionValue": 10}],
    },
}
ENTITLEMENTS = {
    "agreementEntitlements": [
        {
            "resource": PRODUCT,
            "type": "License",
            "status": "PROVISIONED",
            "statusReasonCode": "AGREEMENT_ACTIVE",
            "licenseArn": ALICE_LICENSE,
        }
    ]
}
SUMMARY = {
    "agreementId": ALICE_CA,
    "acceptanceTime": 1767225600,
    "startTime": 1767225600,
    "endTime": 1798761600,
    "lastUpdateTime": 1767225600,
    "agreementType": "PurchaseAgreement",
    "acceptor": {"accountId": "444455556666"},
    "proposer": {"accountId": "111122223333"},
    "proposalSummary": {"resources": [PRODUCT], "offerId": "offer-testcontract1"},
    "status": "ACTIVE",
    "entitlements": [{"licenseArn": ALICE_LICENSE}],
    "initialAgreementId": ALICE_CA,
    "endTimeBehaviorType": "RENEW",
}
BY_OFFER = [*PROPOSER, {"name": "OfferId", "values": ["offer-testcontract1"]}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("agreements") / "ledger.db"
    process = ServerProcess(
        db, OFFERS_CATALOG, "--auth", "sigv4", "--admin-token", ADMIN_TOKEN
    ).start()
    try:
        answer = httpx.put(
            f"{process.url}/_marketmeter/clock",
            json={"time": NOW, "frozen": True},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        yield process
    finally:
        process.stop()


def epochs(value: Any) -> Any:
    """boto3's output with datetimes as epoch seconds and ResponseMetadata dropped."""
    if hasattr(value, "timestamp"):
        seconds = value.timestamp()
        return int(seconds) if float(seconds).is_integer() else seconds
    if isinstance(value, dict):
        return {k: epochs(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [epochs(item) for item in value]
    return value


def client(server: ServerProcess, key: tuple[str, str] = SELLER) -> Any:
    return boto3.client(
        "marketplace-agreement",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def test_boto3_calls_every_served_operation(server: ServerProcess) -> None:
    agreements = client(server)
    assert epochs(agreements.describe_agreement(agreementId=ALICE_CA)) == DESCRIBED
    terms = epochs(agreements.get_agreement_terms(agreementId=ALICE_CA, maxResults=2))
    assert terms["acceptedTerms"][1] == {"configurableUpfrontPricingTerm": UPFRONT}
    rest = epochs(
        agreements.get_agreement_terms(agreementId=ALICE_CA, nextToken=terms["nextToken"])
    )
    assert [next(iter(term)) for term in rest["acceptedTerms"]] == [
        "usageBasedPricingTerm",
        "validityTerm",
        "renewalTerm",
        "paymentScheduleTerm",
    ]
    assert epochs(agreements.search_agreements(catalog="AWSMarketplace", filters=BY_OFFER)) == {
        "agreementViewSummaries": [SUMMARY]
    }
    paginator = agreements.get_paginator("search_agreements")
    pages = list(paginator.paginate(filters=PROPOSER, PaginationConfig={"PageSize": 4}))
    assert [len(page["agreementViewSummaries"]) for page in pages] == [4, 4, 4, 3]
    assert epochs(agreements.get_agreement_entitlements(agreementId=ALICE_CA)) == ENTITLEMENTS
    assert epochs(agreements.get_agreement_contacts(agreementId=ALICE_CA)) == {}


def error_of(call: Any, modelled: bool = True, **params: Any) -> dict[str, Any]:
    """The error boto3 raises; a ``modelled`` one (an error shape of the model) has the
    shapes' ``requestId``: the request's x-amzn-RequestId, as boto3 reads it."""
    with pytest.raises(ClientError) as raised:
        call(**params)
    response = raised.value.response
    if modelled:
        assert response["requestId"] == response["ResponseMetadata"]["RequestId"]
    else:
        assert "requestId" not in response
    return {
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
        **{k: v for k, v in response.items() if k not in ("ResponseMetadata", "requestId")},
    }


def test_boto3_gets_the_models_errors(server: ServerProcess) -> None:
    agreements = client(server)
    assert error_of(agreements.describe_agreement, agreementId="agmt-unknown") == {
        "status": 404,
        "Error": {
            "Code": "ResourceNotFoundException",
            "Message": "Agreement agmt-unknown not found",
        },
        "message": "Agreement agmt-unknown not found",
        "resourceId": "agmt-unknown",
        "resourceType": "Agreement",
    }
    long_id = "agmt-" + "x" * 60
    too_long = (
        f"1 validation error detected: Value '{long_id}' at 'agreementId' failed to satisfy "
        "constraint: Member must have length less than or equal to 64"
    )
    assert error_of(agreements.get_agreement_terms, agreementId=long_id) == {
        "status": 400,
        "Error": {"Code": "ValidationException", "Message": too_long},
        "message": too_long,
    }
    assert error_of(agreements.search_agreements, filters=PROPOSER[:1]) == {
        "status": 400,
        "Error": {
            "Code": "ValidationException",
            "Message": "Provided combination of filters is not supported",
        },
        "message": "Provided combination of filters is not supported",
        "reason": "UNSUPPORTED_FILTERS",
    }
    unknown = error_of(agreements.cancel_agreement, modelled=False, agreementId=ALICE_CA)
    assert (unknown["status"], unknown["Error"]["Code"]) == (400, "UnknownOperationException")


def test_strict_auth_lets_a_seller_read_its_own_agreements_only(server: ServerProcess) -> None:
    other = client(server, OTHER_SELLER)
    assert error_of(other.describe_agreement, agreementId=ALICE_CA) == {
        "status": 403,
        "Error": {
            "Code": "AccessDeniedException",
            "Message": "User: arn:aws:iam::999988887777:root is not authorized to perform: "
            f"aws-marketplace:DescribeAgreement on resource: agreement {ALICE_CA}",
        },
        "message": "User: arn:aws:iam::999988887777:root is not authorized to perform: "
        f"aws-marketplace:DescribeAgreement on resource: agreement {ALICE_CA}",
        "reason": "INVALID_ACCESS",
    }
    assert epochs(other.describe_agreement(agreementId=OTHER))["agreementId"] == OTHER
    found = other.search_agreements(filters=PROPOSER)["agreementViewSummaries"]
    assert [summary["agreementId"] for summary in found] == [OTHER]
    buyer = error_of(client(server, BUYER).get_agreement_entitlements, agreementId=ALICE_CA)
    assert (buyer["status"], buyer["Error"]["Code"]) == (403, "AccessDeniedException")


def test_a_fault_rule_throttles_an_agreement_operation(server: ServerProcess) -> None:
    rule = {"operation": "GetAgreementTerms", "times": 1}
    rule["error"] = {"code": "ThrottlingException", "statusCode": 429}
    answer = httpx.patch(
        f"{server.url}/_marketmeter/faults",
        json=rule,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    agreements = client(server)
    assert error_of(agreements.get_agreement_terms, agreementId=ALICE_CA) == {
        "status": 429,
        "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
        "message": "Rate exceeded",
    }
    assert len(agreements.get_agreement_terms(agreementId=ALICE_CA)["acceptedTerms"]) == 6
    journal = httpx.get(
        f"{server.url}/_marketmeter/journal",
        params={"operation": "GetAgreementTerms", "status": "429"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    ).json()["entries"]
    assert [(e["productCode"], e["fault"]) for e in journal] == [
        ("prod-ca", "fault rule 1: ThrottlingException")
    ]


# --- the AWS CLI ---------------------------------------------------------------------------------

ERROR_LINE = re.compile(r"An error occurred \((\w+)\) when calling the (\w+) operation: (.*)")


def aws(server: ServerProcess, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=SELLER[0],
        AWS_SECRET_ACCESS_KEY=SELLER[1],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL_MARKETPLACE_AGREEMENT=server.url,
    )
    command = [sys.executable, "-m", "awscli", "marketplace-agreement", *args]
    command += ["--cli-read-timeout", "10"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_the_aws_cli_calls_every_served_operation(server: ServerProcess, tmp_path: Path) -> None:
    described = json.loads(
        aws(server, tmp_path, "describe-agreement", "--agreement-id", ALICE_CA).stdout
    )
    # awscli v1 prints timestamps as received; its own botocore (1.43) models DescribeAgreement
    # without initialAgreementId and endTimeBehavior, so its parser drops them
    newer = {"initialAgreementId", "endTimeBehavior"}
    assert described == {key: value for key, value in DESCRIBED.items() if key not in newer}
    terms = json.loads(
        aws(server, tmp_path, "get-agreement-terms", "--agreement-id", ALICE_CA).stdout
    )
    assert terms["acceptedTerms"][1] == {"configurableUpfrontPricingTerm": UPFRONT}
    assert len(terms["acceptedTerms"]) == 6
    found = json.loads(
        aws(server, tmp_path, "search-agreements", "--filters", json.dumps(BY_OFFER)).stdout
    )
    assert [s["agreementId"] for s in found["agreementViewSummaries"]] == [ALICE_CA]
    entitlements = aws(server, tmp_path, "get-agreement-entitlements", "--agreement-id", ALICE_CA)
    assert json.loads(entitlements.stdout) == ENTITLEMENTS
    # awscli v1's botocore (1.43) has no get-agreement-contacts: boto3 and the JS SDK call it
    missing = aws(server, tmp_path, "describe-agreement", "--agreement-id", "agmt-unknown")
    assert missing.returncode == 255
    match = ERROR_LINE.search(missing.stderr)
    assert match is not None
    assert match.groups() == (
        "ResourceNotFoundException",
        "DescribeAgreement",
        "Agreement agmt-unknown not found",
    )


# --- the JS SDK v3 -------------------------------------------------------------------------------

JS_SCRIPT = Path(__file__).parent / "js" / "agreement.mjs"
JS_SDK = Path(__file__).parent / "js" / "node_modules" / "@aws-sdk" / "client-marketplace-agreement"


@pytest.mark.node
def test_the_js_sdk_calls_every_served_operation(server: ServerProcess) -> None:
    node = shutil.which("node")
    if node is None or not JS_SDK.is_dir():
        pytest.fail("the JS SDK tests need node and `npm ci --prefix tests/e2e/js`")
    credentials = {"accessKeyId": SELLER[0], "secretAccessKey": SELLER[1]}
    jobs = [
        {"operation": "DescribeAgreement", "input": {"agreementId": ALICE_CA}},
        {"operation": "GetAgreementTerms", "input": {"agreementId": ALICE_CA, "maxResults": 2}},
        {
            "operation": "SearchAgreements",
            "input": {"catalog": "AWSMarketplace", "filters": BY_OFFER},
        },
        {"operation": "GetAgreementEntitlements", "input": {"agreementId": ALICE_CA}},
        # GetAgreementContacts is newer than this SDK (3.1164): boto3 calls it
        {"operation": "DescribeAgreement", "input": {"agreementId": "agmt-unknown"}},
        {"operation": "SearchAgreements", "input": {"filters": PROPOSER[:1]}},
        {
            "operation": "DescribeAgreement",
            "input": {"agreementId": ALICE_CA},
            "credentials": {"accessKeyId": OTHER_SELLER[0], "secretAccessKey": OTHER_SELLER[1]},
        },
    ]
    for job in jobs:
        job.setdefault("credentials", credentials)
        job["endpoint"] = server.url
    run = subprocess.run(
        [node, str(JS_SCRIPT)],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert results[0] == {"ok": True, "output": DESCRIBED}
    assert results[1]["output"]["acceptedTerms"][1] == {"configurableUpfrontPricingTerm": UPFRONT}
    assert len(results[1]["output"]["acceptedTerms"]) == 2
    assert isinstance(results[1]["output"]["nextToken"], str)
    assert results[2] == {"ok": True, "output": {"agreementViewSummaries": [SUMMARY]}}
    assert results[3] == {"ok": True, "output": ENTITLEMENTS}
    assert results[4:] == [
        {
            "ok": False,
            "name": "ResourceNotFoundException",
            "status": 404,
            "message": "Agreement agmt-unknown not found",
            "fault": "client",
            "isTyped": True,
            "reason": None,
            "resourceId": "agmt-unknown",
        },
        {
            "ok": False,
            "name": "ValidationException",
            "status": 400,
            "message": "Provided combination of filters is not supported",
            "fault": "client",
            "isTyped": True,
            "reason": "UNSUPPORTED_FILTERS",
            "resourceId": None,
        },
        {
            "ok": False,
            "name": "AccessDeniedException",
            "status": 403,
            "message": "User: arn:aws:iam::999988887777:root is not authorized to perform: "
            f"aws-marketplace:DescribeAgreement on resource: agreement {ALICE_CA}",
            "fault": "client",
            "isTyped": True,
            "reason": "INVALID_ACCESS",
            "resourceId": None,
        },
    ]


# --- offers through the CLI, seen by the Agreement API --------------------------------------------


def test_offers_edited_with_the_cli_are_the_terms_the_api_answers(server: ServerProcess) -> None:
    env = {"MARKETMETER_ADMIN_TOKEN": ADMIN_TOKEN}
    target = ("--endpoint", server.url)
    listed = mm("offers", "list", "--json", *target, cwd=server.db.parent, env=env)
    assert [o["offer_id"] for o in json.loads(listed.stdout)] == [
        "offer-testcontract1",
        "offer-testpublic001",
    ]
    public = json.loads(
        mm(
            "offers",
            "show",
            "offer-testpublic001",
            "--json",
            *target,
            cwd=server.db.parent,
            env=env,
        ).stdout
    )
    public["terms"][1] = {"supportTerm": {"refundPolicy": "Refunds within 30 days."}}
    put = mm(
        "offers",
        "put",
        "offer-testpublic001",
        "--entry",
        json.dumps(public),
        *target,
        cwd=server.db.parent,
        env=env,
    )
    assert put.returncode == 0, put.stderr
    bob = agreement_id_for(
        "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002"
    )
    terms = client(server).get_agreement_terms(agreementId=bob)["acceptedTerms"]
    assert terms[1]["supportTerm"]["refundPolicy"] == "Refunds within 30 days."
    refused = mm("offers", "remove", "offer-testpublic001", *target, cwd=server.db.parent, env=env)
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        "Error: offerId: offer offer-testpublic001 has agreements: "
        "arn:aws:license-manager::777788889999:license:l-b0000000000000000000000000000002",
    )
