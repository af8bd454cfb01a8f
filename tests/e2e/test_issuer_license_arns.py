"""LicenseArns in AWS's form end to end, with boto3: a catalog whose LicenseArns all name AWS
Marketplace's license-issuing account 294406891311 (tests/data/catalog_issuer_arns.yaml) →
the admin API → ResolveCustomer → BatchMeterUsage by LicenseArn → the usage view. The buyer of
a license is its agreement's; two buyers' licenses name the same account. Catalogs in the
earlier form (the buyer's account, tests/data/catalog.yaml) are what every other e2e test runs
on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from marketmeter.catalog.model import agreement_id_for
from tests.e2e.buyers import ALICE_KEY, admin, buyer_client
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

ISSUER_CATALOG = Path(__file__).parent.parent / "data" / "catalog_issuer_arns.yaml"
ALICE, BOB = "444455556666", "777788889999"
ALICE_CA = "arn:aws:license-manager::294406891311:license:l-aaaa0000000000000000000000000001"
BOB_CA = "arn:aws:license-manager::294406891311:license:l-bbbb0000000000000000000000000001"
ALICE_LEGACY = "arn:aws:license-manager::294406891311:license:l-aaaa0000000000000000000000000002"
DERIVED = re.compile(r"arn:aws:license-manager::294406891311:license:l-[0-9a-f]{32}")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("issuer") / "ledger.db", ISSUER_CATALOG)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def usage(server: ServerProcess, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = admin(server.url, "GET", f"/_marketmeter/usage?{query}")
    assert status == 200, body
    records: list[dict[str, Any]] = body["records"]
    return records


def test_catalog_resolve_customer_batch_meter_usage_usage_view(issuer: ServerProcess) -> None:
    # the admin API takes the LicenseArn: a token for that agreement, the agreement itself
    status, minted = admin(
        issuer.url,
        "POST",
        "/_marketmeter/tokens",
        {"productCode": "prod-ca", "buyerAccountId": ALICE, "licenseArn": ALICE_CA},
    )
    assert status == 201, minted
    assert (minted["licenseArn"], minted["customerAWSAccountId"]) == (ALICE_CA, ALICE)
    status, agreement = admin(issuer.url, "GET", f"/_marketmeter/agreements/{quote(ALICE_CA)}")
    assert status == 200, agreement
    assert (agreement["licenseArn"], agreement["buyerAccountId"]) == (ALICE_CA, ALICE)

    seller = make_client(issuer.url)
    resolved = seller.resolve_customer(RegistrationToken=minted["token"])
    del resolved["ResponseMetadata"]
    assert resolved == {
        "ProductCode": "prod-ca",
        "CustomerAWSAccountId": ALICE,
        "LicenseArn": ALICE_CA,
        "Metadata": {"AgreementId": agreement_id_for(ALICE_CA)},
    }

    now = int(time.time()) - 60
    records = [
        {
            "Timestamp": now,
            "CustomerAWSAccountId": resolved["CustomerAWSAccountId"],
            "LicenseArn": resolved["LicenseArn"],
            "Dimension": "requests",
            "Quantity": 4,
        },
        {
            "Timestamp": now,
            "CustomerAWSAccountId": BOB,
            "LicenseArn": BOB_CA,
            "Dimension": "requests",
            "Quantity": 9,
        },
    ]
    answer = seller.batch_meter_usage(UsageRecords=records)  # no ProductCode: by LicenseArn
    assert [r["Status"] for r in answer["Results"]] == ["Success", "Success"]
    assert answer["UnprocessedRecords"] == []
    ids = [r["MeteringRecordId"] for r in answer["Results"]]

    billed = usage(issuer, product="prod-ca")
    assert sorted(
        (r["meteringRecordId"], r["customerAWSAccountId"], r["licenseArn"], r["quantity"])
        for r in billed
    ) == sorted([(ids[0], ALICE, ALICE_CA, 4), (ids[1], BOB, BOB_CA, 9)])
    assert [r["licenseArn"] for r in usage(issuer, customer=BOB)] == [BOB_CA]

    # bob's license names the same account as alice's: the agreement says it is bob's
    mixed = {**records[0], "LicenseArn": BOB_CA}
    with pytest.raises(seller.exceptions.InvalidLicenseException) as refused:
        seller.batch_meter_usage(ProductCode="prod-ca", UsageRecords=[mixed])
    assert refused.value.response["Error"]["Message"] == (
        f"LicenseArn '{BOB_CA}' does not belong to the record's customer."
    )
    assert len(usage(issuer, product="prod-ca")) == 2


def test_a_legacy_product_resolves_to_its_issuer_arn(issuer: ServerProcess) -> None:
    status, body = admin(
        issuer.url, "GET", f"/_marketmeter/tokens?product=prod-legacy&buyer={ALICE}"
    )
    assert status == 200, body
    [token] = body["tokens"]  # minted when the catalog was applied
    resolved = make_client(issuer.url).resolve_customer(RegistrationToken=token["token"])
    assert (resolved["CustomerIdentifier"], resolved["LicenseArn"]) == ("cust-alice", ALICE_LEGACY)

    answer = make_client(issuer.url).batch_meter_usage(
        ProductCode="prod-legacy",
        UsageRecords=[
            {
                "Timestamp": int(time.time()) - 60,
                "CustomerIdentifier": "cust-alice",
                "Dimension": "users",
                "Quantity": 2,
            }
        ],
    )
    assert answer["Results"][0]["Status"] == "Success"
    [row] = usage(issuer, product="prod-legacy")
    # keyed by CustomerIdentifier: the record names no license, and the view shows none
    assert (row["customerAWSAccountId"], row["licenseArn"]) == (ALICE, None)


def test_a_derived_license_arn_is_in_aws_form(issuer: ServerProcess) -> None:
    """The catalog gives alice's prod-ami agreement no LicenseArn: the derived one names the
    issuer account, and MeterUsage bills under it."""
    instance = buyer_client(issuer.url, ALICE_KEY, session="i-0issuer00000001")
    record_id = instance.meter_usage(
        ProductCode="prod-ami",
        Timestamp=int(time.time()) - 60,
        UsageDimension="vcpu_hours",
        UsageQuantity=1,
    )["MeteringRecordId"]
    [row] = usage(issuer, product="prod-ami")
    assert row["meteringRecordId"] == record_id
    assert row["customerAWSAccountId"] == ALICE
    assert DERIVED.fullmatch(row["licenseArn"]), row["licenseArn"]
