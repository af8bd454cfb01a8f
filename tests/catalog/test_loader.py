"""The catalog loader: YAML in, a validated ``Catalog`` out, or every problem named at once."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from marketmeter.catalog.loader import CatalogError, load_catalog, load_catalog_file
from marketmeter.catalog.model import (
    AccessKey,
    Agreement,
    AgreementState,
    Buyer,
    Catalog,
    Integration,
    Product,
    ProductKind,
    Seller,
)

TEST_CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"
DEMO_TEXT = resources.files("marketmeter.catalog").joinpath("demo.yaml").read_text("utf-8")

# AWS's form: the account is AWS Marketplace's license issuer, never the buyer's.
GENERATED_ARN = re.compile(r"arn:aws:license-manager::294406891311:license:l-(?P<id>[0-9a-f]{32})")
ISSUER_ARN = "arn:aws:license-manager::294406891311:license:l-"
JAN_2020 = 1577836800.0  # 2020-01-01T00:00:00Z
JAN_2021 = 1609459200.0  # 2021-01-01T00:00:00Z

# One seller, one product, one buyer: a valid base the bad files below add a fault to.
BASE = """\
sellers:
  - account_id: "111122223333"
products:
  - product_code: p1
    seller: "111122223333"
    kind: saas
    dimensions: [users]
buyers:
  - account_id: "444455556666"
    customer_identifier: c1
"""


def problems_of(text: str, existing: Catalog | None = None) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(text, existing, source="cat.yaml")
    assert caught.value.source == "cat.yaml"
    return caught.value.problems


def with_agreement(*lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"{BASE}agreements:\n  - buyer: '444455556666'\n    product: p1\n{body}"


# --- good files ---------------------------------------------------------------------------


def test_demo_catalog_loads() -> None:
    catalog = load_catalog(DEMO_TEXT, source="demo catalog")

    assert len(catalog.sellers) == 2
    assert len(catalog.products) == 7
    assert len(catalog.buyers) == 4
    assert len(catalog.agreements) == 10
    assert catalog.sellers[0] == Seller(
        "111122223333",
        "Demo Seller",
        (AccessKey("AKIAMMDEMOSELLER0001", "demo-seller-secret-do-not-use-in-production"),),
    )
    assert catalog.products[1] == Product(
        product_code="demo-saas-ca",
        seller_account_id="111122223333",
        kind=ProductKind.SAAS,
        dimensions=("requests", "seats"),
        integration=Integration.CONCURRENT_AGREEMENTS,
        name="Demo SaaS (Concurrent Agreements integration)",
        registration_url="http://127.0.0.1:8000/marketplace/register",
        per_request_metering=False,
    )
    assert catalog.products[2].kind is ProductKind.AMI
    assert catalog.products[2].integration is Integration.LEGACY
    assert catalog.buyers[1] == Buyer("777788889999", "bob-cust-0002", "Bob Ltd", ())
    assert catalog.agreements[2] == Agreement(
        license_arn="arn:aws:license-manager::294406891311:license:l-ca401000000000000000000000000001",
        buyer_account_id="222233334444",
        product_code="demo-saas-legacy",
        state=AgreementState.SUSPENDED,
        starts_at=JAN_2020,
        ends_at=None,
    )


def test_test_catalog_loads_from_file() -> None:
    catalog = load_catalog_file(TEST_CATALOG)

    assert len(catalog.sellers) == 2
    assert len(catalog.products) == 6
    assert len(catalog.buyers) == 7
    assert len(catalog.agreements) == 16
    assert [p.product_code for p in catalog.products] == [
        "prod-legacy",
        "prod-ca",
        "prod-ami",
        "prod-other",
        "prod-agent",
        "prod-container",
    ]
    assert catalog.products[4].per_request_metering is True
    assert catalog.buyers[0].access_keys == (AccessKey("AKIATESTALICE0000001", "alice-secret"),)
    assert catalog.sellers[1] == Seller("999988887777", "Other Seller", ())
    assert catalog.products[0].dimensions == ("users", "api_calls")
    assert catalog.buyers[4] == Buyer("333344445555", "cust-erin", "starts in 2099", ())
    frank = catalog.agreements[8]
    assert frank.buyer_account_id == "666677778888"
    assert (frank.starts_at, frank.ends_at) == (JAN_2020, JAN_2021)
    assert frank.state is AgreementState.SUBSCRIBED
    grace = catalog.agreements[9]
    assert grace.state is AgreementState.UNSUBSCRIBED
    assert catalog.agreements[6].starts_at == 4070908800.0  # 2099-01-01T00:00:00Z


def test_empty_file_is_an_empty_catalog() -> None:
    assert load_catalog("") == Catalog()
    assert load_catalog("# nothing yet\n") == Catalog()


def test_generated_license_arn_is_stable_and_well_formed() -> None:
    text = with_agreement("start: 2020-01-01T00:00:00Z")

    first = load_catalog(text).agreements[0]
    second = load_catalog(text).agreements[0]

    assert first.license_arn == second.license_arn
    match = GENERATED_ARN.fullmatch(first.license_arn)
    assert match is not None, first.license_arn
    assert first.buyer_account_id == "444455556666"  # from the agreement, not from the ARN
    assert first.starts_at == JAN_2020
    assert first.state is AgreementState.SUBSCRIBED


def test_generated_license_arn_differs_per_agreement_start() -> None:
    text = f"""{BASE}agreements:
  - {{buyer: "444455556666", product: p1, start: 2020-01-01T00:00:00Z,
      end: 2021-01-01T00:00:00Z}}
  - {{buyer: "444455556666", product: p1, start: 2022-01-01T00:00:00Z}}
"""
    first, second = load_catalog(text).agreements

    assert first.license_arn != second.license_arn
    assert GENERATED_ARN.fullmatch(first.license_arn) is not None
    assert GENERATED_ARN.fullmatch(second.license_arn) is not None


def test_time_without_zone_is_utc_and_offsets_are_honoured() -> None:
    text = with_agreement('start: "2020-01-01T00:00:00"', 'end: "2021-01-01T02:00:00+02:00"')

    agreement = load_catalog(text).agreements[0]

    assert (agreement.starts_at, agreement.ends_at) == (JAN_2020, JAN_2021)


def test_references_into_existing_catalog_are_accepted() -> None:
    existing = load_catalog_file(TEST_CATALOG)
    text = """\
products:
  - {product_code: prod-new, seller: "999988887777", kind: saas, dimensions: [seats]}
agreements:
  - buyer: "555566667777"
    product: prod-legacy
    license_arn: arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000001
  - {buyer: "777788889999", product: prod-new}
"""
    catalog = load_catalog(text, existing)

    assert catalog.sellers == ()
    assert catalog.buyers == ()
    assert [p.product_code for p in catalog.products] == ["prod-new"]
    assert catalog.agreements[0] == Agreement(
        "arn:aws:license-manager::555566667777:license:l-d0000000000000000000000000000001",
        "555566667777",
        "prod-legacy",
    )
    assert catalog.agreements[1].product_code == "prod-new"


def test_reapplying_a_file_over_itself_is_accepted() -> None:
    text = TEST_CATALOG.read_text("utf-8")
    first = load_catalog(text)

    assert load_catalog(text, first) == first


# --- bad files: each problem names its entry and field ------------------------------------


def test_unknown_field_is_named() -> None:
    text = with_agreement("dimensons: [users]")

    assert problems_of(text) == ["agreements[0] (444455556666 × p1): dimensons: unknown field"]


def test_typo_of_a_required_field_reports_both_sides() -> None:
    text = BASE.replace("dimensions: [users]", "dimensons: [users]")

    assert problems_of(text) == [
        "products[0] (p1): dimensions: Field required",
        "products[0] (p1): dimensons: unknown field",
    ]


def test_unknown_top_level_section_is_named() -> None:
    assert problems_of("selers: []\n") == [
        "selers: unknown section; known: sellers, products, buyers, agreements, offers"
    ]


def test_bad_kind() -> None:
    text = BASE.replace("kind: saas", "kind: desktop")

    assert problems_of(text) == [
        "products[0] (p1): kind: Input should be 'saas', 'ami' or 'container'"
    ]


def test_bad_state() -> None:
    assert problems_of(with_agreement("state: active")) == [
        "agreements[0] (444455556666 × p1): state: Input should be 'subscribed', "
        "'unsubscribe-pending', 'unsubscribed' or 'suspended'"
    ]


def test_product_with_unknown_seller() -> None:
    text = BASE.replace('seller: "111122223333"', 'seller: "000011112222"')

    assert problems_of(text) == ["products[0] (p1): seller: no seller with account_id 000011112222"]


def test_agreement_with_unknown_buyer_and_product() -> None:
    text = f"{BASE}agreements:\n  - {{buyer: '000000000001', product: nope}}\n"

    assert problems_of(text) == [
        "agreements[0] (000000000001 × nope): buyer: no buyer with account_id 000000000001",
        "agreements[0] (000000000001 × nope): product: no product with product_code nope",
    ]


def test_duplicate_product_code() -> None:
    text = BASE.replace(
        "buyers:",
        "  - {product_code: p1, seller: '111122223333', kind: ami, dimensions: [x]}\nbuyers:",
    )

    assert problems_of(text) == ["products[1] (p1): product_code: listed twice"]


def test_product_code_violating_the_model_pattern() -> None:
    text = BASE.replace("product_code: p1", "product_code: bad code!")

    assert problems_of(text) == [
        "products[0] (bad code!): product_code: 'bad code!' failed to satisfy constraint: "
        "must satisfy regular expression pattern: ^[-a-zA-Z0-9/=:_.@]*$"
    ]


def test_dimension_longer_than_255() -> None:
    long = "d" * 256
    text = BASE.replace("[users]", f"[users, {long}]")

    assert problems_of(text) == [
        f"products[0] (p1): dimensions[1]: '{long}' failed to satisfy constraint: "
        "must have length less than or equal to 255"
    ]


def test_dimension_of_255_is_accepted() -> None:
    text = BASE.replace("[users]", f"[{'d' * 255}]")

    assert load_catalog(text).products[0].dimensions == ("d" * 255,)


def test_dimension_listed_twice() -> None:
    text = BASE.replace("[users]", "[users, users]")

    assert problems_of(text) == ["products[0] (p1): dimensions: a dimension is listed twice"]


def test_license_arns_of_the_issuer_or_any_account_load_and_name_no_buyer() -> None:
    """AWS's LicenseArns name AWS Marketplace's account 294406891311; catalogs written for
    earlier versions name the buyer's. Both load; the buyer is the agreement's ``buyer``."""
    text = f"""{BASE}  - account_id: "777788889999"
agreements:
  - {{buyer: "444455556666", product: p1, license_arn: {ISSUER_ARN}{"1" * 32}}}
  - {{buyer: "777788889999", product: p1, license_arn: {ISSUER_ARN}{"2" * 32}}}
  - {{buyer: "444455556666", product: p1, start: 2021-01-01T00:00:00Z,
      license_arn: "arn:aws:license-manager::444455556666:license:l-{"3" * 32}"}}
  - {{buyer: "777788889999", product: p1, start: 2021-01-01T00:00:00Z,
      license_arn: "arn:aws:license-manager::111122223333:license:l-{"4" * 32}"}}
"""
    agreements = load_catalog(text).agreements

    assert [(a.license_arn[:45], a.buyer_account_id) for a in agreements] == [
        ("arn:aws:license-manager::294406891311:license", "444455556666"),
        ("arn:aws:license-manager::294406891311:license", "777788889999"),
        ("arn:aws:license-manager::444455556666:license", "444455556666"),
        ("arn:aws:license-manager::111122223333:license", "777788889999"),
    ]


def test_a_catalog_applied_again_keeps_the_arns_earlier_versions_derived() -> None:
    """A ledger holding an agreement under the ARN earlier versions derived (the buyer's
    account, the same l- id) keeps it: no second agreement for the same buyer and product."""
    text = with_agreement("start: 2020-01-01T00:00:00Z")
    derived = load_catalog(text).agreements[0]
    legacy_arn = derived.license_arn.replace("294406891311", "444455556666")
    existing = Catalog(
        agreements=(Agreement(legacy_arn, "444455556666", "p1", starts_at=JAN_2020),)
    )

    assert load_catalog(text, existing).agreements[0].license_arn == legacy_arn
    # without that agreement in the ledger, AWS's form
    assert load_catalog(text, Catalog()).agreements[0].license_arn == derived.license_arn


def test_malformed_license_arn() -> None:
    assert problems_of(with_agreement("license_arn: arn:aws:license-manager::nope")) == [
        "agreements[0] (444455556666 × p1): license_arn: must look like "
        "arn:aws:license-manager::294406891311:license:l-<32 hex digits>"
    ]


def test_end_before_start() -> None:
    text = with_agreement("start: 2021-01-01T00:00:00Z", "end: 2020-01-01T00:00:00Z")

    assert problems_of(text) == ["agreements[0] (444455556666 × p1): end: must be after start"]


def test_end_equal_to_start() -> None:
    text = with_agreement("start: 2021-01-01T00:00:00Z", "end: 2021-01-01T00:00:00Z")

    assert problems_of(text) == ["agreements[0] (444455556666 × p1): end: must be after start"]


def test_access_key_claimed_by_two_accounts() -> None:
    text = """\
sellers:
  - account_id: "111122223333"
    access_keys: [{access_key_id: AKIASHAREDKEY00001, secret_access_key: a}]
buyers:
  - account_id: "444455556666"
    access_keys: [{access_key_id: AKIASHAREDKEY00001, secret_access_key: b}]
"""
    assert problems_of(text) == [
        "buyers[0] (444455556666): access_keys[0].access_key_id: AKIASHAREDKEY00001 already "
        "belongs to account 111122223333"
    ]


def test_access_key_of_an_existing_account() -> None:
    existing = load_catalog_file(TEST_CATALOG)
    text = """\
buyers:
  - account_id: "123412341234"
    access_keys: [{access_key_id: AKIATESTSELLER000001, secret_access_key: mine}]
"""
    assert problems_of(text, existing) == [
        "buyers[0] (123412341234): access_keys[0].access_key_id: AKIATESTSELLER000001 already "
        "belongs to account 111122223333"
    ]


def test_customer_identifier_of_an_existing_buyer() -> None:
    existing = load_catalog_file(TEST_CATALOG)
    text = "buyers:\n  - {account_id: '123412341234', customer_identifier: cust-alice}\n"

    assert problems_of(text, existing) == [
        "buyers[0] (123412341234): customer_identifier: 'cust-alice' is empty or already used "
        "by buyer 444455556666"
    ]


def test_account_listed_as_seller_and_buyer() -> None:
    text = "sellers:\n  - account_id: '111122223333'\nbuyers:\n  - account_id: '111122223333'\n"

    assert problems_of(text) == [
        "buyers[0] (111122223333): account_id: listed twice (buyers and sellers included)"
    ]


def test_unquoted_account_id_is_refused_with_entry_and_field() -> None:
    assert problems_of("sellers:\n  - account_id: 12345\n") == [
        "sellers[0] (12345): account_id: Input should be a valid string"
    ]


def test_not_yaml() -> None:
    problems = problems_of("sellers: [\n  - {")

    assert len(problems) == 1
    assert problems[0].startswith("not valid YAML: ")
    assert "line 2, column 3" in problems[0]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    assert problems_of(text) == ["the file must be a mapping with sellers, products, ..."]


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"

    with pytest.raises(CatalogError) as caught:
        load_catalog_file(missing)

    assert caught.value.source == str(missing)
    assert caught.value.problems == ["cannot read the file: No such file or directory"]


def test_several_schema_problems_are_reported_at_once() -> None:
    text = """\
sellers:
  - account_id: "1111"
products:
  - {product_code: p1, seller: "111122223333", kind: desktop, dimensions: [users]}
agreements:
  - {buyer: "444455556666", product: p1, dimensons: []}
"""
    assert problems_of(text) == [
        "sellers[0] (1111): account_id: String should match pattern '^[0-9]{12}$'",
        "products[0] (p1): kind: Input should be 'saas', 'ami' or 'container'",
        "agreements[0] (444455556666 × p1): dimensons: unknown field",
    ]


def test_several_reference_problems_are_reported_at_once() -> None:
    arn = "arn:aws:license-manager::294406891311:license:l-" + "0" * 31
    text = f"""{BASE.replace('seller: "111122223333"', 'seller: "000011112222"')}
agreements:
  - {{buyer: "444455556666", product: p1, license_arn: "{arn}"}}
  - {{buyer: "444455556666", product: p1, start: 2021-01-01T00:00:00Z,
      end: 2020-01-01T00:00:00Z}}
  - {{buyer: "000000000009", product: p1}}
"""
    problems = problems_of(text)

    assert problems == [
        "products[0] (p1): seller: no seller with account_id 000011112222",
        "agreements[0] (444455556666 × p1): license_arn: must look like "
        "arn:aws:license-manager::294406891311:license:l-<32 hex digits>",
        "agreements[1] (444455556666 × p1): end: must be after start",
        "agreements[2] (000000000009 × p1): buyer: no buyer with account_id 000000000009",
    ]


def test_error_message_lists_every_problem() -> None:
    text = f"{BASE}agreements:\n  - {{buyer: '000000000001', product: nope}}\n"

    with pytest.raises(CatalogError) as caught:
        load_catalog(text, source="cat.yaml")

    assert str(caught.value) == (
        "cat.yaml: 2 problem(s), nothing applied:\n"
        "  - agreements[0] (000000000001 × nope): buyer: no buyer with account_id 000000000001\n"
        "  - agreements[0] (000000000001 × nope): product: no product with product_code nope"
    )


def test_schema_and_reference_problems_are_reported_together() -> None:
    # The loader promises every problem at once: a typo in one entry must not hide a dangling
    # reference in another, or the operator fixes one, reapplies, and only then sees the next.
    text = """\
products:
  - {product_code: p1, seller: "000011112222", kind: saas, dimensions: [users]}
buyers:
  - {account_id: "444455556666", nmae: Alice}
"""
    assert sorted(problems_of(text)) == [
        "buyers[0] (444455556666): nmae: unknown field",
        "products[0] (p1): seller: no seller with account_id 000011112222",
    ]
