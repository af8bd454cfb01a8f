"""The client benchmark runs, and its runs record what they claim (a short run)."""

from __future__ import annotations

from pathlib import Path

from bench.client_spool import run_benchmark

from marketmeter.client import MeteringClient


def test_the_benchmark_records_what_it_reports(tmp_path: Path) -> None:
    results = run_benchmark(40, threads=[2], processes=[2], directory=tmp_path)
    assert [(r["run"], r["workers"], r["records"]) for r in results] == [
        ("record (threads)", 1, 40),
        ("record (threads)", 2, 40),
        ("record (processes)", 2, 40),
        ("record_many (100)", 1, 40),
        ("aggregate", 1, 40),
    ]
    assert all(r["records_per_second"] > 0 for r in results)
    for name in ("threads-1", "threads-2", "processes-2", "many"):
        meter = MeteringClient(tmp_path / f"{name}.db", aws=object())
        events = meter.status().unaggregated + sum(r.usage_events for r in meter.records())
        assert events == 40, name
