"""``marketmeter-client``: status, list and flush of a spool, help, and bad input as one line
and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from marketmeter.client import MeteringClient
from marketmeter.client.cli import main
from marketmeter.testing.pytest_plugin import TEST_ACCESS_KEY, TEST_REGION, Marketmeter
from tests.client.conftest import assert_billed_exactly_once

Make = Callable[..., MeteringClient]
SCRIPT = Path(sys.executable).parent / "marketmeter-client"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def test_help() -> None:
    found = run("-h")
    assert found.returncode == 0
    assert "status" in found.stdout
    assert "flush" in found.stdout
    assert "--spool" in run("flush", "-h").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status"], "error: Missing option '--spool'."),
        (["frobnicate"], "error: No such command 'frobnicate'."),
        (
            ["list", "--spool", "{tmp}/s.db", "--state", "gone"],
            "error: Invalid value for '--state'",
        ),
        (["status", "--spool", "{tmp}/none.db"], "error: no spool at {tmp}/none.db"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    MeteringClient(tmp_path / "s.db").close()
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert len(err.splitlines()) == 1
    assert err.startswith(message.format(tmp=tmp_path))


def wall_clock_hour(bench: Marketmeter) -> datetime:
    """The CLI runs on the machine's clock: the service goes back to it, and the test starts
    at least 30 s before the hour turns (waiting if need be)."""
    bench.clock.reset()
    now = datetime.now(UTC)
    left = 3600 - (now.minute * 60 + now.second)
    if left < 30:
        time.sleep(left + 1)
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def test_status_list_and_flush(bench: Marketmeter, make_meter: Make, tmp_path: Path) -> None:
    hour = wall_clock_hour(bench)
    meter = make_meter()
    events = [
        ("alice-cust-0001", "users", 3, hour - timedelta(minutes=20)),
        ("carol-cust-0003", "users", 1, hour - timedelta(minutes=20)),
        ("bob-cust-0002", "users", 2, hour),
    ]
    for event in events:
        meter.record(*event)
    spool = str(tmp_path / "spool.db")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY[0],
        "AWS_SECRET_ACCESS_KEY": TEST_ACCESS_KEY[1],
        "AWS_DEFAULT_REGION": TEST_REGION,
    }
    flushed = run("flush", "--spool", spool, "--endpoint-url", bench.endpoint, env=env)
    assert flushed.returncode == 0, flushed.stderr
    assert flushed.stdout == "batch: 1 call(s), 0 retried; failed 1  sent 1; pending 0\n"
    status = json.loads(run("status", "--spool", spool, "--json").stdout)
    assert (status["unaggregated"], status["counts"]["sent"], status["counts"]["failed"]) == (
        1,
        1,
        1,
    )
    failed = json.loads(run("list", "--spool", spool, "--state", "failed", "--json").stdout)
    assert [(r["customerIdentifier"], r["errorCode"]) for r in failed] == [
        ("carol-cust-0003", "CustomerNotSubscribed")
    ]
    text = run("list", "--spool", spool).stdout.splitlines()
    assert text[-1] == "2 record(s)"
    flushed = run(
        "flush", "--spool", spool, "--endpoint-url", bench.endpoint, "--include-open-hour", env=env
    )
    assert flushed.stdout == "batch: 1 call(s), 0 retried; sent 1; pending 0\n"
    assert run("status", "--spool", spool).stdout.startswith(
        "unaggregated events 0  pending 0  sent 2  duplicate 0  late 0  failed 1  expired 0"
    )
    assert_billed_exactly_once(bench, meter, events)
