"""Slow and idle clients against a real ``marketmeter serve`` (docs/reliability.md, "Limits").

``python -m reliability.slow_clients [--connections 900] [--calls 300] [--backend sqlite]``

Starts ``serve`` with its default limits (``config.ConnectionLimits``) and measures boto3
BatchMeterUsage calls, spread over the header timeout, twice: alone, then while
``--connections`` hostile connections are open, a third of each kind:

- **slow headers:** a request line, then a header field every second, never ending the head;
- **slow body:** a whole head, then a body byte every second, never ending the body;
- **idle:** connected, sending nothing.

The trickle stops short of each deadline, so that no send races the server's cut. Then every
hostile connection is watched until the server closes it. PASS when every call was answered,
every slow-headers connection got 408 by the header timeout, every slow-body one 408 by the
request timeout and every idle one was closed by the idle timeout (each with 1.5 s of slack),
and the request journal holds the boto3 calls and nothing else (no slow body reached the
service). Prints latencies (median, p99, max) alone and under
the attack, and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import make_client

from marketmeter.config import ConnectionLimits
from marketmeter.testing.admin_client import MarketmeterAdmin
from reliability.served import BACKENDS, served

__all__ = ["AttackReport", "main", "run_attack"]

KINDS = ("slow headers", "slow body", "idle")
SLACK = 1.5
_BODY = b'{"ProductCode":"prod-legacy","UsageRecords":[]}'
_HEAD = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSMPMeteringService.BatchMeterUsage\r\n"
)


@dataclass
class AttackReport:
    """What one run measured; ``problems`` empty means PASS."""

    connections: int
    calls: int
    alone: list[float] = field(default_factory=list)
    attacked: list[float] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    closed_after: dict[str, float] = field(default_factory=dict)  # kind → latest close, s
    peak_rss_mib: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        def summary(latencies: list[float]) -> str:
            ms = sorted(x * 1000 for x in latencies)
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            return f"median {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"

        lines = [
            f"calls alone:        {len(self.alone)}; {summary(self.alone)}",
            f"calls under attack: {len(self.attacked)}; {summary(self.attacked)} "
            f"({self.connections} hostile connections)",
        ]
        for (kind, outcome), count in sorted(self.outcomes.items()):
            lines.append(f"  {kind}: {count} × {outcome}")
        for kind, seconds in self.closed_after.items():
            lines.append(f"  {kind}: last one closed {seconds:.2f} s after it connected")
        lines.append(f"server peak RSS: {self.peak_rss_mib:.0f} MiB")
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        lines.append("PASS" if self.passed else "FAIL")
        return lines


def _timed_calls(client: Any, calls: int, now: int, span: float) -> list[float]:
    """``calls`` BatchMeterUsage calls spread over ``span`` seconds; their latencies."""
    latencies = []
    start = time.monotonic()
    for n in range(calls):
        time.sleep(max(0.0, start + span * n / calls - time.monotonic()))
        record = {
            "Timestamp": now - (n % 5) * 3600,
            "CustomerIdentifier": ("cust-alice", "cust-bob")[n % 2],
            "Dimension": "users",
            "Quantity": 1,
        }
        started = time.monotonic()
        response = client.batch_meter_usage(ProductCode="prod-legacy", UsageRecords=[record])
        latencies.append(time.monotonic() - started)
        if response["Results"][0]["Status"] not in ("Success", "DuplicateRecord"):
            raise RuntimeError(f"unexpected answer: {response['Results']}")
    return latencies


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_attack(
    url: str,
    port: int,
    pid: int,
    connections: int,
    calls: int,
    limits: ConnectionLimits,
    interval: float = 1.0,
) -> AttackReport:
    """Measure ``calls`` alone, then under ``connections`` hostile ones, then watch each
    hostile connection until the server closes it."""
    report = AttackReport(connections, calls)
    now = int(time.time()) - 60
    client = make_client(url, retries={"total_max_attempts": 1}, max_pool_connections=1)
    span = limits.header_timeout - 2 * interval  # while every kind of attack is under way
    report.alone = _timed_calls(client, calls, now, span)

    sockets: list[tuple[str, socket.socket, float]] = []
    for n in range(connections):
        kind = KINDS[n % len(KINDS)]
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if kind == "slow headers":
            sock.sendall(_HEAD)
        elif kind == "slow body":
            sock.sendall(_HEAD + b"Content-Length: %d\r\n\r\n" % len(_BODY) + _BODY[:1])
        sockets.append((kind, sock, time.monotonic()))
    stop = threading.Event()

    def trickle() -> None:
        n = 0
        while not stop.wait(interval):
            n += 1
            for kind, sock, opened in sockets:
                age = time.monotonic() - opened
                try:
                    if kind == "slow headers" and age < limits.header_timeout - 2 * interval:
                        sock.sendall(b"X-Slow-%d: v\r\n" % n)
                    elif kind == "slow body" and age < limits.request_timeout - 2 * interval:
                        sock.sendall(_BODY[n % len(_BODY) : n % len(_BODY) + 1])
                except OSError as error:  # counted by the watcher, which sees the socket end
                    report.problems.append(f"a {kind} send failed before its deadline: {error}")

    trickler = threading.Thread(target=trickle, daemon=True)
    watcher = threading.Thread(target=_watch_until_closed, args=(sockets, limits, report))
    trickler.start()
    watcher.start()
    try:
        report.attacked = _timed_calls(client, calls, now, span)
    finally:
        watcher.join()
        report.peak_rss_mib = _peak_rss_mib(pid)
        stop.set()
        trickler.join()
    admin = MarketmeterAdmin(url)
    try:
        served = admin.journal.stats()["lastId"]
    finally:
        admin.close()
    if served != 2 * calls:
        report.problems.append(f"the journal holds {served} calls, not the {2 * calls} made")
    return report


def _watch_until_closed(
    sockets: list[tuple[str, socket.socket, float]], limits: ConnectionLimits, report: AttackReport
) -> None:
    """Read every hostile connection until the server closes it; tally how each ended, when,
    and which ended otherwise or later than their deadline allows."""
    bound = {
        "slow headers": limits.header_timeout,
        "slow body": limits.request_timeout,
        "idle": limits.idle_timeout,
    }
    expected = {
        "slow headers": "HTTP/1.1 408 Request Timeout",
        "slow body": "HTTP/1.1 408 Request Timeout",
        "idle": "closed",
    }
    late: Counter[str] = Counter()
    selector = selectors.DefaultSelector()
    received: dict[int, bytes] = {}
    for kind, sock, opened in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, (kind, opened))
        received[sock.fileno()] = b""
    deadline = time.monotonic() + limits.request_timeout + 10
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            sock = ready
            kind, opened = key.data
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk, outcome = b"", "reset"
            else:
                outcome = ""
            if chunk:
                received[sock.fileno()] += chunk
                continue
            after = time.monotonic() - opened
            data = received.pop(sock.fileno())
            outcome = outcome or (data.split(b"\r\n", 1)[0].decode() if data else "closed")
            report.outcomes[(kind, outcome)] += 1
            report.closed_after[kind] = max(report.closed_after.get(kind, 0.0), after)
            if after > bound[kind] + SLACK:
                late[kind] += 1
            selector.unregister(sock)
            sock.close()
    if selector.get_map():
        report.problems.append(f"{len(selector.get_map())} hostile connections never closed")
    for kind, count in late.items():
        report.problems.append(
            f"{count} {kind} connection(s) closed more than {SLACK} s after the "
            f"{bound[kind]} s deadline (latest {report.closed_after[kind]:.1f} s)"
        )
    for (kind, outcome), count in report.outcomes.items():
        if outcome != expected[kind]:
            report.problems.append(f"{count} {kind} connection(s) ended with {outcome!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.slow_clients", description=__doc__)
    parser.add_argument("--connections", type=int, default=900)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    options = parser.parse_args(argv)
    with served(options.backend, "marketmeter-slow-") as server:
        assert server.process is not None
        print(
            f"{options.connections} hostile connections against {server.url} "
            f"({options.backend}, default limits)",
            flush=True,
        )
        report = run_attack(
            server.url,
            server.port,
            server.process.pid,
            options.connections,
            options.calls,
            ConnectionLimits(),
        )
    print("\n".join(report.lines()))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
