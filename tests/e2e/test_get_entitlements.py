"""GetEntitlements end to end: boto3, the AWS CLI and the JS SDK v3 against a real
``marketmeter serve --auth sigv4`` (SQLite, or PostgreSQL under MARKETMETER_TEST_DB).

The catalog (tests/data/catalog_entitlements.yaml) has contracts with every value type,
concurrent agreements and agreements that entitle to nothing. One server answers the read-only
tests; the tests that change entitlements (an update while paging, expiry on the service clock,
an unsubscription) share a second one and run in order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from marketmeter.catalog.model import agreement_id_for
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = pytest.mark.e2e

ENTITLEMENT_CATALOG = CATALOG.parent / "catalog_entitlements.yaml"
SELLER_KEY = ("AKIATESTSELLER000001", "test-seller-secret")
OTHER_SELLER_KEY = ("AKIATESTOTHERSELLER1", "other-seller-secret")
ALICE_KEY = ("AKIATESTBUYERALICE01", "alice-secret")
JS_DIR = Path(__file__).parent / "js"

ALICE, BOB = "444455556666", "777788889999"
ARN = "arn:aws:license-manager::294406891311:license:l-{}0000000000000000000000000000{}"
ALICE_1, ALICE_2, ALICE_CCP = ARN.format("a", "001"), ARN.format("a", "002"), ARN.format("a", "003")
BOB_1, BOB_CCP = ARN.format("b", "001"), ARN.format("b", "003")
END = 2082758400  # 2036-01-01T00:00:00Z, the contracts' end
READ_ONLY_END = 2066860800  # 2035-07-01T00:00:00Z


def wire(
    account: str,
    arn: str,
    dimension: str,
    value: dict[str, Any],
    end: int | None = END,
    product: str = "ent-contract",
    customer: str | None = None,
) -> dict[str, Any]:
    """An entitlement as the wire carries it (ExpirationDate in epoch seconds)."""
    out: dict[str, Any] = {"ProductCode": product, "Dimension": dimension}
    if customer is not None:
        out["CustomerIdentifier"] = customer
    out.update(CustomerAWSAccountId=account, LicenseArn=arn, Value=value)
    if end is not None:
        out["ExpirationDate"] = end
    return out


# Every entitlement of ent-contract, in the answer's order: buyer account, LicenseArn, dimension.
CONTRACT = [
    wire(ALICE, ALICE_1, "AdminUsers", {"IntegerValue": 10}),
    wire(ALICE, ALICE_1, "ReadOnlyUsers", {"IntegerValue": 25}, READ_ONLY_END),
    wire(ALICE, ALICE_1, "premium_tier", {"BooleanValue": True}),
    wire(ALICE, ALICE_1, "ratio", {"DoubleValue": 0.75}),
    wire(ALICE, ALICE_1, "region_name", {"StringValue": "eu-west-1"}),
    wire(ALICE, ALICE_2, "AdminUsers", {"IntegerValue": 2}, None),
    wire(BOB, BOB_1, "AdminUsers", {"IntegerValue": 3}),
    wire(BOB, BOB_1, "premium_tier", {"BooleanValue": False}),
]


ADMIN_TOKEN = "entitlements-e2e-admin-token"


def start(tmp: Path) -> ServerProcess:
    return ServerProcess(
        tmp / "ledger.db", ENTITLEMENT_CATALOG, "--auth", "sigv4", "--admin-token", ADMIN_TOKEN
    ).start()


def admin(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The admin API, with the admin token strict mode asks for."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=10)
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start(tmp_path_factory.mktemp("entitlements"))
    try:
        yield process
    finally:
        process.stop()


def entitlement_client(
    url: str, key: tuple[str, str] = SELLER_KEY, region: str = "us-east-1"
) -> Any:
    return boto3.client(
        "marketplace-entitlement",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def accepted_terms(server: ServerProcess, agreement_id: str) -> dict[str, Any]:
    """GetAgreementTerms through boto3 with the seller's key: each accepted term by its
    member name (``configurableUpfrontPricingTerm``, ...)."""
    terms = boto3.client(
        "marketplace-agreement",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=SELLER_KEY[0],
        aws_secret_access_key=SELLER_KEY[1],
    ).get_agreement_terms(agreementId=agreement_id)["acceptedTerms"]
    return {key: body for term in terms for key, body in term.items()}


def as_wire(response: dict[str, Any]) -> dict[str, Any]:
    """boto3's answer with its datetimes back in epoch seconds, without ResponseMetadata."""
    out = dict(response)
    assert out.pop("ResponseMetadata")["HTTPStatusCode"] == 200
    for item in out.get("Entitlements", []):
        if "ExpirationDate" in item:
            item["ExpirationDate"] = int(item["ExpirationDate"].timestamp())
    return out


def get(client: Any, **params: Any) -> dict[str, Any]:
    return as_wire(client.get_entitlements(**params))


def refused(client: Any, **params: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        client.get_entitlements(**params)
    response = raised.value.response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == response["Error"]["Code"]
    assert headers["content-type"] == "application/x-amz-json-1.1"
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# --- boto3 -----------------------------------------------------------------------------------


def test_every_entitlement_of_a_contract_in_a_stable_order(shared: ServerProcess) -> None:
    assert get(entitlement_client(shared.url), ProductCode="ent-contract") == {
        "Entitlements": CONTRACT
    }


def test_a_legacy_product_names_its_customers(shared: ServerProcess) -> None:
    client = entitlement_client(shared.url)
    answer = get(client, ProductCode="ent-ccp", Filter={"CUSTOMER_IDENTIFIER": ["alice-cust-0001"]})
    assert answer == {
        "Entitlements": [
            wire(
                ALICE,
                ALICE_CCP,
                "seats",
                {"IntegerValue": 50},
                product="ent-ccp",
                customer="alice-cust-0001",
            )
        ]
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"CUSTOMER_AWS_ACCOUNT_ID": [BOB]}, CONTRACT[6:]),
        ({"CUSTOMER_AWS_ACCOUNT_ID": [BOB, ALICE, "000000000000"]}, CONTRACT),
        ({"LICENSE_ARN": [ALICE_2, BOB_1]}, CONTRACT[5:]),
        (
            {"CUSTOMER_AWS_ACCOUNT_ID": [ALICE, BOB], "DIMENSION": ["AdminUsers", "ratio"]},
            [CONTRACT[0], CONTRACT[3], CONTRACT[5], CONTRACT[6]],
        ),
        (
            {
                "CUSTOMER_AWS_ACCOUNT_ID": [ALICE],
                "DIMENSION": ["AdminUsers"],
                "LICENSE_ARN": [ALICE_2],
            },
            [CONTRACT[5]],
        ),
        # concurrent-agreements products have no CustomerIdentifier
        ({"CUSTOMER_IDENTIFIER": ["alice-cust-0001"]}, []),
    ],
)
def test_filters_or_their_values_and_and_their_keys(
    shared: ServerProcess, filters: dict[str, list[str]], expected: list[dict[str, Any]]
) -> None:
    answer = get(entitlement_client(shared.url), ProductCode="ent-contract", Filter=filters)
    assert answer == ({"Entitlements": expected} if expected else {})


def test_pages_of_max_results_cover_the_whole_answer(shared: ServerProcess) -> None:
    client = entitlement_client(shared.url)
    pages = []
    token = None
    while True:
        params: dict[str, Any] = {"ProductCode": "ent-contract", "MaxResults": 3}
        if token is not None:
            params["NextToken"] = token
        page = get(client, **params)
        pages.append(page["Entitlements"])
        token = page.get("NextToken")
        if token is None:
            break
    assert pages == [CONTRACT[:3], CONTRACT[3:6], CONTRACT[6:]]
    paginator = client.get_paginator("get_entitlements")
    listed = [
        item
        for page in paginator.paginate(ProductCode="ent-contract", PaginationConfig={"PageSize": 5})
        for item in as_wire(page)["Entitlements"]
    ]
    assert listed == CONTRACT


def test_products_without_entitlements_answer_an_empty_object(shared: ServerProcess) -> None:
    client = entitlement_client(shared.url)
    # a usage product; one whose agreements are not in force is the same
    response = client.get_entitlements(ProductCode="ent-usage")
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-length"] == "2"
    assert as_wire(response) == {}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"Filter": {"DIMENSION": ["AdminUsers"]}},
            (
                400,
                "InvalidParameterException",
                "Invalid filter combination provided. Please provide the CUSTOMER_IDENTIFIER "
                "along with DIMENSION.",
            ),
        ),
        (
            {"Filter": {"CUSTOMER_IDENTIFIER": ["a"], "CUSTOMER_AWS_ACCOUNT_ID": [ALICE]}},
            (
                400,
                "InvalidParameterException",
                "Invalid filter combination provided. CUSTOMER_IDENTIFIER and "
                "CUSTOMER_AWS_ACCOUNT_ID cannot be used together.",
            ),
        ),
        (
            {"NextToken": "not-a-token"},
            (400, "InvalidParameterException", "The NextToken is invalid for this request."),
        ),
        (
            {"MaxResults": 26},
            (
                400,
                "ValidationException",
                "1 validation error detected: Value '26' at 'maxResults' failed to satisfy "
                "constraint: Member must have value less than or equal to 25",
            ),
        ),
        (
            {"Filter": {"CUSTOMER_NAME": ["x"]}},
            (
                400,
                "ValidationException",
                "1 validation error detected: Value 'CUSTOMER_NAME' at 'filter' failed to "
                "satisfy constraint: Member must satisfy enum value set: [CUSTOMER_IDENTIFIER, "
                "DIMENSION, CUSTOMER_AWS_ACCOUNT_ID, LICENSE_ARN]",
            ),
        ),
    ],
)
def test_bad_input_gets_the_models_errors(
    shared: ServerProcess, params: dict[str, Any], expected: tuple[int, str, str]
) -> None:
    client = entitlement_client(shared.url)
    assert refused(client, ProductCode="ent-contract", **params) == expected


def test_a_next_token_belongs_to_its_query(shared: ServerProcess) -> None:
    client = entitlement_client(shared.url)
    token = get(client, ProductCode="ent-contract", MaxResults=1)["NextToken"]
    assert refused(
        client, ProductCode="ent-contract", NextToken=token, Filter={"LICENSE_ARN": [BOB_1]}
    ) == (400, "InvalidParameterException", "The NextToken is invalid for this request.")


@pytest.mark.parametrize("product", ["other-contract", "no-such-product"])
def test_a_seller_reads_only_its_own_products(shared: ServerProcess, product: str) -> None:
    assert refused(entitlement_client(shared.url), ProductCode=product) == (
        400,
        "AccessDeniedException",
        "User: arn:aws:iam::111122223333:root is not authorized to perform: "
        f"aws-marketplace:GetEntitlements on product {product}",
    )
    other = get(entitlement_client(shared.url, OTHER_SELLER_KEY), ProductCode="other-contract")
    assert [item["Value"] for item in other["Entitlements"]] == [{"IntegerValue": 9}]


def test_a_buyer_key_reads_no_entitlements(shared: ServerProcess) -> None:
    status, code, message = refused(
        entitlement_client(shared.url, ALICE_KEY), ProductCode="ent-contract"
    )
    assert (status, code) == (400, "AccessDeniedException")
    assert "aws-marketplace:GetEntitlements with a buyer's access key" in message


@pytest.mark.parametrize("region", ["eu-west-1", "us-west-2"])
def test_the_entitlement_service_is_offered_in_us_east_1(
    shared: ServerProcess, region: str
) -> None:
    assert refused(entitlement_client(shared.url, region=region), ProductCode="ent-contract") == (
        400,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. ",
    )


# --- the AWS CLI -----------------------------------------------------------------------------


def aws(
    url: str,
    tmp_path: Path,
    *args: str,
    variable: str = "AWS_ENDPOINT_URL_MARKETPLACE_ENTITLEMENT_SERVICE",
) -> subprocess.CompletedProcess[str]:
    """``aws marketplace-entitlement ARGS`` finding the server by the endpoint ``variable``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        AWS_ACCESS_KEY_ID=SELLER_KEY[0],
        AWS_SECRET_ACCESS_KEY=SELLER_KEY[1],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    environment[variable] = url
    return subprocess.run(
        [sys.executable, "-m", "awscli", "marketplace-entitlement", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_aws_cli_reads_entitlements_by_the_endpoint_variables(
    shared: ServerProcess, tmp_path: Path
) -> None:
    done = aws(
        shared.url,
        tmp_path,
        "get-entitlements",
        "--product-code",
        "ent-contract",
        "--filter",
        f"CUSTOMER_AWS_ACCOUNT_ID={BOB}",
        "--cli-read-timeout",
        "20",
    )
    assert done.returncode == 0, done.stderr
    # awscli v1 prints the epoch seconds it received
    assert json.loads(done.stdout) == {"Entitlements": CONTRACT[6:]}
    refusal = aws(
        shared.url,
        tmp_path,
        "get-entitlements",
        "--product-code",
        "ent-contract",
        "--filter",
        "DIMENSION=AdminUsers",
        variable="AWS_ENDPOINT_URL",  # the global variable reaches every service
    )
    assert refusal.returncode == 255
    assert (
        "An error occurred (InvalidParameterException) when calling the GetEntitlements "
        "operation: Invalid filter combination provided. Please provide the "
        "CUSTOMER_IDENTIFIER along with DIMENSION." in refusal.stderr
    )


# --- the JS SDK v3 ---------------------------------------------------------------------------


@pytest.mark.node
def test_the_js_sdk_reads_entitlements(shared: ServerProcess, tmp_path: Path) -> None:
    node = shutil.which("node")
    sdk = JS_DIR / "node_modules" / "@aws-sdk" / "client-marketplace-entitlement-service"
    if node is None or not sdk.is_dir():
        pytest.fail(f"the JS SDK tests need node and `npm ci --prefix {JS_DIR}`")
    seller = {"accessKeyId": SELLER_KEY[0], "secretAccessKey": SELLER_KEY[1]}
    jobs = [
        {"input": {"ProductCode": "ent-contract", "MaxResults": 4}, "credentials": seller},
        {
            "input": {"ProductCode": "ent-contract", "Filter": {"LICENSE_ARN": [ALICE_2]}},
            "credentials": seller,
            "endpoint": shared.url,
        },
        {"input": {"ProductCode": "ent-usage"}, "credentials": seller},
        {
            "input": {"ProductCode": "ent-contract", "Filter": {"DIMENSION": ["x"]}},
            "credentials": seller,
        },
        {"input": {"ProductCode": "other-contract"}, "credentials": seller},
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL_MARKETPLACE_ENTITLEMENT_SERVICE=shared.url,
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    done = subprocess.run(
        [node, str(JS_DIR / "entitlements.mjs")],
        input=json.dumps(jobs),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, by_license, empty, bad_filter, not_ours = (
        json.loads(line) for line in done.stdout.splitlines()
    )
    assert first["ok"]
    assert first["output"]["Entitlements"] == CONTRACT[:4]
    assert isinstance(first["output"]["NextToken"], str)
    assert by_license == {"ok": True, "output": {"Entitlements": [CONTRACT[5]]}}
    assert empty == {"ok": True, "output": {}}
    assert bad_filter == {
        "ok": False,
        "name": "InvalidParameterException",
        "status": 400,
        "message": "Invalid filter combination provided. Please provide the "
        "CUSTOMER_IDENTIFIER along with DIMENSION.",
        "fault": "client",
        "isTyped": True,
    }
    assert (not_ours["ok"], not_ours["name"], not_ours["status"]) == (
        False,
        "AccessDeniedException",
        400,
    )


# --- entitlements that change ----------------------------------------------------------------


@pytest.fixture(scope="module")
def changing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start(tmp_path_factory.mktemp("changing"))
    try:
        yield process
    finally:
        process.stop()


def test_paging_is_stable_while_entitlements_change(changing: ServerProcess) -> None:
    client = entitlement_client(changing.url)
    first = get(client, ProductCode="ent-contract", MaxResults=3)
    assert first["Entitlements"] == CONTRACT[:3]
    # before the cursor: alice's first agreement gains a dimension; after it: bob loses one
    # and alice's second agreement is upgraded (an entitlement-updated each)
    status, body = admin(
        changing.url,
        "POST",
        f"/_marketmeter/agreements/{BOB_1}/entitlement-update",
        {"entitlements": [{"dimension": "AdminUsers", "value": 4}]},
    )
    assert status == 200, body
    # a concurrent agreement's quantities changed: AWS amends it, then updates its license
    assert [event["message"]["detail-type"] for event in body["events"]] == [
        "Purchase Agreement Amended - Proposer",
        "License Updated - Manufacturer",
    ]
    assert [event["action"] for event in body["events"]] == ["amend", "entitlement-updated"]
    assert body["events"][0]["message"]["detail"]["agreement"]["intent"] == "AMEND"
    assert body["agreement"]["entitlements"] == [
        {"dimension": "AdminUsers", "value": 4, "expiresAt": "2036-01-01T00:00:00Z"}
    ]
    done = mm(
        "agreements",
        "update",
        ALICE_2,
        "--entitlement",
        "AdminUsers=20",
        "--entitlement",
        "ReadOnlyUsers=5@2030-01-01T00:00:00Z",
        "--endpoint",
        changing.url,
        "--admin-token",
        ADMIN_TOKEN,
        cwd=Path.cwd(),
    )
    assert done.returncode == 0, done.stderr
    assert "entitlement AdminUsers = 20" in done.stdout
    rest = get(client, ProductCode="ent-contract", MaxResults=25, NextToken=first["NextToken"])
    assert rest == {
        "Entitlements": [
            *CONTRACT[3:5],
            wire(ALICE, ALICE_2, "AdminUsers", {"IntegerValue": 20}, None),
            wire(ALICE, ALICE_2, "ReadOnlyUsers", {"IntegerValue": 5}, 1893456000),
            wire(BOB, BOB_1, "AdminUsers", {"IntegerValue": 4}),
        ]
    }


def test_expiry_and_cancellation_follow_the_service_clock(changing: ServerProcess) -> None:
    client = entitlement_client(changing.url)
    clock = "/_marketmeter/clock"
    try:
        # alice's ReadOnlyUsers expire now
        assert admin(changing.url, "PUT", clock, {"time": READ_ONLY_END})[0] == 200
        dimensions = [
            item["Dimension"]
            for item in get(client, ProductCode="ent-contract", Filter={"LICENSE_ARN": [ALICE_1]})[
                "Entitlements"
            ]
        ]
        assert dimensions == ["AdminUsers", "premium_tier", "ratio", "region_name"]
        assert admin(changing.url, "PUT", clock, {"time": END})[0] == 200  # contracts end
        assert get(client, ProductCode="ent-ccp") == {}
    finally:
        assert admin(changing.url, "DELETE", clock)[0] == 200
    status, body = admin(changing.url, "POST", f"/_marketmeter/agreements/{BOB_CCP}/unsubscribe")
    assert status == 200, body
    assert get(client, ProductCode="ent-ccp") == {
        "Entitlements": [
            wire(
                ALICE,
                ALICE_CCP,
                "seats",
                {"IntegerValue": 50},
                product="ent-ccp",
                customer="alice-cust-0001",
            )
        ]
    }


def test_entitlements_a_product_cannot_have_are_refused(changing: ServerProcess) -> None:
    status, body = admin(
        changing.url,
        "POST",
        f"/_marketmeter/agreements/{ALICE_1}/entitlement-update",
        {"entitlements": [{"dimension": "nope", "value": 1}]},
    )
    assert (status, body["field"]) == (400, "entitlements[0]")
    assert body["error"] == "dimension nope is not a dimension of ent-contract"


def test_a_fault_rule_throttles_get_entitlements(changing: ServerProcess) -> None:
    rule = {"operation": "GetEntitlements", "times": 1, "error": {"code": "ThrottlingException"}}
    status, body = admin(changing.url, "PATCH", "/_marketmeter/faults", rule)
    assert status == 200, body
    client = entitlement_client(changing.url)
    assert refused(client, ProductCode="ent-usage") == (
        400,
        "ThrottlingException",
        "Rate exceeded",
    )
    assert get(client, ProductCode="ent-usage") == {}
    status, journal = admin(changing.url, "GET", "/_marketmeter/journal?operation=GetEntitlements")
    assert status == 200, journal
    assert [entry["errorType"] for entry in journal["entries"]][-2:] == [
        "ThrottlingException",
        None,
    ]


def test_a_contract_subscription_grants_what_the_buyer_configured(
    changing: ServerProcess,
) -> None:
    """The command line subscribes a buyer to a contract product, buying quantities on the
    derived offer's rate card: GetEntitlements answers them until the card's twelve months are
    over, the Agreement API shows the configuration, and Created is followed by License
    Updated. A choice the rate card does not have is one clear line naming it."""
    buyer = "121212121212"
    target = ("--endpoint", changing.url, "--admin-token", ADMIN_TOKEN, "--json")
    subscribe = ("agreements", "subscribe", "--product", "ent-contract", "--buyer", buyer)
    done = mm(
        *subscribe,
        "--quantity",
        "AdminUsers=7",
        "--quantity",
        "ReadOnlyUsers=3",
        *target,
        cwd=Path.cwd(),
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    agreement = answer["agreement"]
    start = datetime.fromisoformat(agreement["startsAt"])
    end = int(start.replace(year=start.year + 1).timestamp())
    assert agreement["endsAt"] == start.replace(year=start.year + 1).isoformat().replace(
        "+00:00", "Z"
    )
    assert [event["message"]["detail-type"] for event in answer["events"]] == [
        "Purchase Agreement Created - Proposer",
        "License Updated - Manufacturer",
    ]
    client = entitlement_client(changing.url)
    mine = {"CUSTOMER_AWS_ACCOUNT_ID": [buyer]}
    arn = agreement["licenseArn"]
    assert get(client, ProductCode="ent-contract", Filter=mine) == {
        "Entitlements": [
            wire(buyer, arn, "AdminUsers", {"IntegerValue": 7}, end),
            wire(buyer, arn, "ReadOnlyUsers", {"IntegerValue": 3}, end),
        ]
    }
    terms = accepted_terms(changing, agreement["agreementId"])
    upfront = terms["configurableUpfrontPricingTerm"]
    assert upfront["configuration"] == {
        "selectorValue": "P12M",
        "dimensions": [
            {"dimensionKey": "AdminUsers", "dimensionValue": 7},
            {"dimensionKey": "ReadOnlyUsers", "dimensionValue": 3},
        ],
    }
    assert "usageBasedPricingTerm" not in terms  # sold by contract alone: nothing metered

    wrong = mm(*subscribe[:-1], "343434343434", "--selector", "P36M", *target, cwd=Path.cwd())
    assert wrong.returncode == 1
    assert wrong.stderr == (
        "Error: configuration.selector: 'P36M' is not a selector of the offer: P12M\n"
    )
    usage = mm(
        "agreements",
        "subscribe",
        "--product",
        "ent-usage",
        "--buyer",
        "343434343434",
        "--quantity",
        "users=2",
        *target,
        cwd=Path.cwd(),
    )
    assert usage.returncode == 1
    assert usage.stderr == (
        "Error: configuration: product ent-usage is priced by usage (pricing_model: usage): "
        "no contract to configure\n"
    )


@pytest.mark.backend_agnostic  # formats, fault rules, quotas: no ledger
def test_an_empty_page_with_a_next_token_is_followed_by_boto3s_paginator(
    changing: ServerProcess,
) -> None:
    """AWS warns that a page may hold no entitlement yet carry a NextToken: a fault rule makes
    one. The raw answer is exactly that; boto3's paginator follows it and misses nothing."""
    client = entitlement_client(changing.url)
    everything = get(client, ProductCode="ent-ccp")
    rule = {"operation": "GetEntitlements", "productCode": "ent-ccp", "emptyPage": True}
    status, body = admin(changing.url, "PATCH", "/_marketmeter/faults", {**rule, "times": 1})
    assert status == 200, body
    empty = get(client, ProductCode="ent-ccp")
    assert list(empty) == ["NextToken"]  # no Entitlements key: an empty page, as ever
    assert get(client, ProductCode="ent-ccp", NextToken=empty["NextToken"]) == everything

    assert admin(changing.url, "PATCH", "/_marketmeter/faults", {**rule, "times": 1})[0] == 200
    pages = list(client.get_paginator("get_entitlements").paginate(ProductCode="ent-ccp"))
    assert [len(page.get("Entitlements", [])) for page in pages] == [0, 1]
    assert as_wire(pages[1]) == everything


def test_the_agreement_api_shows_what_a_catalog_contract_entitles_to(
    shared: ServerProcess,
) -> None:
    """A catalog agreement with entitlements and no recorded configuration: its derived terms
    say it bought what GetEntitlements answers (the whole-number ones), not one unit."""
    upfront = accepted_terms(shared, agreement_id_for(ALICE_1))["configurableUpfrontPricingTerm"]
    assert upfront["configuration"] == {
        "selectorValue": "P12M",
        "dimensions": [
            {"dimensionKey": "AdminUsers", "dimensionValue": 10},
            {"dimensionKey": "ReadOnlyUsers", "dimensionValue": 25},
        ],
    }
