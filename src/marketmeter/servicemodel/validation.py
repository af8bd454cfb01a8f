"""Server-side enforcement of every constraint of the service model (docs/wire-protocol.md).

``compile_shape`` turns a botocore shape into a checker once, at start-up: a closure per shape
with its patterns precompiled, so a request is validated by walking the JSON once.

- A member of the wrong JSON type raises ``SerializationException`` at once (AWS's front end
  cannot deserialize it, so nothing else is reported).
- Constraint violations (required, length, range, pattern, enum) are collected as AWS phrases
  them and raised together as one counted ``ValidationException``. Paths are lowerCamelCase,
  list items 1-based with ``.member`` (``usageRecords.26.member.quantity``).
- The tag character set (``TagKey``/``TagValue`` patterns) is reported as AWS does, as
  ``InvalidTagException`` (docs/batch-meter-usage.md), when nothing else is wrong with the
  request.
- Empty strings in the identity members (docs/wire-protocol.md: newer SDKs send
  ``"ProductCode": ""``) are removed before checking, so that they count as absent everywhere
  after this point.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from marketmeter.errors import InvalidTagException, SerializationException, ValidationException

__all__ = [
    "ABSENT_WHEN_EMPTY",
    "BeyondFastJson",
    "Checker",
    "Violations",
    "compile_shape",
    "validate",
]

# Identity members whose empty string means "not given" (docs/wire-protocol.md, "Empty strings").
ABSENT_WHEN_EMPTY = frozenset(
    {"ProductCode", "CustomerIdentifier", "CustomerAWSAccountId", "LicenseArn", "ClientToken"}
)

# Shapes whose pattern violations AWS reports as InvalidTagException (docs/batch-meter-usage.md).
_TAG_SHAPES = frozenset({"TagKey", "TagValue"})


class Violations(list[str]):
    """Constraint violations in AWS's phrasing; ``tags`` holds the tag-charset ones apart."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []


class BeyondFastJson(SerializationException):
    """An integer member holds an integral float: orjson reads integers past 64 bits as floats.

    The caller re-reads the body with the standard library (exact big integers) and validates
    again, so ``99999999999999999999`` gets AWS's range message, not a type error.
    """

    def __init__(self, path: str) -> None:
        super().__init__(f"Unexpected value type at '{path}': expected an integer")


# A checker validates ``value`` found at ``path``, adding what it finds to the violations.
Checker = Callable[[Any, str, Violations], None]


def validate(checker: Checker, body: Any) -> None:
    """Check a whole request body; raise one ``ValidationException`` for all violations."""
    violations = Violations()
    checker(body, "", violations)
    if violations:
        raise ValidationException.from_violations(violations)
    if violations.tags:
        raise InvalidTagException(violations.tags[0])


def compile_shape(shape: Any) -> Checker:
    """Build the checker for a botocore shape (structure, list, string, integer, ...)."""
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape)
    if kind == "list":
        return _list(shape)
    if kind == "map":
        return _map(shape)
    if kind == "string":
        return _string(shape)
    if kind in ("integer", "long"):
        return _integer(shape)
    if kind == "timestamp":
        return _timestamp
    if kind == "boolean":
        return _boolean
    if kind in ("double", "float"):
        return _double
    raise NotImplementedError(f"shape type {kind!r} is not used by the served services")


def _camel(name: str) -> str:
    """AWS writes member paths in lowerCamelCase: ``UsageRecords`` → ``usageRecords``."""
    return name[:1].lower() + name[1:]


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers past 64 bits, from the exact re-read
        return json.dumps(value, separators=(",", ":"))


def _violation(value: Any, path: str, phrase: str) -> str:
    return f"Value '{_render(value)}' at '{path}' failed to satisfy constraint: {phrase}"


def _wrong_type(path: str, expected: str) -> SerializationException:
    where = path or "the request body"
    return SerializationException(f"Unexpected value type at '{where}': expected {expected}")


def _structure(shape: Any) -> Checker:
    members = [
        (name, _camel(name), compile_shape(member), name in shape.required_members)
        for name, member in shape.members.items()
    ]

    def check(value: Any, path: str, out: Violations) -> None:
        if not isinstance(value, dict):
            raise _wrong_type(path, "a JSON object")
        for name, camel, checker, required in members:
            item = value.get(name)
            if item == "" and name in ABSENT_WHEN_EMPTY:
                del value[name]
                item = None
            member_path = _join(path, camel)
            if item is None:
                if required:
                    out.append(
                        f"Value null at '{member_path}' failed to satisfy constraint: "
                        "Member must not be null"
                    )
                continue
            checker(item, member_path, out)

    return check


def _map(shape: Any) -> Checker:
    # A map's entries are checked as members named by their key (``filter.DIMENSION``); a key
    # outside the key shape's constraints is reported at the map's own path.
    low, high = _length_checks(shape.metadata)
    key_checker = compile_shape(shape.key)
    value_checker = compile_shape(shape.value)

    def check(value: Any, path: str, out: Violations) -> None:
        if not isinstance(value, dict):
            raise _wrong_type(path, "a JSON object")
        size = len(value)
        if high is not None and size > high:
            out.append(
                _violation(value, path, f"Member must have length less than or equal to {high}")
            )
        if low is not None and size < low:
            out.append(
                _violation(value, path, f"Member must have length greater than or equal to {low}")
            )
        for key, item in value.items():
            key_checker(key, path, out)
            if item is not None:
                value_checker(item, _join(path, key), out)

    return check


def _length_checks(metadata: dict[str, Any]) -> tuple[int | None, int | None]:
    return metadata.get("min"), metadata.get("max")


def _list(shape: Any) -> Checker:
    low, high = _length_checks(shape.metadata)
    item_checker = compile_shape(shape.member)

    def check(value: Any, path: str, out: Violations) -> None:
        if not isinstance(value, list):
            raise _wrong_type(path, "a JSON array")
        if None in value:
            # AWS's deserializer drops null items, so they count for nothing (not even length)
            shown = list(value)
            value[:] = [item for item in value if item is not None]
        else:
            shown = value
        size = len(value)
        if high is not None and size > high:
            out.append(
                _violation(shown, path, f"Member must have length less than or equal to {high}")
            )
        if low is not None and size < low:
            out.append(
                _violation(shown, path, f"Member must have length greater than or equal to {low}")
            )
        for index, item in enumerate(value, start=1):
            item_checker(item, f"{path}.{index}.member", out)

    return check


def _utf16_length(text: str) -> int:
    """Length as AWS (Java) counts it: UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    # Smithy patterns are ECMA-262 and not implicitly anchored (so: search, not fullmatch).
    # Python's ``$`` also matches before a trailing newline; ECMA's does not.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _string(shape: Any) -> Checker:
    low, high = _length_checks(shape.metadata)
    raw_pattern = shape.metadata.get("pattern")
    pattern = _compile_pattern(raw_pattern) if raw_pattern is not None else None
    enum: list[str] = list(shape.enum or [])
    enum_set = frozenset(enum)
    is_tag = shape.name in _TAG_SHAPES

    def check(value: Any, path: str, out: Violations) -> None:
        if not isinstance(value, str):
            raise _wrong_type(path, "a string")
        if high is not None or low:
            length = _utf16_length(value)
            if high is not None and length > high:
                out.append(
                    _violation(value, path, f"Member must have length less than or equal to {high}")
                )
            if low and length < low:
                out.append(
                    _violation(
                        value, path, f"Member must have length greater than or equal to {low}"
                    )
                )
        if pattern is not None and pattern.search(value) is None:
            if is_tag:
                out.tags.append(f"Tag '{value}' at '{path}' has characters outside {raw_pattern}")
                return
            out.append(
                _violation(
                    value, path, f"Member must satisfy regular expression pattern: {raw_pattern}"
                )
            )
        if enum_set and value not in enum_set:
            out.append(
                _violation(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
            )

    return check


def _integer(shape: Any) -> Checker:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")

    def check(value: Any, path: str, out: Violations) -> None:
        if isinstance(value, float) and value.is_integer():
            raise BeyondFastJson(path)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong_type(path, "an integer")
        if high is not None and value > high:
            out.append(
                _violation(value, path, f"Member must have value less than or equal to {high}")
            )
        if low is not None and value < low:
            out.append(
                _violation(value, path, f"Member must have value greater than or equal to {low}")
            )

    return check


def _timestamp(value: Any, path: str, out: Violations) -> None:
    # JSON 1.1 timestamps are epoch seconds: integers (boto3), fractions (Go), exponents.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(path, "a timestamp in epoch seconds")
    if isinstance(value, float) and not math.isfinite(value):
        raise _wrong_type(path, "a finite timestamp in epoch seconds")


def _double(value: Any, path: str, out: Violations) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(path, "a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _wrong_type(path, "a finite number")


def _boolean(value: Any, path: str, out: Violations) -> None:
    if not isinstance(value, bool):
        raise _wrong_type(path, "a boolean")
