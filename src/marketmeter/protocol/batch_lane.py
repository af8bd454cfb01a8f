"""BatchMeterUsage's fast lane: the common batch decoded, validated and answered in C-backed
code, every other request left to the general path (``protocol.parse`` and
``metering.batch_meter_usage``), which gives AWS's exact errors.

At start-up the lane compiles the service model's ``BatchMeterUsageRequest`` into msgspec
structs holding only the members of the common batch (ProductCode; per record Timestamp,
Dimension, CustomerIdentifier, Quantity), with unknown members forbidden, and the model's
constraints on them (list length, string lengths and patterns, integer ranges) into plain
comparisons. A body the decoder refuses (another member, a null, a float timestamp, a wrong
type, bad JSON) or a value outside a constraint (or an empty, non-ASCII or unprintable string,
whose length or echo the general path handles) makes the lane answer ``None`` before
anything happened: the endpoint then takes the general path, as if the lane did not exist.

A request the lane accepts goes through the test bench's checks exactly once (quota, faults),
then ``metering.simple_batch``. If a fault holds records back, or a whole-request rule fails
(an unknown product or dimension, a timestamp out of the window), the general rules run on the
same body, without a second check, and raise or answer as always. The answer is encoded by
msgspec straight from the decoded records (the echo of each record is the record as received,
members in the general serializer's order).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from marketmeter.metering.batch_meter_usage import BatchMeterUsage
from marketmeter.metering.simple_batch import SimpleBatch, SimpleBatchResult
from marketmeter.metering.types import Caller
from marketmeter.protocol import serialize
from marketmeter.protocol.endpoint import RequestNotes
from marketmeter.protocol.hooks import CallChecks
from marketmeter.protocol.operations import apply_decision, record_verdicts
from marketmeter.protocol.parse import batch_meter_usage_request, decode_and_validate
from marketmeter.servicemodel.spec import service_model
from marketmeter.servicemodel.validation import compile_shape

__all__ = ["BatchCodec", "BatchLane"]

OPERATION = "BatchMeterUsage"
# The common batch's members, in the order the general serializer echoes a record.
_RECORD_MEMBERS = ("Timestamp", "Dimension", "CustomerIdentifier", "Quantity")
_REQUIRED_IN_LANE = frozenset({"Timestamp", "Dimension", "CustomerIdentifier", "ProductCode"})
_TYPES: dict[str, Any] = {"timestamp": int, "string": str, "integer": int}
# Patterns every non-empty string satisfies: not worth a regular expression per value.
_ANY_TEXT = frozenset({r"[\s\S]*", r"[\s\S]+"})


def _struct(name: str, shape: Any, members: tuple[str, ...], extra: dict[str, Any]) -> Any:
    fields: list[Any] = []
    for member in members:
        kind = extra.get(member) or _TYPES[shape.members[member].type_name]
        if member in _REQUIRED_IN_LANE or member in extra:
            fields.append((member, kind))
        else:
            fields.append((member, kind | msgspec.UnsetType, msgspec.UNSET))
    return msgspec.defstruct(name, fields, forbid_unknown_fields=True)


def _pattern(text: str | None) -> re.Pattern[str] | None:
    """A Smithy (ECMA) pattern: searched, not anchored; ``$`` does not match before a final
    newline (``servicemodel.validation`` reads them the same way)."""
    if text is None or text in _ANY_TEXT:
        return None
    if text.endswith("$") and not text.endswith("\\$"):
        text = text[:-1] + r"\Z"
    return re.compile(text)


def _text_check(shape: Any) -> Callable[[Sequence[str]], bool]:
    """The model's constraints on a string member, for the lane, over all of a batch's values
    at once: non-empty, printable ASCII (one UTF-16 unit a character), within the length
    bounds, matching the pattern."""
    high = shape.metadata.get("max", 1 << 31)
    low = max(1, shape.metadata.get("min", 1))
    pattern = _pattern(shape.metadata.get("pattern"))

    def check(values: Sequence[str]) -> bool:
        lengths = list(map(len, values))
        if min(lengths) < low or max(lengths) > high:
            return False
        joined = "".join(values)  # both properties hold for a text if for each character
        if not (joined.isascii() and joined.isprintable()):
            return False
        return pattern is None or all(pattern.search(value) for value in values)

    return check


class BatchCodec:
    """The lane's decoder, checks and encoder, compiled once from the model (a worker of
    ``serve --workers`` uses them without the rest of the lane)."""

    def __init__(self) -> None:
        request = service_model().operation_model(OPERATION).input_shape
        records = request.members["UsageRecords"]
        record = records.member
        self._record_type = _struct("LaneRecord", record, _RECORD_MEMBERS, {})
        self._request_type = _struct(
            "LaneRequest",
            request,
            ("UsageRecords", "ProductCode"),
            {"UsageRecords": list[self._record_type]},  # type: ignore[name-defined]
        )
        self._result_type = msgspec.defstruct(
            "LaneResult",
            [
                ("UsageRecord", self._record_type),
                ("Status", str),
                ("MeteringRecordId", str | msgspec.UnsetType, msgspec.UNSET),
            ],
        )
        self._decoder = msgspec.json.Decoder(self._request_type)
        self._encoder = msgspec.json.Encoder()
        self._max_records = records.metadata.get("max", 1 << 31)
        self._product_ok = _text_check(request.members["ProductCode"])
        self._dimension_ok = _text_check(record.members["Dimension"])
        self._customer_ok = _text_check(record.members["CustomerIdentifier"])
        quantity = record.members["Quantity"].metadata
        self._quantity_low = quantity.get("min", -(1 << 63))
        self._quantity_high = quantity.get("max", 1 << 63)
        self.checker = compile_shape(request)

    def accept(
        self, body: bytes
    ) -> tuple[str, list[Any], list[int], list[str], list[str], list[int]] | None:
        """The batch's values, or None unless it is a common batch within every constraint."""
        try:
            request = self._decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        records = request.UsageRecords
        if not records or len(records) > self._max_records:
            return None  # an empty batch, or too many records: the general path's
        if not self._product_ok((request.ProductCode,)):
            return None
        timestamps = [r.Timestamp for r in records]
        dimensions = [r.Dimension for r in records]
        customers = [r.CustomerIdentifier for r in records]
        quantities = [0 if r.Quantity is msgspec.UNSET else r.Quantity for r in records]
        if min(quantities) < self._quantity_low or max(quantities) > self._quantity_high:
            return None
        if not (self._dimension_ok(dimensions) and self._customer_ok(customers)):
            return None
        return request.ProductCode, records, timestamps, dimensions, customers, quantities

    def encode(self, records: list[Any], result: SimpleBatchResult) -> bytes:
        """The answer to a batch ``metering.simple_batch`` decided, echoing ``records``."""
        unset = msgspec.UNSET
        make = self._result_type
        answer = {
            "Results": [
                make(record, status, unset if record_id is None else record_id)
                for record, status, record_id in zip(
                    records, result.statuses, result.record_ids, strict=True
                )
            ],
            "UnprocessedRecords": [],
        }
        return self._encoder.encode(answer)


class BatchLane:
    """The lane for one endpoint."""

    def __init__(
        self,
        simple: SimpleBatch,
        rules: BatchMeterUsage,
        controls: CallChecks,
        codec: BatchCodec | None = None,
    ) -> None:
        self._codec = codec or BatchCodec()
        self._simple = simple
        self._rules = rules
        self._controls = controls

    async def __call__(self, body: bytes, caller: Caller, notes: RequestNotes) -> bytes | None:
        parsed = self._codec.accept(body)
        if parsed is None:
            return None
        code, records, timestamps, dimensions, customers, quantities = parsed
        notes.product_code = code
        decision = self._controls.check(OPERATION, code, caller, len(records))
        held = await apply_decision(decision, notes)
        if not held:
            result = await self._simple(code, caller, timestamps, dimensions, customers, quantities)
            if result is not None:
                notes.verdicts = tuple(result.statuses)
                return self._codec.encode(records, result)
        # the general rules, on the same body, the bench's check made once already
        request = batch_meter_usage_request(decode_and_validate(self._codec.checker, body))
        general = await self._rules(request, caller, held)
        notes.verdicts = record_verdicts(general, held, len(request.records))
        return serialize.success(serialize.batch_meter_usage_result(general)).body
