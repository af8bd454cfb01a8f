"""``admin.inputs.parse_duration``: what ``marketmeter clock advance|offset`` accepts as a
duration (seconds, or a number with s, m, h or d) and how it refuses the rest."""

from __future__ import annotations

import pytest

from marketmeter.operator.inputs import parse_duration
from marketmeter.refusal import Refusal

NOT_A_DURATION = "{!r} is not a duration like 90, 15m, 6h or 2d"
NOT_FINITE = "{!r} is not a finite duration"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("0", 0),
        ("-30s", -30),
        ("45s", 45),
        ("15m", 900),
        ("-90m", -5400),
        ("6h", 21600),
        ("-6h", -21600),
        ("2d", 172800),
        ("1.5h", 5400),
        ("0.25", 0.25),
        ("6H", 21600),  # the unit in either case
        ("+5m", 300),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    parsed = parse_duration("DURATION", text)

    assert parsed == seconds
    assert type(parsed) is float


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", NOT_A_DURATION.format("soon")),
        ("", NOT_A_DURATION.format("")),
        ("h", NOT_A_DURATION.format("h")),
        ("6w", NOT_A_DURATION.format("6w")),  # no weeks
        ("6 hours", NOT_A_DURATION.format("6 hours")),
        ("1h30m", NOT_A_DURATION.format("1h30m")),
        ("nanh", NOT_FINITE.format("nanh")),
        ("nan", NOT_FINITE.format("nan")),
        ("infh", NOT_FINITE.format("infh")),
        ("-inf", NOT_FINITE.format("-inf")),
        ("1e400", NOT_FINITE.format("1e400")),
        ("1e306d", NOT_FINITE.format("1e306d")),  # finite as a number, not in seconds
    ],
)
def test_bad_durations_name_the_field(text: str, message: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_duration("DURATION", text)

    assert (refused.value.field, refused.value.message) == ("DURATION", message)
    assert str(refused.value) == f"DURATION: {message}"


def test_the_field_is_the_one_given() -> None:
    with pytest.raises(Refusal) as refused:
        parse_duration("seconds", "soon")

    assert refused.value.field == "seconds"
