"""schemathesis over the admin API's OpenAPI document, against a real ``marketmeter serve``
process (``MarketmeterServer`` in subprocess mode, ``tests/data/catalog.yaml``, an admin
token), on SQLite and, in the suite's PostgreSQL pass, on PostgreSQL (``ledger_url``).

schemathesis's own runner (``python -m schemathesis.cli run``) drives every documented
operation through its phases (examples, coverage, fuzzing, stateful: links between the
operations, e.g. a seller created then read, changed and deleted), at most ``EXAMPLES``
generated cases per operation (10: the examples and coverage phases, which make most of the
~4,500 cases, do not depend on it; 25 cost a third more time and found nothing more) and a
fixed seed, so a run is repeatable and takes seconds. The checks: no 5xx, only documented
status codes, content types and headers, bodies that conform to the response schemas,
schema-violating requests refused with a 4xx, a true ``Allow`` on 405s, deleted resources gone,
and no operation answering without the admin token (``ignored_auth``). Not run:
``unsupported_method`` (``GET /keys/rotate`` is ``GET /keys/{version}`` with version
``rotate``, a 404 that test_admin_api.py pins), ``positive_data_acceptance`` (a schema-valid
body may still name a seller that does not exist: a 400 by design) and
``missing_required_header`` (no operation has one). The test bench's routes are in the document
and fuzzed like the rest (a reset may empty the ledger under the run; what follows then answers
404s, which the checks accept as documented).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from marketmeter.testing.servers import MarketmeterServer
from tests.conftest import CATALOG
from tests.e2e.server_process import ledger_url

EXAMPLES = 10
SEED = 20261123
TOKEN = "schemathesis-admin-token"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
    )
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarketmeterServer]:
    options = ("--admin-token", TOKEN)
    db = ledger_url(tmp_path_factory.mktemp("schemathesis") / "ledger.db")
    with MarketmeterServer(
        catalog=CATALOG, db=db, mode="subprocess", serve_options=options
    ) as running:
        yield running


def documented_operations(endpoint: str) -> int:
    document = httpx.get(f"{endpoint}/_marketmeter/openapi.json").json()
    return sum(len(operations) for operations in document["paths"].values())


def test_schemathesis_finds_nothing(server: MarketmeterServer, tmp_path: Path) -> None:
    operations = documented_operations(server.endpoint)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.endpoint}/_marketmeter/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--generation-database",
            "none",
            "--no-color",
            "--output-truncate",
            "false",
        ],
        cwd=tmp_path,  # its report directory, if any, goes there
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    # every operation but the document's own (schemathesis leaves the schema's URL out)
    assert f"Tested: {operations - 1}\n" in output, output
    cases = re.search(r"Test cases:\n\s+(\d+) generated, (\d+) passed", output)
    assert cases is not None, output
    assert cases[1] == cases[2]
    assert int(cases[1]) >= 10 * operations  # every operation was exercised, not skipped
