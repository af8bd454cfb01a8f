"""Integer members: exact big integers get AWS's range message; a number that stays a float
after the exact re-read (exponent notation, a fraction past float precision) is a
SerializationException, never an internal error type on the wire."""

from __future__ import annotations

import pytest

from marketmeter.errors import SerializationException, ValidationException
from marketmeter.protocol.parse import RequestParser, decode_and_validate


def checker(target: str) -> object:
    return RequestParser().operation(f"AWSMPMeteringService.{target}")[1]


@pytest.mark.parametrize(
    "body",
    [
        b'{"ProductCode":"p","PublicKeyVersion":-5.229524236867687e+16}',
        b'{"ProductCode":"p","PublicKeyVersion":1e300}',
        b'{"ProductCode":"p","PublicKeyVersion":2.0}',
    ],
)
def test_an_integral_float_in_an_integer_member_is_a_serialization_error(body: bytes) -> None:
    with pytest.raises(SerializationException) as failure:
        decode_and_validate(checker("RegisterUsage"), body)  # type: ignore[arg-type]
    assert type(failure.value) is SerializationException
    assert failure.value.code == "SerializationException"
    assert failure.value.message == (
        "Unexpected value type at 'publicKeyVersion': expected an integer"
    )


def test_an_integer_past_64_bits_gets_the_range_message() -> None:
    body = (
        b'{"ProductCode":"p","Timestamp":1,"UsageDimension":"d",'
        b'"UsageQuantity":99999999999999999999}'
    )
    with pytest.raises(ValidationException) as failure:
        decode_and_validate(checker("MeterUsage"), body)  # type: ignore[arg-type]
    assert failure.value.message == (
        "1 validation error detected: Value '99999999999999999999' at 'usageQuantity' failed "
        "to satisfy constraint: Member must have value less than or equal to 2147483647"
    )
