"""Fault rules and the fault injector: making marketmeter misbehave on purpose.

Sellers test their retry loops against throttling, 500s, UnprocessedRecords and slow answers.
The rule JSON is LocalStack's chaos API shape (``/_localstack/chaos/faults``: ``service``,
``region``, ``operation``, ``probability``, ``error``) plus our extensions (``productCode``,
``accessKeyId``, ``seed``, ``times``, ``everyNth``, ``unprocessedRecords``, ``latencyMs``,
``emptyPage``: a GetEntitlements page with no entitlement but a NextToken, which AWS warns
clients may get and must follow).
A rule of ``kind`` ``delivery-failure`` (with ``productCode``, ``target``, ``probability``,
``seed``, ``times``, ``everyNth``) fails notification deliveries instead of calls
(``FaultInjector.decide_delivery``, asked by the deliverer before each attempt).
This module is pure decision logic: the endpoint asks ``FaultInjector.decide`` on every call and
carries out the ``FaultDecision`` (sleep, raise, hold records back); the admin API parses rules
with ``parse_rules`` and shows ``rules_json``.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from marketmeter import errors
from marketmeter.errors import AwsError, InternalServiceErrorException, ThrottlingException
from marketmeter.protocol.hooks import FaultDecision
from marketmeter.refusal import Refusal
from marketmeter.servicemodel.spec import SERVED, served_operation_names, service_names

__all__ = [
    "DELIVERY_FAILURE",
    "ERROR_CLASSES",
    "MAX_LATENCY_MS",
    "OPERATIONS",
    "OUR_SERVICE_NAMES",
    "FaultDecision",
    "FaultError",
    "FaultInjector",
    "FaultRule",
    "UnprocessedRecords",
    "checked_latency",
    "parse_rule",
    "parse_rules",
]

OPERATIONS: tuple[str, ...] = served_operation_names()
# botocore's service name, the endpoint prefix, and the SigV4 signing name.
OUR_SERVICE_NAMES = frozenset(
    {"aws-marketplace", *(name for service in SERVED for name in service_names(service))}
)
MAX_LATENCY_MS = 60_000
# Every error we can answer with, by its wire code: the modelled errors and the framework errors.
ERROR_CLASSES: Mapping[str, type[AwsError]] = {
    cls.code: cls
    for cls in (getattr(errors, name) for name in errors.__all__)
    if isinstance(cls, type)
    and issubclass(cls, AwsError)
    and cls is not AwsError
    and cls not in errors.AGREEMENT_ERRORS  # the Agreement API's, with codes of their own
}
_DEFAULT_MESSAGES = {
    ThrottlingException.code: "Rate exceeded",
    InternalServiceErrorException.code: "An internal error has occurred. Retry your request.",
}
DELIVERY_FAILURE = "delivery-failure"
_DELIVERY_KEYS = ("kind", "productCode", "target", "probability", "seed", "times", "everyNth")
_RULE_KEYS = (
    "service",
    "region",
    "operation",
    "productCode",
    "accessKeyId",
    "probability",
    "seed",
    "times",
    "everyNth",
    "error",
    "unprocessedRecords",
    "latencyMs",
    "emptyPage",
    "kind",
    "target",
)
# What ``rules_json`` adds to a rule: accepted and ignored on input, so that a rule read back
# from ``GET /faults`` can be sent again (e.g. in a DELETE body, as LocalStack's tools do).
_READ_ONLY_KEYS = ("id", "remaining", "matched", "applied")


@dataclass(frozen=True, slots=True)
class FaultError:
    """The ``error`` of a rule; absent members take the error's own status and message."""

    code: str | None = None
    status_code: int | None = None
    message: str | None = None

    def build(self) -> AwsError:
        """A fresh error to raise, answering with ``status_code`` when one is set."""
        code = self.code or InternalServiceErrorException.code
        failure = ERROR_CLASSES[code](self.message or _default_message(code))
        if self.status_code is not None:
            # http_status is a ClassVar; an instance attribute shadows it for this one answer
            # (protocol.serialize.error reads failure.http_status).
            vars(failure)["http_status"] = self.status_code
        return failure

    def to_json(self) -> dict[str, object]:
        return _present(
            {"code": self.code, "statusCode": self.status_code, "message": self.message}
        )


@dataclass(frozen=True, slots=True)
class UnprocessedRecords:
    """Which records of a batch to hold back: ``count`` chosen at random, or fixed ``indices``."""

    count: int | None = None
    indices: tuple[int, ...] | None = None

    def choose(self, batch_size: int, draw: random.Random) -> frozenset[int]:
        if self.indices is not None:
            return frozenset(index for index in self.indices if index < batch_size)
        count = min(self.count or 0, batch_size)
        return frozenset(draw.sample(range(batch_size), count))

    def to_json(self) -> dict[str, object]:
        indices = list(self.indices) if self.indices is not None else None
        return _present({"count": self.count, "indices": indices})


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One rule as given; ``None`` means the key was absent (matches anything / no effect)."""

    service: str | None = None
    region: str | None = None
    operation: str | None = None
    product_code: str | None = None
    access_key_id: str | None = None
    probability: float | None = None
    seed: int | None = None
    times: int | None = None
    every_nth: int | None = None
    error: FaultError | None = None
    unprocessed_records: UnprocessedRecords | None = None
    latency_ms: float | None = None
    empty_page: bool = False  # GetEntitlements: an empty page that carries a NextToken
    kind: str | None = None  # None: a call's fault; "delivery-failure": a delivery's
    target: str | None = None  # delivery-failure: only this target (a name or webhook URL)

    @property
    def chance(self) -> float:
        return 1.0 if self.probability is None else self.probability

    @property
    def uses_randomness(self) -> bool:
        """Whether the rule draws: a probability below 1, or a random choice of records."""
        records = self.unprocessed_records
        return self.chance < 1 or (records is not None and records.count is not None)

    def effect(self) -> FaultError | UnprocessedRecords | None:
        """What the rule does besides latency and empty pages; a rule with no effect at all
        answers a 500."""
        if self.error is not None:
            return self.error
        if self.unprocessed_records is not None:
            return self.unprocessed_records
        return None if self.latency_ms is not None or self.empty_page else FaultError()

    def matches(
        self,
        operation: str,
        product_code: str | None,
        access_key_id: str | None,
        region: str | None,
    ) -> bool:
        return (
            self.kind is None
            and (self.service is None or self.service in OUR_SERVICE_NAMES)
            and (self.operation is None or self.operation == operation)
            and (self.region is None or self.region == region)
            and (self.product_code is None or self.product_code == product_code)
            and (self.access_key_id is None or self.access_key_id == access_key_id)
        )

    def to_json(self) -> dict[str, object]:
        """The rule's wire shape, with only the keys it was given."""
        return _present(
            {
                "kind": self.kind,
                "target": self.target,
                "service": self.service,
                "region": self.region,
                "operation": self.operation,
                "productCode": self.product_code,
                "accessKeyId": self.access_key_id,
                "probability": self.probability,
                "seed": self.seed,
                "times": self.times,
                "everyNth": self.every_nth,
                "error": self.error.to_json() if self.error else None,
                "unprocessedRecords": (
                    self.unprocessed_records.to_json() if self.unprocessed_records else None
                ),
                "latencyMs": self.latency_ms,
                "emptyPage": True if self.empty_page else None,
            }
        )


def _default_message(code: str) -> str:
    return _DEFAULT_MESSAGES.get(code, f"Injected fault: {code}")


# --- parsing -----------------------------------------------------------------------------------


def parse_rules(body: object) -> list[FaultRule]:
    """A JSON list of rules, or one rule object."""
    if isinstance(body, dict):
        return [parse_rule(body)]
    if not isinstance(body, list):
        raise Refusal("body", "expected a fault rule object or a list of them")
    rules: list[FaultRule] = []
    for position, item in enumerate(body, start=1):
        try:
            rules.append(parse_rule(item))
        except Refusal as refused:
            raise Refusal(refused.field, f"rule {position}: {refused.message}") from None
    return rules


def parse_rule(body: object) -> FaultRule:
    if not isinstance(body, dict):
        raise Refusal("body", "a fault rule must be a JSON object")
    _refuse_unknown_keys(body, _RULE_KEYS, prefix="", ignored=_READ_ONLY_KEYS)
    kind = _text(body, "kind")
    if kind is not None:
        return _delivery_rule(kind, body)
    if "target" in body:
        raise Refusal("target", f'only with "kind": "{DELIVERY_FAILURE}"')
    service = _text(body, "service")
    # A rule for another service (LocalStack configurations mix them) never fires here: its
    # operation and error code are that service's, kept as given, not checked against ours.
    ours = service is None or service in OUR_SERVICE_NAMES
    operation = _text(body, "operation")
    if ours and operation is not None and operation not in OPERATIONS:
        raise Refusal("operation", f"must be one of {', '.join(OPERATIONS)}")
    probability = _number(body, "probability")
    if probability is not None and not 0 < probability <= 1:
        raise Refusal("probability", "must be greater than 0 and at most 1")
    latency_ms = _number(body, "latencyMs")
    if latency_ms is not None:
        latency_ms = checked_latency("latencyMs", latency_ms)
    error = _parse_error(body.get("error"), ours)
    unprocessed = _parse_unprocessed(body.get("unprocessedRecords"))
    if unprocessed is not None and operation != "BatchMeterUsage":
        raise Refusal("unprocessedRecords", 'only with "operation": "BatchMeterUsage"')
    if unprocessed is not None and error is not None:
        raise Refusal("unprocessedRecords", 'cannot be combined with "error"')
    empty_page = body.get("emptyPage", False)
    if not isinstance(empty_page, bool):
        raise Refusal("emptyPage", "must be true or false")
    if empty_page and operation != "GetEntitlements":
        raise Refusal("emptyPage", 'only with "operation": "GetEntitlements"')
    if empty_page and error is not None:
        raise Refusal("emptyPage", 'cannot be combined with "error"')
    return FaultRule(
        service=service,
        region=_text(body, "region"),
        operation=operation,
        product_code=_text(body, "productCode"),
        access_key_id=_text(body, "accessKeyId"),
        probability=probability,
        seed=_integer(body, "seed", minimum=None),
        times=_integer(body, "times", minimum=1),
        every_nth=_integer(body, "everyNth", minimum=1),
        error=error,
        unprocessed_records=unprocessed,
        latency_ms=latency_ms,
        empty_page=empty_page,
    )


def _delivery_rule(kind: str, body: dict[object, object]) -> FaultRule:
    """A ``delivery-failure`` rule: which deliveries fail, and how often."""
    if kind != DELIVERY_FAILURE:
        raise Refusal("kind", f"must be {DELIVERY_FAILURE}")
    _refuse_unknown_keys(body, _DELIVERY_KEYS, prefix="", ignored=_READ_ONLY_KEYS)
    probability = _number(body, "probability")
    if probability is not None and not 0 < probability <= 1:
        raise Refusal("probability", "must be greater than 0 and at most 1")
    return FaultRule(
        kind=kind,
        product_code=_text(body, "productCode"),
        target=_text(body, "target"),
        probability=probability,
        seed=_integer(body, "seed", minimum=None),
        times=_integer(body, "times", minimum=1),
        every_nth=_integer(body, "everyNth", minimum=1),
    )


def _parse_error(value: object, ours: bool = True) -> FaultError | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refusal("error", "must be a JSON object")
    _refuse_unknown_keys(value, ("code", "statusCode", "message"), prefix="error.")
    code = _text(value, "code", prefix="error.")
    if ours and code is not None and code not in ERROR_CLASSES:
        known = ", ".join(sorted(ERROR_CLASSES))
        raise Refusal("error.code", f"unknown error {code!r}; known codes: {known}")
    status_code = _integer(value, "statusCode", minimum=400, prefix="error.")
    if status_code is not None and status_code > 599:
        raise Refusal("error.statusCode", "must be between 400 and 599")
    message = value.get("message")
    if message is not None and not isinstance(message, str):
        raise Refusal("error.message", "must be a string")
    return FaultError(code, status_code, message)


def _parse_unprocessed(value: object) -> UnprocessedRecords | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refusal("unprocessedRecords", "must be a JSON object")
    _refuse_unknown_keys(value, ("count", "indices"), prefix="unprocessedRecords.")
    given = {key: item for key, item in value.items() if item is not None}  # null: not given
    if ("count" in given) == ("indices" in given):
        raise Refusal("unprocessedRecords", 'needs exactly one of "count" or "indices"')
    count = _integer(given, "count", minimum=1, prefix="unprocessedRecords.")
    if count is not None:
        return UnprocessedRecords(count=count)
    indices = given["indices"]
    if (
        not isinstance(indices, list)
        or not indices
        or not all(_is_integer(index) and index >= 0 for index in indices)
    ):
        raise Refusal("unprocessedRecords.indices", "must be a non-empty list of integers >= 0")
    return UnprocessedRecords(indices=tuple(indices))


def _refuse_unknown_keys(
    body: dict[object, object], known: tuple[str, ...], prefix: str, ignored: tuple[str, ...] = ()
) -> None:
    for key in body:
        if key not in known and key not in ignored:
            raise Refusal(f"{prefix}{key}", f"unknown key; known keys: {', '.join(known)}")


def _text(body: dict[object, object], key: str, prefix: str = "") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise Refusal(f"{prefix}{key}", "must be a non-empty string")
    return value


def checked_latency(field: str, value: object) -> float:
    """``value`` as milliseconds of latency, within the one bound every setting of it has."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_LATENCY_MS
    ):
        raise Refusal(field, f"must be milliseconds from 0 to {MAX_LATENCY_MS}")
    return float(value)


def _number(body: dict[object, object], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refusal(key, "must be a number")
    return value


def _integer(
    body: dict[object, object], key: str, minimum: int | None, prefix: str = ""
) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refusal(f"{prefix}{key}", "must be an integer")
    if minimum is not None and value < minimum:
        raise Refusal(f"{prefix}{key}", f"must be at least {minimum}")
    return value


def _is_integer(value: object) -> bool:
    # Booleans are ints in Python but not numbers in JSON.
    return isinstance(value, int) and not isinstance(value, bool)


def _present(members: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in members.items() if value is not None}


def _milliseconds(value: float) -> str:
    return f"{value:g} ms"


# --- the injector ------------------------------------------------------------------------------


@dataclass(slots=True)
class _ActiveRule:
    """A rule in force, with its id, its random source and its counters."""

    id: int
    rule: FaultRule
    seed: int
    draw: random.Random
    remaining: int | None
    matched: int = 0
    applied: int = 0

    def to_json(self) -> dict[str, object]:
        shown: dict[str, object] = {"id": self.id, **self.rule.to_json()}
        if self.rule.uses_randomness:
            shown["seed"] = self.seed
        if self.remaining is not None:
            shown["remaining"] = self.remaining
        shown["matched"] = self.matched
        shown["applied"] = self.applied
        return shown


class FaultInjector:
    """The rules in force and the global latency; ``decide`` runs on every call (thread-safe)."""

    def __init__(self, seeds: random.Random | None = None) -> None:
        self._seeds = seeds
        self._lock = threading.Lock()
        self._rules: list[_ActiveRule] = []
        self._next_id = 1
        self._latency_ms: float = 0

    @property
    def latency_ms(self) -> float:
        """LocalStack's global latency effect: added to every call."""
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        checked = checked_latency("latencyMs", value)
        with self._lock:
            self._latency_ms = checked

    @property
    def idle(self) -> bool:
        """No rule in force and no global latency: ``decide`` answers None to every call."""
        return not self._rules and not self._latency_ms

    def rules_json(self) -> list[dict[str, object]]:
        with self._lock:
            return [active.to_json() for active in self._rules]

    def set_rules(self, rules: list[FaultRule]) -> None:
        """Replace every rule (LocalStack's POST)."""
        with self._lock:
            self._rules = [self._activate(rule) for rule in rules]

    def add_rules(self, rules: list[FaultRule]) -> None:
        """Append rules after those in force (LocalStack's PATCH)."""
        with self._lock:
            self._rules.extend(self._activate(rule) for rule in rules)

    def remove_rules(self, rules: list[FaultRule]) -> None:
        """Remove every rule equal to one of ``rules`` (LocalStack's DELETE with a body)."""
        with self._lock:
            self._rules = [active for active in self._rules if active.rule not in rules]

    def remove_rule(self, rule_id: int) -> bool:
        with self._lock:
            kept = [active for active in self._rules if active.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
            return removed

    def clear(self) -> None:
        """Remove every rule (the global latency stays)."""
        with self._lock:
            self._rules = []

    def reset(self) -> None:
        """As new: no rule, no global latency, and the next rule is number 1 again (so that
        labels such as "fault rule 1: ..." do not depend on what earlier tests did)."""
        with self._lock:
            self._rules = []
            self._next_id = 1
        self.latency_ms = 0.0

    def decide(
        self,
        operation: str,
        product_code: str | None,
        access_key_id: str | None,
        region: str | None,
        batch_size: int,
    ) -> FaultDecision | None:
        """The fault to inject into one call, or ``None`` for an honest answer.

        Every matching rule counts the call (and draws, when its probability is below 1);
        the first rule that fires applies.
        """
        if not self._rules and not self._latency_ms:
            return None
        with self._lock:
            applied: _ActiveRule | None = None
            for active in self._rules:
                if self._fires(active, operation, product_code, access_key_id, region):
                    applied = applied or active
            global_ms = self._latency_ms
            if applied is None:
                if not global_ms:
                    return None
                return FaultDecision(
                    f"global latency {_milliseconds(global_ms)}",
                    global_ms / 1000,
                    None,
                    frozenset(),
                )
            return self._apply(applied, batch_size, global_ms)

    def decide_delivery(self, product_code: str, target: str) -> str | None:
        """The label of the ``delivery-failure`` rule that fails this delivery attempt, or
        ``None``. Every matching rule counts the attempt; the first that fires applies."""
        if not self._rules:
            return None
        with self._lock:
            applied: _ActiveRule | None = None
            for active in self._rules:
                rule = active.rule
                if (
                    rule.kind != DELIVERY_FAILURE
                    or rule.product_code not in (None, product_code)
                    or rule.target not in (None, target)
                ):
                    continue
                active.matched += 1
                on_turn = rule.every_nth is None or active.matched % rule.every_nth == 0
                fires = on_turn and (rule.chance >= 1 or active.draw.random() < rule.chance)
                if fires and applied is None:
                    applied = active
            if applied is None:
                return None
            applied.applied += 1
            if applied.remaining is not None:
                applied.remaining -= 1
                if applied.remaining == 0:
                    self._rules.remove(applied)
            return f"fault rule {applied.id}: {DELIVERY_FAILURE}"

    def _activate(self, rule: FaultRule) -> _ActiveRule:
        if rule.seed is not None:
            seed = rule.seed
        elif self._seeds is not None:
            seed = self._seeds.getrandbits(32)
        else:
            seed = secrets.randbits(32)
        active = _ActiveRule(self._next_id, rule, seed, random.Random(seed), rule.times)
        self._next_id += 1
        return active

    @staticmethod
    def _fires(
        active: _ActiveRule,
        operation: str,
        product_code: str | None,
        access_key_id: str | None,
        region: str | None,
    ) -> bool:
        rule = active.rule
        if not rule.matches(operation, product_code, access_key_id, region):
            return False
        active.matched += 1
        on_turn = rule.every_nth is None or active.matched % rule.every_nth == 0
        if rule.chance < 1:
            return active.draw.random() < rule.chance and on_turn
        return on_turn

    def _apply(self, active: _ActiveRule, batch_size: int, global_ms: float) -> FaultDecision:
        rule = active.rule
        active.applied += 1
        if active.remaining is not None:
            active.remaining -= 1
            if active.remaining == 0:
                self._rules.remove(active)
        effects: list[str] = []
        failure: AwsError | None = None
        unprocessed: frozenset[int] = frozenset()
        effect = rule.effect()
        if isinstance(effect, FaultError):
            failure = effect.build()
            effects.append(failure.code)
        elif isinstance(effect, UnprocessedRecords):
            unprocessed = effect.choose(batch_size, active.draw)
            noun = "record" if len(unprocessed) == 1 else "records"
            effects.append(f"{len(unprocessed)} unprocessed {noun}")
        if rule.empty_page:
            effects.append("empty page")
        if rule.latency_ms is not None:
            effects.append(f"latency {_milliseconds(rule.latency_ms)}")
        label = f"fault rule {active.id}: {', '.join(effects)}"
        if global_ms:
            label += f"; global latency {_milliseconds(global_ms)}"
        latency_ms = (rule.latency_ms or 0) + global_ms
        return FaultDecision(label, latency_ms / 1000, failure, unprocessed, rule.empty_page)
