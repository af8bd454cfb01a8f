"""A product's delivery targets (``notification_targets``) in the catalog: what each kind
needs and carries, and the entry it is shown as."""

from __future__ import annotations

from typing import Any

import pytest

from marketmeter.catalog.loader import CatalogError, load_catalog_data
from marketmeter.catalog.model import NotificationKind, NotificationTarget, TargetKind
from marketmeter.operator.catalog import product_json


def catalog(*targets: dict[str, Any], integration: str = "legacy") -> dict[str, Any]:
    return {
        "sellers": [{"account_id": "111122223333"}],
        "products": [
            {
                "product_code": "prod",
                "seller": "111122223333",
                "kind": "saas",
                "integration": integration,
                "dimensions": ["users"],
                "notification_targets": list(targets),
            }
        ],
    }


def test_each_kind_carries_by_default_what_it_can() -> None:
    loaded = load_catalog_data(
        catalog(
            {"name": "topics", "kind": "sns", "endpoint_url": "http://127.0.0.1:4566"},
            {"name": "queue", "kind": "sqs", "queue_url": "http://127.0.0.1:4566/1/q"},
            {"name": "bus", "kind": "eventbridge", "event_bus": "sellers"},
            {
                "name": "hook",
                "kind": "http",
                "url": "https://example.com/sns",
                "sns_protocol": True,
            },
        )
    )
    [product] = loaded.products
    assert product.notification_targets == (
        NotificationTarget(
            "topics",
            TargetKind.SNS,
            (NotificationKind.SUBSCRIPTION, NotificationKind.ENTITLEMENT),
            endpoint_url="http://127.0.0.1:4566",
        ),
        NotificationTarget(
            "queue", TargetKind.SQS, tuple(NotificationKind), queue_url="http://127.0.0.1:4566/1/q"
        ),
        NotificationTarget(
            "bus", TargetKind.EVENTBRIDGE, (NotificationKind.AGREEMENT,), event_bus="sellers"
        ),
        NotificationTarget(
            "hook",
            TargetKind.HTTP,
            (NotificationKind.SUBSCRIPTION, NotificationKind.ENTITLEMENT),
            url="https://example.com/sns",
            sns_protocol=True,
        ),
    )
    assert product_json(product)["notification_targets"][2] == {
        "name": "bus",
        "kind": "eventbridge",
        "notifications": ["agreement"],
        "event_bus": "sellers",
    }
    assert load_catalog_data({**catalog(), "products": [product_json(product)]}).products == (
        product,
    )


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ({"name": "q", "kind": "sqs"}, "queue_url: required for a sqs target"),
        ({"name": "h", "kind": "http"}, "url: required for a http target"),
        (
            {"name": "b", "kind": "eventbridge", "notifications": ["subscription"]},
            "notifications: a eventbridge target cannot carry subscription",
        ),
        (
            {"name": "s", "kind": "sqs", "queue_url": "http://q/1/q", "sns_protocol": True},
            "sns_protocol: only for an http target",
        ),
        (
            {"name": "s", "kind": "sns", "access_key_id": "AKIAEXAMPLE"},
            "access_key_id and secret_access_key go together",
        ),
        (  # SNS's own subscriptions decide raw delivery there; a bus takes events only
            {"name": "s", "kind": "sns", "raw_delivery": True},
            "raw_delivery: only for an sqs or http target",
        ),
        (
            {"name": "b", "kind": "eventbridge", "raw_delivery": True},
            "raw_delivery: only for an sqs or http target",
        ),
    ],
)
def test_a_target_missing_what_its_kind_needs_is_refused(
    target: dict[str, Any], problem: str
) -> None:
    with pytest.raises(CatalogError) as refused:
        load_catalog_data(catalog(target))
    assert refused.value.problems == [
        f"products[0] (prod): notification_targets[0] ({target['name']}): {problem}"
    ]


def test_target_names_are_unique_in_a_product() -> None:
    twice = {"name": "q", "kind": "sqs", "queue_url": "http://q/1/q"}
    with pytest.raises(CatalogError) as refused:
        load_catalog_data(catalog(twice, twice))
    assert refused.value.problems == [
        "products[0] (prod): notification_targets: a name is listed twice"
    ]
