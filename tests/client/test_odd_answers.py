"""Answers AWS should never give, from a stub: the client keeps the records it cannot match
pending (to be asked again) instead of failing the flush or settling them wrongly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from marketmeter.client import MeteringClient, RecordState

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


class Stub:
    """Answers the first record Success, and one record that was never sent."""

    def __init__(self) -> None:
        self.calls = 0

    def batch_meter_usage(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        first = request["UsageRecords"][0]
        stranger = {**first, "CustomerIdentifier": "nobody"}
        return {
            "Results": [
                {"UsageRecord": first, "MeteringRecordId": "id-1", "Status": "Success"},
                {"UsageRecord": stranger, "MeteringRecordId": "id-2", "Status": "Success"},
            ],
            "UnprocessedRecords": [],
        }


def test_records_left_unanswered_stay_pending(tmp_path: Path) -> None:
    meter = MeteringClient(tmp_path / "s.db", "prod-x", aws=Stub(), clock=lambda: NOW)
    meter.record("a", "users", 1, NOW - timedelta(hours=1))
    meter.record("b", "users", 2, NOW - timedelta(hours=1))
    result = meter.flush()
    assert result.settled == {RecordState.SENT: 1}
    assert result.pending == 1
    assert len(result.errors) == 2
    assert result.errors[0].startswith("an answer for no record sent: ")
    assert [
        (r.customer.label if r.customer else "", r.state, r.error_code) for r in meter.records()
    ] == [
        ("a", RecordState.SENT, None),
        ("b", RecordState.PENDING, "NoAnswer"),
    ]
