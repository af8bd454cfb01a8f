"""Secrets at rest and in argv: every SQLite ledger marketmeter creates (``serve``, a command's
``--db``, ``db copy --to``) is readable by its owner only, its ``-wal`` and ``-shm`` too,
whatever the umask; the admin token can come from a file (or the environment), never
showing in the process list."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from marketmeter.admin.admin_token import MISSING_TOKEN
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import CATALOG, ServerProcess, on_postgres, sqlite_only

pytestmark = pytest.mark.e2e

TOKEN = "file-held-admin-token-0123456789"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would make new files world-readable (0644) and group-writable."""
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


@sqlite_only("the file mode of a SQLite ledger")
def test_serve_creates_its_ledger_0600(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "ledger.db"
    server = ServerProcess(db, CATALOG).start()
    try:
        httpx.post(f"{server.url}/_marketmeter/sellers/111122223333/keys").raise_for_status()
        files = {name: mode(tmp_path / name) for name in ("ledger.db", "ledger.db-wal")}
        files["ledger.db-shm"] = mode(tmp_path / "ledger.db-shm")
    finally:
        server.stop()
    assert files == {"ledger.db": 0o600, "ledger.db-wal": 0o600, "ledger.db-shm": 0o600}


@sqlite_only("the file mode of a SQLite ledger")
def test_catalog_apply_and_db_copy_create_their_ledgers_0600(
    tmp_path: Path, open_umask: None
) -> None:
    applied = mm("catalog", "apply", str(CATALOG), "--db", "sqlite:///applied.db", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert mode(tmp_path / "applied.db") == 0o600
    copied = mm("db", "copy", "--from", "applied.db", "--to", "copy.db", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert mode(tmp_path / "copy.db") == 0o600


@sqlite_only("the file mode of a SQLite ledger")
def test_an_existing_ledger_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch()
    db.chmod(0o640)  # the owner's choice, e.g. a group of operators
    applied = mm("catalog", "apply", str(CATALOG), "--db", str(db), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert mode(db) == 0o640


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def test_serve_reads_the_admin_token_from_a_file(tmp_path: Path, token_file: Path) -> None:
    server = ServerProcess(tmp_path / "ledger.db", CATALOG, "--admin-token-file", str(token_file))
    server.start()
    try:
        assert server.process is not None
        argv = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert TOKEN.encode() not in argv
        refused = httpx.get(f"{server.url}/_marketmeter/sellers")
        assert (refused.status_code, refused.json()) == (
            401,
            {"error": MISSING_TOKEN, "field": "Authorization"},
        )
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{server.url}/_marketmeter/sellers", headers=bearer).status_code == 200
        # the CLI reads it from a file too (or from MARKETMETER_ADMIN_TOKEN_FILE)
        by_option = mm(
            *("sellers", "list", "--endpoint", server.url, "--admin-token-file", str(token_file)),
            cwd=tmp_path,
        )
        assert by_option.returncode == 0, by_option.stderr
        env = {"MARKETMETER_ADMIN_TOKEN_FILE": str(token_file)}
        by_env = mm("sellers", "list", "--endpoint", server.url, cwd=tmp_path, env=env)
        assert (by_env.returncode, by_env.stdout) == (0, by_option.stdout)
        without = mm("sellers", "list", "--endpoint", server.url, cwd=tmp_path)
        assert (without.returncode, without.stderr.splitlines()[-1]) == (
            1,
            f"Error: the server at {server.url} requires its admin token: set "
            "MARKETMETER_ADMIN_TOKEN or give --admin-token-file FILE",
        )
    finally:
        server.stop()


def test_a_missing_or_empty_token_file_is_one_clear_line(tmp_path: Path) -> None:
    db = "postgresql://unused" if on_postgres() else str(tmp_path / "never.db")
    missing = mm("serve", "--db", db, "--admin-token-file", "nope", cwd=tmp_path)
    assert (missing.returncode, missing.stderr.splitlines()[-1]) == (
        2,
        "Error: Invalid value for '--admin-token-file': cannot read nope: "
        "No such file or directory (see 'marketmeter serve -h')",
    )
    (tmp_path / "empty").write_text("\n  \n")
    empty = mm("serve", "--db", db, "--admin-token-file", "empty", cwd=tmp_path)
    assert (empty.returncode, empty.stderr.splitlines()[-1]) == (
        2,
        "Error: Invalid value for '--admin-token-file': empty holds no token (see 'marketmeter "
        "serve -h')",
    )
    both = mm(
        *("serve", "--db", db, "--admin-token", "x", "--admin-token-file", "empty"), cwd=tmp_path
    )
    assert (both.returncode, both.stderr.splitlines()[-1]) == (
        2,
        "Error: give --admin-token or --admin-token-file, not both (see 'marketmeter serve -h')",
    )
    assert not (tmp_path / "never.db").exists()


def test_serve_help_says_admin_token_is_visible_in_the_process_list(tmp_path: Path) -> None:
    shown = mm("serve", "--help", cwd=tmp_path)
    assert shown.returncode == 0
    assert "visible in the process list" in " ".join(shown.stdout.split())
