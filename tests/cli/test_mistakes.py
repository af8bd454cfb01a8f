# ruff: noqa: E501  (the table: one case, its exact line, per entry)
"""Every mistake a clear line (issue 23): the ``marketmeter`` command driven through a table of
bad inputs, in-process with click's CliRunner. Each case asserts the exact line on stderr, the
exit code (2: the command line is wrong; 1: what it names cannot be used), that no traceback
escaped, and that nothing was created in the directory it ran in (or anywhere it named).

``{tmp}`` in an argument or the line is the case's own empty directory, where it runs. The
cases that need a server or a process boundary are end-to-end tests (tests/e2e/test_cli*.py,
tests/e2e/test_bench_cli.py); a port in use is checked here, in-process, since ``serve`` checks
the port before it opens anything."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketmeter.cli import main

DEAD = "http://127.0.0.1:9"  # the discard port: nothing of ours listens there
NO_LEDGER = (
    "no ledger there: check the path, run the command where `marketmeter serve` keeps its "
    "marketmeter.db, or give --endpoint URL"
)
NO_DIR = "the directory /nonexistent/dir does not exist: create it, or give another path"
UNREACHABLE = (
    f"cannot reach marketmeter at {DEAD} ([Errno 111] Connection refused): start it with "
    "`marketmeter serve`, or give --endpoint URL"
)
A_DIRECTORY = "is a directory: give a file in it, e.g. --db {tmp}/marketmeter.db"

# (arguments, exit code, the line after "Error: "); the file notdb.txt exists in {tmp}
CASES: list[tuple[str, int, str]] = [
    # a --db that cannot hold a ledger: refused before anything is opened
    ("serve --db /nonexistent/dir/x.db", 1, f"--db /nonexistent/dir/x.db: {NO_DIR}"),
    ("serve --db {tmp}", 1, "--db {tmp}: " + A_DIRECTORY),
    ("usage list --db /nonexistent/dir/x.db", 1, f"--db /nonexistent/dir/x.db: {NO_DIR}"),
    ("usage list --db {tmp}", 1, "--db {tmp}: " + A_DIRECTORY),
    (
        "catalog apply {tmp}/notdb.txt --db /nonexistent/dir/x.db",
        1,
        f"--db /nonexistent/dir/x.db: {NO_DIR}",
    ),
    ("catalog show --db {tmp}", 1, "--db {tmp}: " + A_DIRECTORY),
    ("db migrate --db {tmp}", 1, "--db {tmp}: " + A_DIRECTORY),
    (
        "db copy --from {tmp}/typo.db --to /nonexistent/dir/x.db",
        1,
        f"--to /nonexistent/dir/x.db: {NO_DIR}",
    ),
    ("db copy --from {tmp}/typo.db --to {tmp}/new.db", 1, f"--from {{tmp}}/typo.db: {NO_LEDGER}"),
    (
        "db copy --from {tmp}/a.db --to {tmp}/a.db",
        2,
        "Invalid value for '--to': is the ledger of --from: give another (see 'marketmeter db copy -h')",
    ),
    (
        "usage list --db {tmp}/notdb.txt",
        1,
        "--db {tmp}/notdb.txt: not a marketmeter ledger (file is not a database)",
    ),
    (
        "usage list --db mysql://x",
        1,
        "--db mysql://x: database scheme 'mysql' is not supported by this marketmeter (use a SQLite path, sqlite:///path or postgresql://...)",
    ),
    (
        "usage list --db sqlite://x",
        1,
        "--db sqlite://x: a SQLite URL is sqlite:///relative/path or sqlite:////abs/path",
    ),
    # a command that only reads creates no ledger where there is none
    ("usage list", 1, f"--db marketmeter.db: {NO_LEDGER}"),
    ("catalog show", 1, f"--db marketmeter.db: {NO_LEDGER}"),
    ("token list", 1, f"--db marketmeter.db: {NO_LEDGER}"),
    ("keys list", 1, f"--db marketmeter.db: {NO_LEDGER}"),
    ("db migrate --db {tmp}/typo.db", 1, f"--db {{tmp}}/typo.db: {NO_LEDGER}"),
    ("products list --db {tmp}/typo.db", 1, f"--db {{tmp}}/typo.db: {NO_LEDGER}"),
    ("agreements list --db {tmp}/typo.db", 1, f"--db {{tmp}}/typo.db: {NO_LEDGER}"),
    ("events --db {tmp}/typo.db", 1, f"--db {{tmp}}/typo.db: {NO_LEDGER}"),
    ("snapshot list --db {tmp}/typo.db", 1, f"--db {{tmp}}/typo.db: {NO_LEDGER}"),
    # a command that writes and then fails leaves no file behind
    (
        "catalog apply {tmp}/missing.yaml --db {tmp}/new.db",
        1,
        "{tmp}/missing.yaml: 1 problem(s), nothing applied:",
    ),
    (
        "catalog apply {tmp}/notdb.txt --db {tmp}/new.db",
        1,
        "{tmp}/notdb.txt: 1 problem(s), nothing applied:",
    ),
    # serve's own options
    (
        "serve --port 99999",
        2,
        "Invalid value for '--port' (env var: 'MARKETMETER_PORT'): 99999 is not in the range 0<=x<=65535 (see 'marketmeter serve -h')",
    ),
    (
        "serve --port -1",
        2,
        "Invalid value for '--port' (env var: 'MARKETMETER_PORT'): -1 is not in the range 0<=x<=65535 (see 'marketmeter serve -h')",
    ),
    (
        "serve --admin-token=",
        2,
        "Invalid value for '--admin-token': is empty, which would refuse every admin call: give a token, or leave it out (see 'marketmeter serve -h')",
    ),
    (
        "serve --window 7h",
        2,
        "Invalid value for '--window' (env var: 'MARKETMETER_WINDOW'): '7h' is not one of '6h', '24h-month-end' (see 'marketmeter serve -h')",
    ),
    (
        "serve --catalog-dir {tmp}/none",
        2,
        "Invalid value for '--catalog-dir' (env var: 'MARKETMETER_CATALOG_DIR'): Directory '{tmp}/none' does not exist (see 'marketmeter serve -h')",
    ),
    (
        "serve --admin-token t --admin-token-file {tmp}/notdb.txt",
        2,
        "give --admin-token or --admin-token-file, not both (see 'marketmeter serve -h')",
    ),
    # where a command acts
    (f"faults add --endpoint {DEAD} --operation MeterUsage", 1, UNREACHABLE),
    (f"faults --endpoint {DEAD} list", 1, UNREACHABLE),
    (f"clock advance 1h --endpoint {DEAD}", 1, UNREACHABLE),
    (f"clock advance -6h --endpoint {DEAD}", 1, UNREACHABLE),
    (
        "usage list --endpoint foo",
        2,
        "Invalid value for '--endpoint': 'foo' is not a URL: give one like http://127.0.0.1:8686 (see 'marketmeter usage list -h')",
    ),
    (
        f"usage list --endpoint {DEAD} --db x.db",
        2,
        "give --endpoint or --db, not both (see 'marketmeter usage list -h')",
    ),
    (
        "sellers list --admin-token a --admin-token-file {tmp}/notdb.txt",
        2,
        "give --admin-token or --admin-token-file, not both (see 'marketmeter sellers list -h')",
    ),
    (
        "sellers list --admin-token-file {tmp}/nofile",
        2,
        "Invalid value for '--admin-token-file': cannot read {tmp}/nofile: No such file or directory (see 'marketmeter sellers list -h')",
    ),
    # options and arguments
    ("usag", 2, "No such command 'usag' (see 'marketmeter -h')"),
    ("faults add --bogus", 2, "No such option '--bogus' (see 'marketmeter faults add -h')"),
    (
        "usage list --limit abc",
        2,
        "Invalid value for --limit: must be a whole number from 1 to 100000 (see 'marketmeter usage list -h')",
    ),
    (
        "usage list --from someday",
        2,
        "Invalid value for --from: 'someday' is neither ISO 8601 nor epoch seconds (see 'marketmeter usage list -h')",
    ),
    (
        "journal --limit abc",
        2,
        "Invalid value for '--limit': 'abc' is not a valid integer (see 'marketmeter journal -h')",
    ),
    (
        "keys show --version 0",
        2,
        "Invalid value for '--version': 0 is not in the range x>=1 (see 'marketmeter keys show -h')",
    ),
    ("token mint", 2, "Missing option '--product' (see 'marketmeter token mint -h')"),
    ("agreements show", 2, "Missing argument 'AGREEMENT' (see 'marketmeter agreements show -h')"),
    (
        "agreements subscribe --product p --buyer 123456789012 --quantity seats=x",
        2,
        "Invalid value for '--quantity': 'seats=x': use DIMENSION=QUANTITY (a whole number) "
        "(see 'marketmeter agreements subscribe -h')",
    ),
    ("snapshot save", 2, "Missing argument 'NAME' (see 'marketmeter snapshot save -h')"),
    ("clock advance", 2, "Missing argument 'DURATION' (see 'marketmeter clock advance --help')"),
    (
        "faults add --rule {{",
        2,
        "Invalid value for --rule: is not valid JSON (see 'marketmeter faults add -h')",
    ),
]


@pytest.fixture
def runner() -> CliRunner:
    # no MARKETMETER_* setting of the environment the suite runs in reaches the command
    names = ("DB", "ENDPOINT", "ADMIN_TOKEN", "ADMIN_TOKEN_FILE", "PORT", "HOST", "CATALOG")
    return CliRunner(env={f"MARKETMETER_{name}": None for name in names})


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _check(runner: CliRunner, where: Path, arguments: list[str], code: int, line: str) -> None:
    (where / "notdb.txt").write_text("not a database\n")
    before = files(where)

    result = runner.invoke(main, arguments, prog_name="marketmeter")

    assert not isinstance(result.exception, BaseException) or isinstance(
        result.exception, SystemExit
    ), result.exception  # no traceback: only a clean exit
    assert result.stdout == ""
    first = result.stderr.splitlines()[0] if result.stderr else ""
    if line.endswith("nothing applied:"):  # a catalog's problem list follows its first line
        assert first == f"Error: {line}"
    else:
        assert result.stderr == f"Error: {line}\n"
    assert result.exit_code == code
    assert files(where) == before  # nothing created, nothing left behind
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize(("command", "code", "line"), CASES, ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_and_changes_nothing(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    code: int,
    line: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = [part.replace("{tmp}", str(tmp_path)) for part in command.split(" ")]
    arguments = [part.replace("{{", "{") for part in arguments]
    _check(runner, tmp_path, arguments, code, line.replace("{tmp}", str(tmp_path)))


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_serve_on_a_port_in_use_refuses_before_it_opens_the_ledger(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    monkeypatch.chdir(tmp_path)
    _check(
        runner,
        tmp_path,
        ["serve", "--port", str(taken_port)],
        1,
        f"--port {taken_port}: 127.0.0.1:{taken_port} is in use: stop what listens there, or "
        "give another --port (0: any free port)",
    )
    assert not (tmp_path / "marketmeter.db").exists()  # no catalog applied, no ledger made
