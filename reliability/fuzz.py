"""Malformed input over raw HTTP against a real ``marketmeter serve`` (docs/reliability.md,
"Malformed input gets AWS's error, never a 500").

    .venv/bin/python -m reliability.fuzz --examples 100000 [--seed S] [--backend sqlite|postgresql]

Starts ``marketmeter serve`` (open auth, tests/data/catalog.yaml) on a fresh ledger, bills a
fixed set of records, then sends ``--examples`` requests drawn by hypothesis from
``reliability.fuzz_cases`` over raw sockets (one connection each), plus a handful of slow
bodies. Every answer is checked (``reply_violations``): status below 500, no traceback or
Python file path, a JSON body whose ``__type`` is a known error name equal to
``x-amzn-ErrorType`` (or a 2xx with the operation's result members). Requests whose bytes are
not valid HTTP may be answered by uvicorn's own parser (400, ``Invalid HTTP request
received.``): counted apart. After every batch the server must answer its health check, and at
the end the records billed before the fuzz must be exactly what ``GET /_marketmeter/usage``
shows for them. Prints the count per category and the verdict; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import select
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from marketmeter import errors
from marketmeter.servicemodel.spec import service_model, target_prefix
from reliability.fuzz_cases import (
    ADMIN_CATEGORIES,
    HTTP_LAYER_CATEGORIES,
    Probe,
    probes,
    slow_probe,
)
from reliability.served import BACKENDS, served

__all__ = [
    "KNOWN_ERROR_TYPES",
    "FuzzReport",
    "Reply",
    "bill_fixed_records",
    "billed_records",
    "catalog_problems",
    "exchange",
    "main",
    "parse_replies",
    "reply_violations",
    "run_fuzz",
]

KNOWN_ERROR_TYPES = frozenset(
    cls.code
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.AwsError) and cls is not errors.AwsError
)
UVICORN_BAD_REQUEST = b"Invalid HTTP request received."
_LEAK = re.compile(rb'Traceback|File "|site-packages|/[\w.-]*\.py\b')
_READ_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response read off the connection."""

    status: int
    headers: dict[str, str]
    body: bytes


def exchange(port: int, probe: Probe) -> list[Reply]:
    """Send ``probe`` on a new connection, read until the server closes it, return the
    responses. Stops sending as soon as the server has answered (an early 413)."""
    with socket.create_connection(("127.0.0.1", port), timeout=_READ_TIMEOUT) as conn:
        received = bytearray()
        for index, piece in enumerate(probe.pieces):
            if index and probe.pause:
                time.sleep(probe.pause)
            if select.select([conn], [], [], 0)[0]:
                break  # answered already: the rest would be refused unread
            try:
                conn.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        if probe.half_close:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return parse_replies(bytes(received), head_request=probe.head_request)


def parse_replies(data: bytes, head_request: bool = False) -> list[Reply]:
    """The HTTP/1.1 responses in ``data`` (Content-Length framed, as uvicorn sends them)."""
    replies: list[Reply] = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError(f"truncated response head: {data[:200]!r}")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_request else int(headers.get("content-length", len(rest)))
        replies.append(Reply(int(status_line.split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return replies


def _result_members() -> dict[str, frozenset[str]]:
    model = service_model()
    return {
        name: frozenset(model.operation_model(name).output_shape.members)
        for name in model.operation_names
    }


_RESULT_MEMBERS = _result_members()


def reply_violations(probe: Probe, replies: list[Reply]) -> list[str]:
    """What is wrong with the answers to ``probe`` (empty: all invariants hold)."""
    problems: list[str] = []
    if not replies and not probe.reply_optional:
        problems.append("no response")
    for reply in replies:
        problems += [f"{reply.status}: {problem}" for problem in _reply_problems(probe, reply)]
    return problems


_ADMIN_LEAK = re.compile(rb"Traceback|site-packages")


def _admin_reply_problems(reply: Reply) -> list[str]:
    """The admin API's answers: below 500, JSON, an error as ``{"error", "field"}``; its
    messages may quote the input (a file name in a document), so only tracebacks count as
    leaks."""
    problems: list[str] = []
    if reply.status >= 500:
        problems.append("server error")
    leaked = _ADMIN_LEAK.search(reply.body)
    if leaked:
        problems.append(f"internals leaked: {leaked.group(0)!r}")
    try:
        document = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return [*problems, f"body is not JSON: {reply.body[:100]!r}"]
    if not isinstance(document, dict):
        return [*problems, "body is not a JSON object"]
    if reply.status >= 400:
        field = document.get("field")
        if set(document) != {"error", "field"} or not isinstance(document["error"], str):
            problems.append(f"not the admin error shape: {document!r:.200}")
        elif field is not None and not isinstance(field, str):
            problems.append(f"field is not a name: {field!r:.100}")
    return problems


def _reply_problems(probe: Probe, reply: Reply) -> list[str]:
    if probe.category in ADMIN_CATEGORIES:
        return _admin_reply_problems(reply)
    problems: list[str] = []
    if reply.status >= 500:
        problems.append("server error")
    if probe.expect_status is not None and reply.status != probe.expect_status:
        problems.append(f"expected status {probe.expect_status}")
    leaked = _LEAK.search(reply.body) or _LEAK.search(repr(reply.headers).encode())
    if leaked:
        problems.append(f"internals leaked: {leaked.group(0)!r}")
    if reply.headers.get("content-type", "").startswith("text/plain"):
        if probe.category not in HTTP_LAYER_CATEGORIES or reply.status != 400:
            problems.append("plain-text answer outside the HTTP-layer categories")
        elif reply.body != UVICORN_BAD_REQUEST:
            problems.append(f"unexpected plain-text body {reply.body[:100]!r}")
        return problems
    error_type = reply.headers.get("x-amzn-errortype")
    if probe.head_request:
        if error_type not in KNOWN_ERROR_TYPES:
            problems.append(f"HEAD answered with x-amzn-ErrorType {error_type!r}")
        return problems
    try:
        document = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return [*problems, f"body is not JSON: {reply.body[:100]!r}"]
    if not isinstance(document, dict):
        return [*problems, "body is not a JSON object"]
    if 200 <= reply.status < 300:
        members = _RESULT_MEMBERS.get(probe.operation or "")
        if members is None or error_type is not None or not set(document) <= members:
            problems.append(f"success that is not {probe.operation}'s result: {document!r:.200}")
        return problems
    wire_type = document.get("__type")
    if wire_type not in KNOWN_ERROR_TYPES:
        problems.append(f"unknown __type {wire_type!r}")
    if error_type != wire_type:
        problems.append(f"x-amzn-ErrorType {error_type!r} != __type {wire_type!r}")
    return problems


# --- the ledger before and after ---------------------------------------------------------------

FIXED_RECORDS = (
    ("cust-alice", "users", 3),
    ("cust-bob", "users", 5),
    ("cust-alice", "users", 7),
    ("cust-bob", "users", 11),
)


def bill_fixed_records(url: str, now: int) -> list[dict[str, Any]]:
    """Bill ``FIXED_RECORDS`` (prod-legacy; the last two an hour earlier) and return the ledger
    rows of them, as GET /_marketmeter/usage shows them."""
    records = [
        {
            "Timestamp": now - 3600 * (index // 2),
            "CustomerIdentifier": customer,
            "Dimension": dimension,
            "Quantity": quantity,
        }
        for index, (customer, dimension, quantity) in enumerate(FIXED_RECORDS)
    ]
    response = httpx.post(
        url,
        content=orjson.dumps({"ProductCode": "prod-legacy", "UsageRecords": records}),
        headers={
            "X-Amz-Target": f"{target_prefix()}.BatchMeterUsage",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    response.raise_for_status()
    statuses = [result["Status"] for result in response.json()["Results"]]
    if statuses != ["Success"] * len(records):
        raise RuntimeError(f"could not bill the fixed records: {response.text}")
    return billed_records(url)


def billed_records(url: str) -> list[dict[str, Any]]:
    """Every ledger row, oldest usage first (GET /_marketmeter/usage)."""
    response = httpx.get(f"{url}/_marketmeter/usage", params={"limit": 100000})
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["records"]
    return rows


def catalog_problems(url: str) -> list[str]:
    """What is inconsistent in the catalog the admin API lists: a key with two owners, an
    account both seller and buyer, a product without its seller, an agreement or token without
    its buyer or product, a CustomerIdentifier shared."""
    admin = f"{url}/_marketmeter"

    def listed(path: str, key: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{admin}/{path}", timeout=60)
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()[key]
        return rows

    sellers, buyers = listed("sellers", "sellers"), listed("buyers", "buyers")
    products = listed("products", "products")
    agreements = listed("agreements?limit=10000", "agreements")
    tokens = listed("tokens?limit=10000", "tokens")
    seller_ids = {s["account_id"] for s in sellers}
    buyer_ids = {b["account_id"] for b in buyers}
    codes = {p["product_code"] for p in products}
    keys = Counter(k["access_key_id"] for a in sellers + buyers for k in a["access_keys"])
    identifiers = Counter(b["customer_identifier"] for b in buyers if b["customer_identifier"])
    problems = [f"access key {k} has {n} owners" for k, n in keys.items() if n > 1]
    problems += [f"account {a} is a seller and a buyer" for a in seller_ids & buyer_ids]
    problems += [
        f"product {p['product_code']}: no seller {p['seller']}"
        for p in products
        if p["seller"] not in seller_ids
    ]
    problems += [
        f"agreement {a['licenseArn']}: no buyer or product"
        for a in agreements
        if a["buyerAccountId"] not in buyer_ids or a["productCode"] not in codes
    ]
    problems += [
        f"token of {t['customerAWSAccountId']} x {t['productCode']}: no buyer or product"
        for t in tokens
        if t["customerAWSAccountId"] not in buyer_ids or t["productCode"] not in codes
    ]
    problems += [f"CustomerIdentifier {i!r} shared" for i, n in identifiers.items() if n > 1]
    return problems


def ledger_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """How the rows billed before differ after: each must be there, identical, and alone in its
    (product, customer, dimension, hour) slot."""

    def slot(row: dict[str, Any]) -> tuple[Any, ...]:
        return row["productCode"], row["customerAWSAccountId"], row["dimension"], row["hour"]

    now_by_id = {row["meteringRecordId"]: row for row in after}
    slots = Counter(slot(row) for row in after)
    changes = []
    for row in before:
        if now_by_id.get(row["meteringRecordId"]) != row:
            changes.append(f"changed or gone: {row} -> {now_by_id.get(row['meteringRecordId'])}")
        if slots[slot(row)] != 1:
            changes.append(f"{slots[slot(row)]} rows in the slot of {row['meteringRecordId']}")
    return changes


# --- the run -----------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """What a run sent and found."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    http_layer: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    health_checks: int = 0
    billed_before: int = 0
    billed_after: int = 0
    catalog_problems: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def passed(self) -> bool:
        return not self.violations

    def lines(self) -> list[str]:
        rate = self.total / self.seconds if self.seconds else 0.0
        out = [f"{self.total} requests in {self.seconds:.1f} s ({rate:.0f}/s)"]
        for category, count in sorted(self.requests.items()):
            extra = ""
            if self.http_layer[category]:
                extra += f", {self.http_layer[category]} answered by uvicorn's parser"
            if self.unanswered[category]:
                extra += f", {self.unanswered[category]} unanswered (client half-closed)"
            out.append(f"  {category:<15} {count:>7}{extra}")
        out.append("statuses: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.statuses.items())))
        out.append(f"health checks: {self.health_checks}, all answered 200")
        out.append(
            f"ledger: {self.billed_before} rows billed before, unchanged after; "
            f"{self.billed_after} rows after"
        )
        out.append(
            "catalog: consistent"
            if not self.catalog_problems
            else f"catalog: {self.catalog_problems} inconsistencies"
        )
        out += [f"VIOLATION {violation}" for violation in self.violations[:20]]
        out.append("verdict: " + ("PASS" if self.passed else f"FAIL ({len(self.violations)})"))
        return out


class _Fuzzer:
    """Sends probes to one server, tallies them, and checks health every ``batch`` probes."""

    def __init__(self, url: str, port: int, batch: int, alive: Callable[[], bool]) -> None:
        self.url, self.port, self.batch, self.alive = url, port, batch, alive
        self.report = FuzzReport()

    def send(self, probe: Probe) -> None:
        try:
            replies = exchange(self.port, probe)
        except (OSError, ValueError) as failure:
            replies, problems = [], [f"exchange failed: {failure!r}"]
        else:
            problems = reply_violations(probe, replies)
        self.report.requests[probe.category] += 1
        for reply in replies:
            self.report.statuses[str(reply.status)] += 1
            if reply.headers.get("content-type", "").startswith("text/plain"):
                self.report.http_layer[probe.category] += 1
        if not replies:
            self.report.unanswered[probe.category] += 1
        if problems:
            self.report.violations.append(
                f"[{probe.category}] {'; '.join(problems)} <- {probe.wire[:300]!r}"
            )
        if self.report.total % self.batch == 0:
            self.check_health()

    def check_health(self) -> None:
        self.report.health_checks += 1
        try:
            response = httpx.get(f"{self.url}/_marketmeter/health", timeout=10)
            healthy = response.status_code == 200 and response.json()["status"] == "ok"
        except httpx.HTTPError:
            healthy = False
        if not healthy or not self.alive():
            self.report.violations.append(
                f"health check {self.report.health_checks} failed after {self.report.total}"
            )


def run_fuzz(
    url: str,
    examples: int,
    seed: int = 0,
    slow: int = 5,
    batch: int = 250,
    alive: Callable[[], bool] = lambda: True,
) -> FuzzReport:
    """Bill the fixed records, send ``examples`` hypothesis probes and ``slow`` slow bodies to
    the server at ``url``, then compare the ledger."""
    port = int(url.rsplit(":", 1)[1])
    now = int(time.time()) - 60
    fuzzer = _Fuzzer(url, port, batch, alive)
    started = time.monotonic()
    before = bill_fixed_records(url, now)
    with ThreadPoolExecutor(max_workers=max(slow, 1)) as pool:
        slow_runs = [pool.submit(exchange, port, slow_probe(i, now)) for i in range(slow)]

        @hypothesis_seed(seed)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(probes(now))
        def fuzz(probe: Probe) -> None:
            fuzzer.send(probe)

        fuzz()
        for index, future in enumerate(slow_runs):
            probe = slow_probe(index, now)
            fuzzer.report.requests[probe.category] += 1
            for problem in reply_violations(probe, future.result()):
                fuzzer.report.violations.append(f"[slow_body] {problem}")
    fuzzer.check_health()
    after = billed_records(url)
    fuzzer.report.violations += ledger_changes(before, after)
    inconsistent = catalog_problems(url)
    fuzzer.report.catalog_problems = len(inconsistent)
    fuzzer.report.violations += [f"catalog: {problem}" for problem in inconsistent]
    fuzzer.report.billed_before, fuzzer.report.billed_after = len(before), len(after)
    fuzzer.report.seconds = time.monotonic() - started
    return fuzzer.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.fuzz", description=__doc__)
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow", type=int, default=5, help="slow-body requests (default 5)")
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    options = parser.parse_args(argv)
    with served(options.backend, "marketmeter-fuzz-") as server:
        print(
            f"fuzzing {server.url} ({options.backend}), {options.examples} examples, "
            f"seed {options.seed}",
            flush=True,
        )
        report = run_fuzz(
            server.url,
            options.examples,
            options.seed,
            options.slow,
            alive=lambda: server.process is not None and server.process.poll() is None,
        )
    print("\n".join(report.lines()))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
