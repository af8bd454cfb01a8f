"""The benchmark harness (bench/run.py and its wrk_report, processes, contenders and report
modules; bench/bulk_ledger.py): wrk's report parsed to exact figures, the tables and their
ratios, the CPU bookkeeping from /proc, the bulk ledger filler (its keys, the unique index, a
filled key then deduplicated by the store), and one end-to-end ``python -m bench.run --smoke``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bench.bulk_ledger import RECENT_HOURS_LEFT_FREE, fill, filled_rows
from bench.contenders import (
    SQLiteContender,
    copy_ledger,
    postgres_available,
    template_ledger,
)
from bench.make_catalog import BENCH_ACCESS_KEY, BENCH_SECRET
from bench.processes import ROOT, process_tree_cpu_seconds, stat_cpu_ticks
from bench.profile import read_collapsed
from bench.report import (
    GrowthRow,
    RunResult,
    check_billed,
    format_growth_table,
    format_table,
    key_space,
    ratio,
)
from bench.run import measure
from bench.signed_requests import write_signed_requests
from bench.wrk_report import SocketErrors, WrkReport, parse_wrk, time_ms

from bench import hot_path
from marketmeter.metering.types import LedgerEntry, UsageRecord
from marketmeter.protocol.auth import RawRequest
from marketmeter.protocol.sigv4 import SigV4Verifier
from marketmeter.store.sqlite import SQLiteStore

# wrk 4.1.0 against a server answering some requests with 500 and dropping some connections.
WRK_WITH_ERRORS = """\
Running 2s test @ http://127.0.0.1:41234/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    48.21ms   95.12ms   1.98s    97.50%
    Req/Sec     1.32k   210.44     1.61k    80.00%
  Latency Distribution
     50%  812.00us
     75%   40.12ms
     90%   52.90ms
     99%  610.33ms
  2634 requests in 2.00s, 11.73MB read
  Socket errors: connect 0, read 2, write 1, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:   1316.54
Transfer/sec:      5.86MB
"""

# The clean run recorded against marketmeter (bench/batch_load.lua, 8 connections).
WRK_CLEAN = """\
Running 2s test @ http://127.0.0.1:18779/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.90ms    4.02ms  53.31ms   93.98%
    Req/Sec     1.22k   171.94     1.45k    70.00%
  Latency Distribution
     50%    6.16ms
     75%    7.30ms
     90%    9.03ms
     99%   30.66ms
  2425 requests in 2.00s, 10.80MB read
Requests/sec:   1210.92
Transfer/sec:      5.39MB
"""


def test_wrk_report_with_errors_parses_to_exact_figures() -> None:
    report = parse_wrk(WRK_WITH_ERRORS)
    assert report == WrkReport(
        requests=2634,
        seconds=2.0,
        requests_per_second=1316.54,
        p50_ms=0.812,
        p75_ms=40.12,
        p90_ms=52.9,
        p99_ms=610.33,
        max_ms=1980.0,
        non_2xx=12,
        socket_errors=SocketErrors(connect=0, read=2, write=1, timeout=7),
    )
    assert report.errors == 22
    # 2xx only: 2622 of the 2634 requests
    assert report.ok_requests_per_second == pytest.approx(1316.54 * 2622 / 2634, rel=1e-12)
    assert report.records_per_second == pytest.approx(25 * 1316.54 * 2622 / 2634, rel=1e-12)
    assert report.describe_errors() == (
        "12 non-2xx answers; socket errors: connect 0, read 2, write 1, timeout 7"
    )


def test_clean_wrk_report_has_no_errors() -> None:
    report = parse_wrk(WRK_CLEAN)
    assert (report.requests, report.requests_per_second) == (2425, 1210.92)
    assert (report.p50_ms, report.p75_ms, report.p90_ms, report.p99_ms, report.max_ms) == (
        6.16,
        7.30,
        9.03,
        30.66,
        53.31,
    )
    assert (report.non_2xx, report.socket_errors, report.errors) == (0, SocketErrors(), 0)
    assert report.records_per_second == pytest.approx(30273.0)
    assert report.describe_errors() == ""


def test_percentiles_past_a_second_parse_despite_wrks_trailing_space() -> None:
    slow = WRK_CLEAN.replace("     99%   30.66ms\n", "     99%    1.99s \n")
    assert parse_wrk(slow).p99_ms == 1990.0


def test_a_truncated_wrk_report_is_refused() -> None:
    truncated = WRK_CLEAN.split("  Latency Distribution")[0]
    with pytest.raises(ValueError, match="not a wrk --latency report"):
        parse_wrk(truncated)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("463.00us", 0.463), ("6.16ms", 6.16), ("2.00s", 2000.0), ("1.50m", 90_000.0)],
)
def test_wrk_durations_in_each_unit(text: str, ms: float) -> None:
    assert time_ms(text) == pytest.approx(ms, rel=1e-12)


def test_a_duration_without_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="not a wrk duration: '12'"):
        time_ms("12")


def _report(rate: float, p99: float, non_2xx: int = 0) -> WrkReport:
    return WrkReport(
        requests=1000,
        seconds=2.0,
        requests_per_second=rate,
        p50_ms=p99 / 4,
        p75_ms=p99 / 3,
        p90_ms=p99 / 2,
        p99_ms=p99,
        max_ms=p99 * 2,
        non_2xx=non_2xx,
        socket_errors=SocketErrors(),
    )


def _run(contender: str, connections: int, rate: float, p99: float, **extra: object) -> RunResult:
    return RunResult(
        contender,
        connections,
        ready_seconds=0.5,
        wrk=_report(rate, p99),
        server_cpu_seconds=1.5,
        server_cpu_percent=75.0,
        peak_rss_mib=90.4,
        peak_pss_mib=70.6,
        wrk_cpu_seconds=0.12,
        **extra,  # type: ignore[arg-type]
    )


def test_ratio_needs_a_positive_reference() -> None:
    assert ratio(1040.0, 260.0) == 4.0
    assert ratio(1040.0, None) is None
    assert ratio(1040.0, 0.0) is None


def test_table_gives_each_run_its_ratios_to_both_motos_at_the_same_connections() -> None:
    results = [
        _run("moto", 1, 260.0, 8.0),
        _run("moto", 8, 250.0, 40.0),
        _run("moto-fair", 8, 500.0, 20.0),
        _run("sqlite-full", 1, 1050.0, 2.5),  # moto-fair has no run at 1: no fair ratio
        _run("sqlite-full", 8, 1420.0, 23.456),
        _run("sqlite-full", 64, 1320.0, 120.0),  # no moto run at 64: no ratio
        _run("postgresql", 8, 500.0, 36.0, database_cpu_seconds=1.25),
        _run("sqlite-meter-usage", 8, 2000.0, 4.0, records_per_request=1),
        RunResult("sqlite-normal", 8, error="the server exited with status 1 at start"),
    ]
    assert format_table(results) == "\n".join(
        [
            "| contender | conns | req/s | records/s | p50 ms | p99 ms | max ms | server CPU s "
            "| server CPU % | req/CPU s | db CPU s | peak RSS MiB | peak PSS MiB | wrk CPU s "
            "| ready s | × moto fair | × moto |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            "| moto | 1 | 260 | 6,500 | 2.00 | 8.00 | 16.0 | 1.50 | 75 | 667 | – | 90 | 71 | 0.12 "
            "| 0.50 | – | 1.00 |",
            "| moto | 8 | 250 | 6,250 | 10.0 | 40.0 | 80.0 | 1.50 | 75 | 667 | – | 90 | 71 | 0.12 "
            "| 0.50 | 0.50 | 1.00 |",
            "| moto-fair | 8 | 500 | 12,500 | 5.00 | 20.0 | 40.0 | 1.50 | 75 | 667 | – | 90 | 71 "
            "| 0.12 | 0.50 | 1.00 | 2.00 |",
            "| sqlite-full | 1 | 1,050 | 26,250 | 0.62 | 2.50 | 5.00 | 1.50 | 75 | 667 | – | 90 "
            "| 71 | 0.12 | 0.50 | – | 4.04 |",
            "| sqlite-full | 8 | 1,420 | 35,500 | 5.86 | 23.5 | 46.9 | 1.50 | 75 | 667 | – | 90 "
            "| 71 | 0.12 | 0.50 | 2.84 | 5.68 |",
            "| sqlite-full | 64 | 1,320 | 33,000 | 30.0 | 120.0 | 240.0 | 1.50 | 75 | 667 | – | 90 "
            "| 71 | 0.12 | 0.50 | – | – |",
            "| postgresql | 8 | 500 | 12,500 | 9.00 | 36.0 | 72.0 | 1.50 | 75 | 667 | 1.25 | 90 "
            "| 71 | 0.12 | 0.50 | 1.00 | 2.00 |",
            "| sqlite-meter-usage | 8 | 2,000 | 2,000 | 1.00 | 4.00 | 8.00 | 1.50 | 75 | 667 | – "
            "| 90 | 71 | 0.12 | 0.50 | 4.00 | 8.00 |",
            "| sqlite-normal | 8 | FAILED | – | – | – | – | – | – | – | – | – | – | – | – | – "
            "| – |",
        ]
    )


def test_a_moto_run_with_errors_is_no_reference_and_errors_are_marked() -> None:
    failed_moto = dataclasses.replace(_run("moto", 8, 250.0, 40.0), wrk=_report(250.0, 40.0, 3))
    table = format_table([failed_moto, _run("sqlite-full", 8, 1000.0, 20.0)]).splitlines()
    assert table[2].startswith("| moto (errors) | 8 | 250 | 6,231 |")  # 997 of 1000 were 2xx
    assert table[3].endswith("| 0.50 | – | – |")


def test_growth_table_compares_each_size_with_the_empty_ledger() -> None:
    rows = [
        GrowthRow(0, _run("sqlite-full", 64, 1320.0, 100.0)),
        GrowthRow(1_000_000, _run("sqlite-full", 64, 1188.0, 125.0)),
        GrowthRow(10_000_000, RunResult("sqlite-full", 64, 10_000_000, error="wrk exited")),
    ]
    assert format_growth_table(rows) == "\n".join(
        [
            "| ledger rows | conns | req/s | p99 ms | ready s | req/s × empty | p99 × empty |",
            "|---|---:|---:|---:|---:|---:|---:|",
            "| 0 | 64 | 1,320 | 100.0 | 0.50 | 1.00 | 1.00 |",
            "| 1,000,000 | 64 | 1,188 | 125.0 | 0.50 | 0.90 | 1.25 |",
            "| 10,000,000 | 64 | FAILED | – | – | – | – |",
        ]
    )


def test_a_run_whose_ledger_misses_records_fails() -> None:
    run = _run("sqlite-full", 8, 500.0, 20.0)  # 1000 requests, all 2xx
    assert check_billed(run, 25_000, buyers=20000) == run
    assert check_billed(run, 25_001, buyers=20000) == run  # + the probe's record
    assert check_billed(run, None, buyers=20000) == run  # moto keeps no ledger to count
    assert check_billed(run, 24_999, buyers=20000).error == (
        "24,999 records billed for 1,000 2xx answers (at least 25,000 expected)"
    )


def test_past_the_key_space_billed_rows_are_not_checked() -> None:
    assert key_space(20000) == 40_000  # 800 batches an hour, 10 dimensions, 5 hours
    assert (key_space(500), key_space(525)) == (1000, 1050)
    run = _run("sqlite-full", 8, 500.0, 20.0)  # 1000 answered, up to 8 more sent
    assert check_billed(run, 0, buyers=500) == run  # 1,008 requests > 1,000 keys: repeats
    assert check_billed(run, 24_999, buyers=525).error == (
        "24,999 records billed for 1,000 2xx answers (at least 25,000 expected)"
    )


def test_a_load_of_distinct_keys_is_checked_at_one_row_per_meter_usage_answer() -> None:
    run = _run("sqlite-meter-usage", 8, 500.0, 20.0, records_per_request=1)  # 1000 answers
    assert check_billed(run, 1000, buyers=25, distinct_keys=True) == run  # past any key space
    assert check_billed(run, 999, buyers=25, distinct_keys=True).error == (
        "999 records billed for 1,000 2xx answers (at least 1,000 expected)"
    )


def test_profile_sums_collapsed_stacks_by_thread_leaf_and_function() -> None:
    profile = read_collapsed(
        "process 7:serve;thread (7): MainThread;run (a.py);parse (b.py) 30\n"
        "process 7:serve;thread (7): MainThread;run (a.py) 10\n"
        "process 7:serve;thread (9): writer;commit (c.py) 60\n"
    )
    assert profile.total == 100
    assert profile.by_thread == {"thread (7): MainThread": 40, "thread (9): writer": 60}
    assert profile.top(profile.self_samples, 2) == [
        " 60.0 %  commit (c.py)",
        " 30.0 %  parse (b.py)",
    ]
    assert profile.inclusive["run (a.py)"] == 40


def test_stat_line_cpu_ticks_survive_a_name_with_parentheses() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime ...
    stat = "4242 (odd) (name)) S 77 4242 4242 0 -1 4194560 900 0 3 0 100 20 3 4 20 0 5 0\n"
    assert stat_cpu_ticks(stat) == (77, 127)


BURN = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
# Burns 0.5 s of CPU in a child it reaps, then 0.5 s in a child it keeps alive.
PARENT = f"""
import subprocess, sys
subprocess.run([sys.executable, "-c", {BURN!r}], check=True)
live = subprocess.Popen(
    [sys.executable, "-c", {BURN!r} + "print('burnt', flush=True)\\ninput()"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
)
live.stdout.readline()
print("ready", flush=True)
input()
live.communicate(b"\\n")
"""


def test_cpu_of_reaped_and_live_descendants_counts_in_the_tree() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline() == "ready\n"
        used = process_tree_cpu_seconds(parent.pid)
    finally:
        parent.communicate("\n", timeout=30)
    assert 0.95 <= used < 5  # both burns (tick accounting may round each down by 10 ms)
    assert process_tree_cpu_seconds(parent.pid) == 0.0  # reaped: no such process any more


# --- the bulk ledger -----------------------------------------------------------------------

NOW = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
NEWEST_HOUR = 1_794_978_000  # 05:00 UTC: the hour of NOW less 6 h
OLDEST_HOUR = NEWEST_HOUR - (60 * 24 - RECENT_HOURS_LEFT_FREE - 1) * 3600


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    SQLiteStore(path).close_now()
    report = fill(path, 5000, now=NOW, buyers=50, transaction_rows=2000)
    assert report.rows == 5000
    return path


def test_fill_writes_distinct_keys_over_two_months_out_of_the_loads_hours(filled: Path) -> None:
    with sqlite3.connect(filled) as connection:
        stats = connection.execute(
            "SELECT count(*), count(DISTINCT metering_record_id), min(hour), max(hour), "
            "count(DISTINCT hour), count(DISTINCT customer_account), "
            "count(DISTINCT dimension), count(DISTINCT scope) FROM usage_records"
        ).fetchone()
        keys = connection.execute(
            "SELECT count(*) FROM (SELECT DISTINCT hour, scope, customer_account, dimension "
            "FROM usage_records)"
        ).fetchone()[0]
        strays = connection.execute(
            "SELECT count(*) FROM usage_records WHERE customer_identifier <> "
            "'c' || (CAST(customer_account AS INTEGER) - 100000000000) "
            "OR product_code <> 'bench-saas' OR scope <> 'product:bench-saas' "
            "OR usage_timestamp < hour OR usage_timestamp >= hour + 3600 "
            "OR received_at <= usage_timestamp OR operation <> 'BatchMeterUsage'"
        ).fetchone()[0]
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert stats == (5000, 5000, OLDEST_HOUR, NEWEST_HOUR, 1434, 50, 10, 1)
    assert keys == 5000
    assert strays == 0
    assert journal == "wal"


def test_fill_rows_are_reproducible() -> None:
    first, second = list(filled_rows(2, now=NOW, buyers=50))
    assert first == (
        OLDEST_HOUR,
        "product:bench-saas",
        "100000000000",
        "d0",
        1_000_000,
        "00000000-0000-4000-8000-000000000000",
        "bench-saas",
        None,
        "c0",
        float(OLDEST_HOUR),
        None,
        OLDEST_HOUR + 30.0,
        "BatchMeterUsage",
        None,
    )
    # the second row opens the next hour, at another key of its key space
    assert first[0] + 3600 == second[0]
    assert (second[2], second[3], second[5]) == (
        "100000000029",
        "d4",
        "00000000-0000-4000-8000-000000000001",
    )


def test_fill_refuses_more_rows_than_keys() -> None:
    with pytest.raises(ValueError, match="do not fit in 1434 hours of 20 keys"):
        next(filled_rows(1434 * 20 + 1, now=NOW, buyers=2, dimensions=10))


def test_the_unique_index_holds_the_filled_keys(filled: Path) -> None:
    with sqlite3.connect(filled) as connection:
        hour, scope, account, dimension = connection.execute(
            "SELECT hour, scope, customer_account, dimension FROM usage_records WHERE seq = 1234"
        ).fetchone()
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
            connection.execute(
                "INSERT INTO usage_records (hour, scope, customer_account, dimension, "
                "quantity_micros, metering_record_id, product_code, usage_timestamp, "
                "received_at) VALUES (?, ?, ?, ?, 1, 'x', 'bench-saas', ?, ?)",
                (hour, scope, account, dimension, hour, hour),
            )
    connection.close()


def _entry(hour: int, account: str, dimension: str, quantity: int, record_id: str) -> LedgerEntry:
    customer = f"c{int(account) - 100_000_000_000}"
    return LedgerEntry(
        hour=hour,
        scope="product:bench-saas",
        customer_account=account,
        dimension=dimension,
        quantity_micros=quantity * 1_000_000,
        metering_record_id=record_id,
        product_code="bench-saas",
        record=UsageRecord(hour + 5, dimension, quantity, customer_identifier=customer),
        received_at=NOW,
    )


def test_the_store_sees_a_filled_key_as_billed(filled: Path) -> None:
    with sqlite3.connect(filled) as connection:
        hour, account, dimension, micros, record_id = connection.execute(
            "SELECT hour, customer_account, dimension, quantity_micros, metering_record_id "
            "FROM usage_records WHERE seq = 4321"
        ).fetchone()
    connection.close()
    store = SQLiteStore(filled)
    try:
        outcomes = asyncio.run(
            store.bill(
                [
                    _entry(hour, account, dimension, micros // 1_000_000 + 1, "new-id-1"),
                    _entry(NEWEST_HOUR + 3600, account, dimension, 1, "new-id-2"),
                ]
            )
        )
    finally:
        store.close_now()
    assert [(o.metering_record_id, o.quantity_micros, o.inserted) for o in outcomes] == [
        (record_id, micros, False),  # already billed by the fill: not inserted
        ("new-id-2", 1_000_000, True),  # a key of the hours the fill left free
    ]


# --- the strict-auth load -------------------------------------------------------------------


def test_presigned_requests_verify_and_bill_distinct_keys(tmp_path: Path) -> None:
    path = tmp_path / "signed.txt"
    write_signed_requests(path, 8123, buyers=50, dims=10, count=20)
    lines = path.read_text().splitlines()
    assert len(lines) == 20
    keys = set()
    verifier = SigV4Verifier()
    for line in lines:
        date, authorization, body = line.split("\t")
        request = RawRequest(
            "POST",
            "/",
            b"",
            [
                (b"host", b"127.0.0.1:8123"),
                (b"content-type", b"application/x-amz-json-1.1"),
                (b"x-amz-target", b"AWSMPMeteringService.BatchMeterUsage"),
                (b"x-amz-date", date.encode()),
                (b"authorization", authorization.encode()),
            ],
            body.encode(),
            b"/",
        )
        assert verifier.verify(request, {BENCH_ACCESS_KEY: BENCH_SECRET}.get).access_key_id == (
            BENCH_ACCESS_KEY
        )
        records = json.loads(body)["UsageRecords"]
        assert len(records) == 25
        keys |= {(r["Timestamp"] // 3600, r["CustomerIdentifier"], r["Dimension"]) for r in records}
    assert len(keys) == 20 * 25


# --- end to end ----------------------------------------------------------------------------

NO_WRK = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (apt-get install wrk; .ci/run installs it)",
)


class ServeWith(SQLiteContender):
    """sqlite-full with more ``serve`` options."""

    def __init__(self, ledger: Path, work: Path, *options: str) -> None:
        super().__init__("sqlite-full", "full", ledger, work)
        self.options = options

    def prepare(self, port: int) -> list[str]:
        return [*super().prepare(port), *self.options]


@pytest.fixture(scope="module")
def bench_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template_ledger(tmp_path_factory.mktemp("cache"), 50)


def test_hot_path_reports_cpu_per_request_of_both_paths(
    bench_template: Path, tmp_path: Path
) -> None:
    for lanes, name in ((True, "lane"), (False, "general path")):
        ledger = tmp_path / f"{name}.db"
        copy_ledger(bench_template, ledger)
        line = hot_path.measure(ledger, lanes, requests=50, concurrency=8, buyers=50)
        assert re.fullmatch(
            rf"{name}: event loop [\d,]+ µs, writer [\d,]+ µs of CPU per request; "
            r"[\d,]+ requests/s in process",
            line,
        ), line


@pytest.mark.e2e
class _Recorder(BaseHTTPRequestHandler):
    """Answers every POST 200 and keeps its body (for wrk's load scripts)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return None


@NO_WRK
def test_the_batch_load_counts_its_timestamps_back_from_bench_now() -> None:
    """Every timestamp is BENCH_NOW - 60 - k hours, whatever the wall clock does during the
    run, so no key repeats even across minute 1 of an hour (a smoke run in CI once billed 800
    requests' records twice when its timestamps were read per request)."""
    _Recorder.bodies = []
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    now = 1_800_003_630  # 00:00:30 past an hour: now - 60 lies in the hour before
    try:
        completed = subprocess.run(
            [
                *("wrk", "-t1", "-c1", "-d1s", "-s", str(ROOT / "bench" / "batch_load.lua")),
                f"http://127.0.0.1:{recorder.server_address[1]}/",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": "/usr/bin:/bin", "BENCH_BUYERS": "250", "BENCH_NOW": str(now)},
        )
    finally:
        recorder.shutdown()
        recorder.server_close()
    assert completed.returncode == 0, completed.stderr
    # 250 buyers: 10 requests per hour and dimension, a new hour every 100, 500 keys in all
    bodies = _Recorder.bodies[: key_space(250)]
    assert len(bodies) > 100  # two hours at least
    records = [r for body in bodies for r in json.loads(body)["UsageRecords"]]
    allowed = {now - 60 - hours * 3600 for hours in range(5)}
    assert {r["Timestamp"] for r in records} <= allowed
    keys = [(r["CustomerIdentifier"], r["Dimension"], r["Timestamp"] // 3600) for r in records]
    assert len(set(keys)) == len(keys)


def test_a_server_that_does_not_start_is_a_failed_run(bench_template: Path, tmp_path: Path) -> None:
    contender = ServeWith(bench_template, tmp_path, "--quota", "sometimes")
    result = measure(contender, 8, 1, 50, tmp_path)
    assert result.failed
    assert result.wrk is None
    assert result.error is not None
    assert result.error.startswith("the server exited with status 2 at start\n")
    assert "Invalid value for '--quota'" in result.error  # the server's output, for the reader
    assert list(tmp_path.glob("*.db")) == []  # the run's ledger copy is gone


@pytest.mark.e2e
@NO_WRK
def test_throttled_answers_fail_the_run(bench_template: Path, tmp_path: Path) -> None:
    contender = ServeWith(bench_template, tmp_path, "--quota", "aws")  # 10 batches/s an account
    result = measure(contender, 8, 1, 50, tmp_path)
    assert result.error is None
    assert result.wrk is not None
    assert result.wrk.non_2xx > 0
    assert result.failed
    assert format_table([result]).splitlines()[2].startswith("| sqlite-full (errors) | 8 | ")


@pytest.mark.e2e
@NO_WRK
def test_smoke_run_measures_every_contender(tmp_path: Path) -> None:
    started = time.monotonic()
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "bench.run", "--smoke", "--cache-dir", str(tmp_path)),
            *("--json", str(tmp_path / "smoke.json")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    for contender in (
        "moto",
        "moto-fair",
        "sqlite-full",
        "sqlite-normal",
        "sqlite-strict",
        "sqlite-meter-usage",
    ):
        assert f"\n| {contender} | 8 | " in out
    if postgres_available():
        assert "\n| postgresql | 8 | " in out
    else:
        assert "postgresql: skipped: no /usr/lib/postgresql/*/bin/initdb" in out
    assert "\n| 0 | 8 | " in out
    assert "\n| 10,000 | 8 | " in out
    assert "sqlite-strict: 4,000 requests signed in " in out  # 1 s, 4,000 a second
    assert "FAILED" not in out
    assert elapsed < 150  # 8 runs of 1 s: each contender once, and the 10,000-row ledger
