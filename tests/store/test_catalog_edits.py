"""``Store.edit_catalog`` on every backend (SQLite and PostgreSQL, ``store`` of
tests/conftest.py with ``tests/data/catalog.yaml``): deletions of access keys, products,
sellers and buyers, refused while something refers to them, with nothing of the edit applied;
every edit bumps the catalog version and the store's cached catalog follows at once."""

from __future__ import annotations

import asyncio

import pytest

from marketmeter.catalog.model import (
    AccessKey,
    Buyer,
    Catalog,
    Product,
    ProductKind,
    Seller,
)
from marketmeter.metering.types import RegistrationToken
from marketmeter.store.base import (
    CatalogConflictError,
    CatalogEdit,
    CatalogReferenceError,
    OperatorStore,
)

SELLER = "111122223333"
OTHER_SELLER = "999988887777"
DAVE = "555566667777"  # a buyer without agreements
ALICE = "444455556666"
NEW_SELLER = "123412341234"


def edit(store: OperatorStore, change: CatalogEdit) -> int:
    return asyncio.run(store.edit_catalog(change))


def catalog(store: OperatorStore) -> Catalog:
    return store.catalog_snapshot_now().catalog


def product_codes(store: OperatorStore) -> list[str]:
    return [p.product_code for p in catalog(store).products]


def test_upserts_and_deletions_apply_together_and_bump_the_version(store: OperatorStore) -> None:
    assert store.catalog_snapshot_now().version == 1
    change = CatalogEdit(
        upserts=Catalog(
            sellers=(Seller(NEW_SELLER, "New", (AccessKey("AKIANEW0000000000001", "s"),)),)
        ),
        delete_buyers=(DAVE,),
    )
    assert edit(store, change) == 2
    snapshot = store.catalog_snapshot_now()
    assert snapshot.version == 2
    assert DAVE not in snapshot.buyers
    assert snapshot.key_owners["AKIANEW0000000000001"].account_id == NEW_SELLER
    # the buyer's access key went with it
    assert "AKIATESTDAVE00000001" not in snapshot.key_owners


def test_delete_access_key(store: OperatorStore) -> None:
    assert edit(store, CatalogEdit(delete_access_keys=("AKIATESTSELLER000001",))) == 2
    seller = next(s for s in catalog(store).sellers if s.account_id == SELLER)
    assert seller.access_keys == ()


def test_delete_a_seller_with_products_is_refused(store: OperatorStore) -> None:
    with pytest.raises(CatalogReferenceError) as refused:
        edit(store, CatalogEdit(delete_sellers=(OTHER_SELLER,)))
    assert str(refused.value) == "seller 999988887777 has products: prod-other"
    assert store.catalog_snapshot_now().version == 1


def test_more_than_five_referring_entries_are_counted(store: OperatorStore) -> None:
    with pytest.raises(CatalogReferenceError) as refused:
        edit(store, CatalogEdit(delete_sellers=(SELLER,)))
    assert str(refused.value) == (
        "seller 111122223333 has products: prod-agent, prod-ami, prod-ca, prod-container, "
        "prod-legacy"
    )
    extra = Product("prod-zzz", SELLER, ProductKind.SAAS, ("users",))
    edit(store, CatalogEdit(upserts=Catalog(products=(extra,))))
    with pytest.raises(CatalogReferenceError) as refused:
        edit(store, CatalogEdit(delete_sellers=(SELLER,)))
    assert str(refused.value).endswith("prod-container, prod-legacy and 1 more")


def test_a_product_with_agreements_is_kept_and_nothing_of_the_edit_applied(
    store: OperatorStore,
) -> None:
    change = CatalogEdit(
        delete_access_keys=("AKIATESTSELLER000001",), delete_products=("prod-other",)
    )
    with pytest.raises(CatalogReferenceError) as refused:
        edit(store, change)
    assert str(refused.value) == (
        "product prod-other has agreements: "
        "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000009"
    )
    assert "prod-other" in product_codes(store)
    assert "AKIATESTSELLER000001" in store.catalog_snapshot_now().key_owners
    assert store.catalog_snapshot_now().version == 1


def test_a_buyer_with_agreements_is_kept(store: OperatorStore) -> None:
    with pytest.raises(CatalogReferenceError) as refused:
        edit(store, CatalogEdit(delete_buyers=("888899990000",)))
    assert str(refused.value) == (
        "buyer 888899990000 has agreements: "
        "arn:aws:license-manager::888899990000:license:l-90000000000000000000000000000001"
    )


def test_product_then_seller_in_one_edit(store: OperatorStore) -> None:
    """A product without agreements, then its seller: deletions run products before sellers."""
    seller = Seller(NEW_SELLER, "New")
    product = Product("prod-new", NEW_SELLER, ProductKind.AMI, ("hours", "gb"))
    edit(store, CatalogEdit(upserts=Catalog(sellers=(seller,), products=(product,))))
    assert store.catalog_snapshot_now().products["prod-new"] == Product(
        "prod-new", NEW_SELLER, ProductKind.AMI, ("hours", "gb")
    )
    version = edit(store, CatalogEdit(delete_products=("prod-new",), delete_sellers=(NEW_SELLER,)))
    assert version == 3
    assert "prod-new" not in product_codes(store)
    assert NEW_SELLER not in [s.account_id for s in catalog(store).sellers]
    # a product of that code comes back with only its new dimensions
    edit(store, CatalogEdit(upserts=Catalog(sellers=(seller,))))
    edit(
        store,
        CatalogEdit(
            upserts=Catalog(products=(Product("prod-new", NEW_SELLER, ProductKind.AMI, ("x",)),))
        ),
    )
    assert store.catalog_snapshot_now().products["prod-new"].dimensions == ("x",)


def test_a_buyer_with_registration_tokens_is_kept(store: OperatorStore) -> None:
    """Tokens refer to the buyer even where no agreement does any more (e.g. an agreement
    removed by another route)."""
    buyer = Buyer("121212121212", "cust-new")
    edit(store, CatalogEdit(upserts=Catalog(buyers=(buyer,))))
    token = RegistrationToken(
        value="t-1",
        product_code="prod-legacy",
        buyer_account_id="121212121212",
        license_arn="arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001",
        issued_at=1.0,
    )
    asyncio.run(store.issue_tokens([token]))
    with pytest.raises(CatalogReferenceError) as refused:
        edit(store, CatalogEdit(delete_buyers=("121212121212",)))
    assert str(refused.value) == "buyer 121212121212 has registration tokens: t-1"


def test_deleting_what_does_not_exist_still_bumps_the_version(store: OperatorStore) -> None:
    change = CatalogEdit(
        delete_access_keys=("AKIANOSUCHKEY0000001",),
        delete_products=("prod-none",),
        delete_sellers=("000000000000",),
        delete_buyers=("000000000001",),
    )
    assert edit(store, change) == 2
    assert len(catalog(store).sellers) == 2


@pytest.mark.parametrize(
    ("upserts", "field", "message"),
    [
        (
            Catalog(
                buyers=(Buyer(DAVE, "cust-dave", "", (AccessKey("AKIATESTSELLER000001", "x"),)),)
            ),
            "access_key_id",
            "AKIATESTSELLER000001 already belongs to account 111122223333",
        ),
        (
            Catalog(products=(Product("p-new", NEW_SELLER, ProductKind.SAAS, ("users",)),)),
            "seller",
            "product p-new: no seller with account_id 123412341234",
        ),
        (
            Catalog(buyers=(Buyer(NEW_SELLER, "cust-alice"),)),
            "customer_identifier",
            "cust-alice is the CustomerIdentifier of buyer 444455556666",
        ),
        (Catalog(sellers=(Seller(ALICE),)), "account_id", "account 444455556666 is a buyer"),
    ],
)
def test_an_upsert_the_stored_catalog_forbids_is_refused_inside_the_transaction(
    store: OperatorStore, upserts: Catalog, field: str, message: str
) -> None:
    before = store.catalog_snapshot_now()
    with pytest.raises(CatalogConflictError) as raised:
        edit(store, CatalogEdit(upserts=upserts))
    assert (raised.value.field, str(raised.value), raised.value.missing) == (field, message, False)
    with pytest.raises(CatalogConflictError):
        asyncio.run(store.apply_catalog(upserts))
    assert store.catalog_snapshot_now() == before


def test_an_edit_expecting_an_entry_is_refused_when_it_is_gone_or_there(
    store: OperatorStore,
) -> None:
    gone = CatalogEdit(
        upserts=Catalog(sellers=(Seller(NEW_SELLER),)), expect_existing=(("sellers", NEW_SELLER),)
    )
    with pytest.raises(CatalogConflictError) as raised:
        edit(store, gone)
    assert (raised.value.field, str(raised.value), raised.value.missing) == (
        "account_id",
        f"no seller with account_id {NEW_SELLER}",
        True,
    )
    there = CatalogEdit(upserts=Catalog(buyers=(Buyer(DAVE),)), expect_new=(("buyers", DAVE),))
    with pytest.raises(CatalogConflictError) as raised:
        edit(store, there)
    assert (raised.value.field, str(raised.value)) == ("account_id", f"buyer {DAVE} already exists")
    assert NEW_SELLER not in {s.account_id for s in catalog(store).sellers}
