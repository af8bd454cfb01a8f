"""Fault rules: parsing the LocalStack-shaped JSON, matching calls, and deterministic decisions."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from marketmeter.errors import (
    MODELLED_ERRORS,
    AccessDeniedException,
    InternalServiceErrorException,
    InvalidParameterException,
    InvalidProductCodeException,
    ThrottlingException,
    ValidationException,
)
from marketmeter.protocol.serialize import error as serialize_error
from marketmeter.refusal import Refusal
from marketmeter.servicemodel.spec import served_operation_names
from marketmeter.testbench.faults import (
    ERROR_CLASSES,
    FaultDecision,
    FaultError,
    FaultInjector,
    FaultRule,
    UnprocessedRecords,
    parse_rule,
    parse_rules,
)

THROTTLE: dict[str, object] = {"error": {"code": "ThrottlingException"}}


def injector_with(*rules: object, seeds: int = 0) -> FaultInjector:
    injector = FaultInjector(random.Random(seeds))
    injector.set_rules([parse_rule(rule) for rule in rules])
    return injector


def meter(
    injector: FaultInjector,
    operation: str = "MeterUsage",
    product_code: str | None = "prod-a",
    access_key_id: str | None = "AKIDSELLER",
    region: str | None = "us-east-1",
    batch_size: int = 1,
) -> FaultDecision | None:
    return injector.decide(operation, product_code, access_key_id, region, batch_size)


def fired(injector: FaultInjector, calls: int) -> list[int]:
    """The 1-based calls on which a fault was injected."""
    return [n for n in range(1, calls + 1) if meter(injector) is not None]


# --- parsing -----------------------------------------------------------------------------------


def test_a_localstack_rule_is_accepted_as_given() -> None:
    body = {
        "service": "meteringmarketplace",
        "region": "us-east-1",
        "operation": "MeterUsage",
        "probability": 0.5,
        "error": {"statusCode": 503, "code": "ThrottlingException"},
    }
    rule = parse_rule(body)
    assert rule == FaultRule(
        service="meteringmarketplace",
        region="us-east-1",
        operation="MeterUsage",
        probability=0.5,
        error=FaultError(code="ThrottlingException", status_code=503),
    )
    assert rule.to_json() == body


def test_every_extension_key_is_read_and_echoed() -> None:
    body = {
        "service": "aws-marketplace",
        "region": "eu-west-1",
        "operation": "BatchMeterUsage",
        "productCode": "prod-a",
        "accessKeyId": "AKIDSELLER",
        "probability": 0.25,
        "seed": 42,
        "times": 3,
        "everyNth": 2,
        "unprocessedRecords": {"indices": [0, 2]},
        "latencyMs": 250,
    }
    rule = parse_rule(body)
    assert rule.product_code == "prod-a"
    assert rule.access_key_id == "AKIDSELLER"
    assert rule.every_nth == 2
    assert rule.unprocessed_records == UnprocessedRecords(indices=(0, 2))
    assert rule.latency_ms == 250
    assert rule.to_json() == body


def test_an_empty_rule_is_valid_and_answers_500() -> None:
    decision = meter(injector_with({}))
    assert decision is not None
    assert isinstance(decision.error, InternalServiceErrorException)
    assert decision.error.http_status == 500
    assert decision.label == "fault rule 1: InternalServiceErrorException"


def test_parse_rules_takes_a_list_or_one_object() -> None:
    assert parse_rules({"operation": "MeterUsage"}) == [FaultRule(operation="MeterUsage")]
    assert parse_rules([{"times": 1}, {"everyNth": 2}]) == [
        FaultRule(times=1),
        FaultRule(every_nth=2),
    ]
    assert parse_rules([]) == []


def test_parse_rules_names_the_failing_rule() -> None:
    with pytest.raises(Refusal) as refused:
        parse_rules([{}, {"probability": 2}])
    assert refused.value.field == "probability"
    assert refused.value.message == "rule 2: must be greater than 0 and at most 1"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("throttle", "body", "expected a fault rule object or a list of them"),
        (["throttle"], "body", "rule 1: a fault rule must be a JSON object"),
        (
            {"colour": "red"},
            "colour",
            "unknown key; known keys: service, region, operation, "
            "productCode, accessKeyId, probability, seed, times, everyNth, error, "
            "unprocessedRecords, latencyMs, emptyPage, kind, target",
        ),
        ({"service": 3}, "service", "must be a non-empty string"),
        ({"region": ""}, "region", "must be a non-empty string"),
        ({"productCode": ["a"]}, "productCode", "must be a non-empty string"),
        ({"accessKeyId": 1}, "accessKeyId", "must be a non-empty string"),
        (
            {"operation": "PutObject"},
            "operation",
            f"must be one of {', '.join(served_operation_names())}",
        ),
        ({"probability": 0}, "probability", "must be greater than 0 and at most 1"),
        ({"probability": 1.5}, "probability", "must be greater than 0 and at most 1"),
        ({"probability": True}, "probability", "must be a number"),
        ({"probability": "0.5"}, "probability", "must be a number"),
        ({"probability": float("nan")}, "probability", "must be a number"),
        ({"seed": 1.5}, "seed", "must be an integer"),
        ({"seed": False}, "seed", "must be an integer"),
        ({"times": 0}, "times", "must be at least 1"),
        ({"times": True}, "times", "must be an integer"),
        ({"times": 2.0}, "times", "must be an integer"),
        ({"everyNth": 0}, "everyNth", "must be at least 1"),
        ({"latencyMs": -1}, "latencyMs", "must be milliseconds from 0 to 60000"),
        ({"latencyMs": 60001}, "latencyMs", "must be milliseconds from 0 to 60000"),
        ({"latencyMs": True}, "latencyMs", "must be a number"),
        ({"error": "ThrottlingException"}, "error", "must be a JSON object"),
        (
            {"error": {"code": "ThrottlingException", "retry": True}},
            "error.retry",
            "unknown key; known keys: code, statusCode, message",
        ),
        ({"error": {"code": 1}}, "error.code", "must be a non-empty string"),
        ({"error": {"statusCode": 399}}, "error.statusCode", "must be at least 400"),
        ({"error": {"statusCode": 600}}, "error.statusCode", "must be between 400 and 599"),
        ({"error": {"statusCode": 503.0}}, "error.statusCode", "must be an integer"),
        ({"error": {"message": 5}}, "error.message", "must be a string"),
        (
            {"operation": "MeterUsage", "unprocessedRecords": {"count": 1}},
            "unprocessedRecords",
            'only with "operation": "BatchMeterUsage"',
        ),
        (
            {"unprocessedRecords": {"count": 1}},
            "unprocessedRecords",
            'only with "operation": "BatchMeterUsage"',
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {"count": 1}, "error": {}},
            "unprocessedRecords",
            'cannot be combined with "error"',
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": [0]},
            "unprocessedRecords",
            "must be a JSON object",
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {}},
            "unprocessedRecords",
            'needs exactly one of "count" or "indices"',
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {"count": 1, "indices": [0]}},
            "unprocessedRecords",
            'needs exactly one of "count" or "indices"',
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {"count": 0}},
            "unprocessedRecords.count",
            "must be at least 1",
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": [0, -1]}},
            "unprocessedRecords.indices",
            "must be a non-empty list of integers >= 0",
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": []}},
            "unprocessedRecords.indices",
            "must be a non-empty list of integers >= 0",
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": [True]}},
            "unprocessedRecords.indices",
            "must be a non-empty list of integers >= 0",
        ),
        (
            {"operation": "BatchMeterUsage", "unprocessedRecords": {"first": 2}},
            "unprocessedRecords.first",
            "unknown key; known keys: count, indices",
        ),
        ({"emptyPage": True}, "emptyPage", 'only with "operation": "GetEntitlements"'),
        (
            {"operation": "SearchAgreements", "emptyPage": True},
            "emptyPage",
            'only with "operation": "GetEntitlements"',
        ),
        (
            {"operation": "GetEntitlements", "emptyPage": True, **THROTTLE},
            "emptyPage",
            'cannot be combined with "error"',
        ),
        (
            {"operation": "GetEntitlements", "emptyPage": "yes"},
            "emptyPage",
            "must be true or false",
        ),
    ],
)
def test_input_errors_name_the_field(body: object, field: str, message: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_rules(body)
    assert (refused.value.field, refused.value.message) == (field, message)


def test_an_unknown_error_code_lists_the_known_codes() -> None:
    with pytest.raises(Refusal) as refused:
        parse_rule({"error": {"code": "ServiceUnavailable"}})
    assert refused.value.field == "error.code"
    assert refused.value.message.startswith(
        "unknown error 'ServiceUnavailable'; known codes: AccessDeniedException, "
        "CustomerNotEntitledException, "
    )
    assert refused.value.message.endswith("UnrecognizedClientException, ValidationException")


def test_every_modelled_and_framework_error_can_be_injected() -> None:
    assert {cls.code for cls in MODELLED_ERRORS} < set(ERROR_CLASSES)
    assert ERROR_CLASSES["ValidationException"] is ValidationException
    assert ERROR_CLASSES["AccessDeniedException"] is AccessDeniedException
    assert "AwsError" not in ERROR_CLASSES
    assert ERROR_CLASSES["ServiceUnavailableException"].http_status == 503
    assert ERROR_CLASSES["RequestTimeoutException"].http_status == 408
    assert ERROR_CLASSES["InvalidParameterException"] is InvalidParameterException
    # the Entitlement Service's own error, besides the metering model's and the framework's
    assert len(ERROR_CLASSES) == len(MODELLED_ERRORS) + 13 + 1


# --- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "service", ["meteringmarketplace", "marketplace-metering", "aws-marketplace"]
)
def test_our_service_names_match(service: str) -> None:
    assert meter(injector_with({"service": service})) is not None


@pytest.mark.parametrize("service", ["s3", "MeteringMarketplace", "marketplace-catalog"])
def test_a_rule_for_another_service_never_matches(service: str) -> None:
    injector = injector_with({"service": service})
    assert fired(injector, 5) == []
    assert injector.rules_json()[0]["matched"] == 0


def test_region_matching() -> None:
    injector = injector_with({"region": "eu-west-1"})
    assert meter(injector, region="us-east-1") is None
    assert meter(injector, region=None) is None  # an unsigned call has no region
    assert meter(injector, region="eu-west-1") is not None


def test_product_matching() -> None:
    injector = injector_with({"productCode": "prod-a"})
    assert meter(injector, product_code="prod-b") is None
    assert meter(injector, operation="ResolveCustomer", product_code=None) is None
    assert meter(injector, product_code="prod-a") is not None


def test_access_key_matching() -> None:
    injector = injector_with({"accessKeyId": "AKIDSELLER"})
    assert meter(injector, access_key_id="AKIDOTHER") is None
    assert meter(injector, access_key_id=None) is None
    assert meter(injector, access_key_id="AKIDSELLER") is not None


def test_operation_matching() -> None:
    injector = injector_with({"operation": "RegisterUsage"})
    assert [
        meter(injector, operation=name) is not None
        for name in ("BatchMeterUsage", "MeterUsage", "ResolveCustomer", "RegisterUsage")
    ] == [False, False, False, True]


# --- probability, times, everyNth ---------------------------------------------------------------


def test_probability_with_a_seed_replays_exactly() -> None:
    def run() -> list[int]:
        return fired(injector_with({"probability": 0.3, "seed": 7, **THROTTLE}), 1000)

    first = run()
    assert len(first) == 336
    assert first[:8] == [2, 4, 7, 9, 11, 12, 15, 16]
    assert run() == first


def test_a_drawn_seed_is_reported_and_replays_the_run() -> None:
    injector = injector_with({"probability": 0.5}, seeds=1)
    shown = injector.rules_json()[0]
    assert shown == {"id": 1, "probability": 0.5, "seed": 577090037, "matched": 0, "applied": 0}
    replay = injector_with({"probability": 0.5, "seed": 577090037})
    assert fired(injector, 200) == fired(replay, 200)


def test_without_a_seed_source_seeds_still_differ_per_rule_and_are_reported() -> None:
    injector = FaultInjector()
    injector.set_rules(parse_rules([{"probability": 0.5}, {"probability": 0.5}]))
    seeds = [rule["seed"] for rule in injector.rules_json()]
    assert all(isinstance(seed, int) for seed in seeds)
    assert seeds[0] != seeds[1]


def test_no_seed_is_reported_for_a_certain_rule_without_random_choice() -> None:
    assert injector_with(THROTTLE).rules_json() == [
        {"id": 1, "error": {"code": "ThrottlingException"}, "matched": 0, "applied": 0}
    ]


def test_times_fires_that_often_then_the_rule_is_gone() -> None:
    injector = injector_with({"times": 2, **THROTTLE})
    assert injector.rules_json()[0]["remaining"] == 2
    assert meter(injector) is not None
    assert injector.rules_json()[0]["remaining"] == 1
    assert meter(injector) is not None
    assert injector.rules_json() == []
    assert fired(injector, 5) == []


def test_every_nth_fires_on_calls_3_6_9() -> None:
    injector = injector_with({"everyNth": 3, **THROTTLE})
    assert fired(injector, 10) == [3, 6, 9]
    assert injector.rules_json()[0]["matched"] == 10
    assert injector.rules_json()[0]["applied"] == 3


def test_every_nth_counts_only_matching_calls() -> None:
    injector = injector_with({"everyNth": 2, "operation": "MeterUsage"})
    outcomes = [
        meter(injector, operation=name) is not None
        for name in ("MeterUsage", "RegisterUsage", "MeterUsage", "RegisterUsage", "MeterUsage")
    ]
    assert outcomes == [False, False, True, False, False]


def test_times_counts_applications_not_matches() -> None:
    injector = injector_with({"everyNth": 2, "times": 2})
    assert fired(injector, 8) == [2, 4]


# --- first firing rule wins, counters -----------------------------------------------------------


def test_the_first_firing_rule_applies_and_every_match_is_counted() -> None:
    injector = injector_with(
        {"everyNth": 2, "error": {"code": "InvalidProductCodeException"}},
        {"operation": "MeterUsage", **THROTTLE},
        {"operation": "RegisterUsage"},
    )
    decisions = [meter(injector) for _ in range(4)]
    codes = [decision.error.code for decision in decisions if decision and decision.error]
    assert codes == [
        "ThrottlingException",
        "InvalidProductCodeException",
        "ThrottlingException",
        "InvalidProductCodeException",
    ]
    counters = [(rule["id"], rule["matched"], rule["applied"]) for rule in injector.rules_json()]
    assert counters == [(1, 4, 2), (2, 4, 2), (3, 0, 0)]


def test_a_rule_that_fires_but_does_not_apply_keeps_its_times() -> None:
    injector = injector_with(THROTTLE, {"times": 1})
    meter(injector)
    assert [rule.get("remaining") for rule in injector.rules_json()] == [None, 1]


# --- effects -----------------------------------------------------------------------------------


def test_default_messages() -> None:
    injector = injector_with(
        {"operation": "MeterUsage", **THROTTLE},
        {"operation": "RegisterUsage", "error": {"code": "InternalServiceErrorException"}},
        {"operation": "ResolveCustomer", "error": {"code": "InvalidProductCodeException"}},
    )
    messages = [
        (decision.error.code, decision.error.message)
        for name in ("MeterUsage", "RegisterUsage", "ResolveCustomer")
        if (decision := meter(injector, operation=name)) is not None and decision.error is not None
    ]
    assert messages == [
        ("ThrottlingException", "Rate exceeded"),
        ("InternalServiceErrorException", "An internal error has occurred. Retry your request."),
        ("InvalidProductCodeException", "Injected fault: InvalidProductCodeException"),
    ]


def test_a_given_message_is_used() -> None:
    decision = meter(
        injector_with({"error": {"code": "ThrottlingException", "message": "Slow down"}})
    )
    assert decision is not None
    assert decision.error is not None
    assert decision.error.message == "Slow down"


def test_status_code_override_reaches_the_wire() -> None:
    injector = injector_with({"error": {"code": "ThrottlingException", "statusCode": 503}})
    decision = meter(injector)
    assert decision is not None
    assert isinstance(decision.error, ThrottlingException)
    assert decision.error.code == "ThrottlingException"
    assert decision.error.http_status == 503
    wire = serialize_error(decision.error)
    assert (wire.status, wire.error_type) == (503, "ThrottlingException")
    assert ThrottlingException.http_status == 400  # the class is untouched
    assert ThrottlingException("Rate exceeded").http_status == 400


def test_each_decision_carries_a_fresh_error() -> None:
    injector = injector_with({"error": {"code": "InvalidProductCodeException"}})
    first, second = meter(injector), meter(injector)
    assert first is not None
    assert second is not None
    assert isinstance(first.error, InvalidProductCodeException)
    assert first.error is not second.error


def test_an_error_without_status_keeps_its_own() -> None:
    decision = meter(injector_with({"error": {"code": "IdempotencyConflictException"}}))
    assert decision is not None
    assert decision.error is not None
    assert decision.error.http_status == 409


def test_unprocessed_count_is_chosen_by_the_seed_within_the_batch() -> None:
    rule = {"operation": "BatchMeterUsage", "seed": 7, "unprocessedRecords": {"count": 3}}

    def run() -> list[list[int]]:
        injector = injector_with(rule)
        decisions = [meter(injector, operation="BatchMeterUsage", batch_size=10) for _ in range(3)]
        return [sorted(decision.unprocessed) for decision in decisions if decision is not None]

    assert run() == [[2, 5, 6], [0, 1, 8], [0, 3, 5]]
    assert run() == run()


def test_unprocessed_count_reports_its_seed() -> None:
    injector = injector_with(
        {"operation": "BatchMeterUsage", "unprocessedRecords": {"count": 2}}, seeds=1
    )
    assert injector.rules_json()[0]["seed"] == 577090037


def test_unprocessed_count_at_least_the_batch_holds_back_everything() -> None:
    injector = injector_with({"operation": "BatchMeterUsage", "unprocessedRecords": {"count": 9}})
    decision = meter(injector, operation="BatchMeterUsage", batch_size=4)
    assert decision == FaultDecision(
        "fault rule 1: 4 unprocessed records", 0.0, None, frozenset({0, 1, 2, 3})
    )


def test_unprocessed_indices_beyond_the_batch_are_ignored() -> None:
    injector = injector_with(
        {"operation": "BatchMeterUsage", "unprocessedRecords": {"indices": [1, 3, 25]}}
    )
    decision = meter(injector, operation="BatchMeterUsage", batch_size=3)
    assert decision == FaultDecision(
        "fault rule 1: 1 unprocessed record", 0.0, None, frozenset({1})
    )


def test_a_latency_only_rule_delays_without_error() -> None:
    injector = injector_with({}, {"latencyMs": 250})
    injector.remove_rule(1)
    assert meter(injector) == FaultDecision("fault rule 2: latency 250 ms", 0.25, None, frozenset())


def test_latency_adds_to_an_error() -> None:
    decision = meter(injector_with({"latencyMs": 12.5, **THROTTLE}))
    assert decision is not None
    assert decision.error is not None
    assert decision.label == "fault rule 1: ThrottlingException, latency 12.5 ms"
    assert decision.latency_seconds == 0.0125


# --- global latency ----------------------------------------------------------------------------


def test_no_rules_and_no_latency_decides_nothing() -> None:
    assert meter(FaultInjector()) is None


def test_global_latency_applies_to_every_call() -> None:
    injector = FaultInjector()
    injector.latency_ms = 100
    assert injector.latency_ms == 100
    assert meter(injector) == FaultDecision("global latency 100 ms", 0.1, None, frozenset())
    assert meter(injector, operation="ResolveCustomer", product_code=None) is not None


def test_global_latency_adds_to_the_applied_rule() -> None:
    injector = injector_with({"latencyMs": 250, **THROTTLE})
    injector.latency_ms = 100
    decision = meter(injector)
    assert decision is not None
    assert (
        decision.label == "fault rule 1: ThrottlingException, latency 250 ms; global latency 100 ms"
    )
    assert decision.latency_seconds == 0.35
    assert isinstance(decision.error, ThrottlingException)


def test_global_latency_survives_clear_and_can_be_switched_off() -> None:
    injector = injector_with(THROTTLE)
    injector.latency_ms = 5
    injector.clear()
    assert injector.rules_json() == []
    assert meter(injector) == FaultDecision("global latency 5 ms", 0.005, None, frozenset())
    injector.latency_ms = 0
    assert meter(injector) is None


@pytest.mark.parametrize("value", [-1, 60001, float("inf"), True])
def test_global_latency_is_checked(value: float) -> None:
    injector = FaultInjector()
    with pytest.raises(Refusal) as refused:
        injector.latency_ms = value
    assert refused.value.field == "latencyMs"
    assert injector.latency_ms == 0


# --- rule management ---------------------------------------------------------------------------


def test_ids_keep_increasing_over_the_injector_life() -> None:
    injector = injector_with({}, {"times": 1})
    injector.add_rules(parse_rules({"everyNth": 2}))
    assert [rule["id"] for rule in injector.rules_json()] == [1, 2, 3]
    injector.set_rules(parse_rules([{}]))
    assert [rule["id"] for rule in injector.rules_json()] == [4]


def test_add_rules_appends_after_those_in_force() -> None:
    injector = injector_with({"operation": "MeterUsage"})
    injector.add_rules(parse_rules({"operation": "RegisterUsage"}))
    assert [rule["operation"] for rule in injector.rules_json()] == ["MeterUsage", "RegisterUsage"]


def test_remove_rules_removes_equal_rules_as_given() -> None:
    injector = injector_with(
        {"operation": "MeterUsage", "probability": 0.5},
        {"operation": "RegisterUsage"},
        {"operation": "MeterUsage", "probability": 0.5},
    )
    injector.remove_rules(parse_rules([{"operation": "MeterUsage", "probability": 0.5}]))
    assert [(rule["id"], rule["operation"]) for rule in injector.rules_json()] == [
        (2, "RegisterUsage")
    ]


def test_remove_rule_by_id() -> None:
    injector = injector_with({}, {"times": 3})
    assert injector.remove_rule(1) is True
    assert injector.remove_rule(1) is False
    assert [rule["id"] for rule in injector.rules_json()] == [2]


def test_rules_json_shows_remaining_and_counters() -> None:
    injector = injector_with({"operation": "MeterUsage", "times": 3, "latencyMs": 10})
    meter(injector)
    meter(injector, operation="RegisterUsage")
    assert injector.rules_json() == [
        {
            "id": 1,
            "operation": "MeterUsage",
            "times": 3,
            "latencyMs": 10,
            "remaining": 2,
            "matched": 1,
            "applied": 1,
        }
    ]


def test_decide_counts_every_call_under_concurrency() -> None:
    injector = injector_with({"everyNth": 4, **THROTTLE}, {"latencyMs": 1})
    barrier = threading.Barrier(8)

    def call_many() -> int:
        barrier.wait()
        return sum(meter(injector) is not None for _ in range(1000))

    with ThreadPoolExecutor(max_workers=8) as pool:
        decided = sum(pool.map(lambda _: call_many(), range(8)))
    assert decided == 8000
    counters = [(rule["matched"], rule["applied"]) for rule in injector.rules_json()]
    assert counters == [(8000, 2000), (8000, 6000)]


def test_a_rule_read_back_can_be_sent_again() -> None:
    injector = FaultInjector(random.Random(1))
    injector.set_rules([parse_rule({"operation": "MeterUsage", "times": 2})])
    shown = injector.rules_json()[0]
    assert shown["id"] == 1
    assert parse_rule(shown) == parse_rule({"operation": "MeterUsage", "times": 2})
    injector.remove_rules(parse_rules([shown]))
    assert injector.rules_json() == []


def test_a_rule_for_another_service_keeps_its_operation_and_code_and_never_fires() -> None:
    injector = FaultInjector(random.Random(1))
    rule = {"service": "s3", "operation": "PutObject", "error": {"code": "ServiceUnavailable"}}
    injector.set_rules(parse_rules([rule]))
    assert injector.rules_json() == [{"id": 1, **rule, "matched": 0, "applied": 0}]
    assert injector.decide("BatchMeterUsage", "p", "AKIA", "us-east-1", 1) is None


def test_reset_numbers_rules_from_one_again_and_drops_the_latency() -> None:
    injector = FaultInjector(random.Random(1))
    injector.set_rules(parse_rules([{"times": 1}, {"times": 2}]))
    injector.latency_ms = 50
    injector.reset()
    injector.add_rules(parse_rules([{"times": 1}]))
    assert [r["id"] for r in injector.rules_json()] == [1]
    assert injector.latency_ms == 0.0


@pytest.mark.parametrize(
    ("held", "message"),
    [
        ({"count": None}, 'needs exactly one of "count" or "indices"'),
        ({"count": None, "indices": None}, 'needs exactly one of "count" or "indices"'),
        ({"count": None, "indices": [1]}, None),
        ({"count": 2, "indices": None}, None),
    ],
)
def test_a_null_in_unprocessed_records_is_not_given(
    held: dict[str, object], message: str | None
) -> None:
    """schemathesis sent ``{"count": null}`` once the bench routes were documented: a 500."""
    rule = {"operation": "BatchMeterUsage", "unprocessedRecords": held}
    if message is None:
        assert len(parse_rules(rule)) == 1
        return
    with pytest.raises(Refusal) as refused:
        parse_rules(rule)
    assert (refused.value.field, refused.value.message) == ("unprocessedRecords", message)


def test_a_delivery_failure_rule_fails_deliveries_not_calls() -> None:
    injector = FaultInjector()
    injector.set_rules(
        parse_rules({"kind": "delivery-failure", "target": "queue", "times": 2, "everyNth": 1})
    )
    assert injector.decide("BatchMeterUsage", "prod", None, None, 1) is None
    assert injector.decide_delivery("prod", "other") is None
    labels = [injector.decide_delivery("prod", "queue") for _ in range(3)]
    assert labels == ["fault rule 1: delivery-failure"] * 2 + [None]
    assert injector.rules_json() == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"kind": "latency"}, "kind", "must be delivery-failure"),
        ({"target": "queue"}, "target", 'only with "kind": "delivery-failure"'),
        (
            {"kind": "delivery-failure", "operation": "MeterUsage"},
            "operation",
            "unknown key; known keys: kind, productCode, target, probability, seed, times, "
            "everyNth",
        ),
    ],
)
def test_a_delivery_failure_rule_refuses_what_it_cannot_do(
    body: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(Refusal) as refused:
        parse_rules(body)
    assert (refused.value.field, refused.value.message) == (field, message)


# --- empty pages -----------------------------------------------------------------------------


def test_an_empty_page_rule_decides_an_empty_page_and_reads_back() -> None:
    rule = {"operation": "GetEntitlements", "emptyPage": True, "times": 1}
    injector = injector_with(rule)
    decision = meter(injector, operation="GetEntitlements")
    assert decision is not None
    assert (decision.empty_page, decision.error, decision.label) == (
        True,
        None,
        "fault rule 1: empty page",
    )
    assert meter(injector, operation="GetEntitlements") is None  # its one time is used
    assert parse_rule(rule).to_json() == rule
