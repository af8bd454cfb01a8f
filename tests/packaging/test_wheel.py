"""The wheel and the sdist as a user gets them: built with ``python -m build``, passed by
``twine check``, the wheel installed with its dependencies into a fresh venv (no checkout on
the path), and ``marketmeter serve`` from there answering boto3 on the bundled demo catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import marketmeter
from tests.ports import free_port

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "marketmeter"
VERSION = marketmeter.__version__


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, check=False
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``'s wheel and sdist of this checkout, passed by ``twine check``."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    _run(sys.executable, "-m", "twine", "check", "--strict", *sorted(out.iterdir()))
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install marketmeter-*.whl`` (dependencies included), by this
    checkout's pip (``--python``): the venv is made without a pip of its own (ensurepip's
    install of one cost about 2 s of CPU)."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", where)
    python = where / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", *dist.glob("*.whl"))
    return where


def _package_files() -> set[str]:
    """Every file of ``src/marketmeter`` as the wheel names it (bytecode aside)."""
    return {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_build_makes_one_wheel_and_one_sdist_named_after_the_version(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [
        f"marketmeter-{VERSION}-py3-none-any.whl",
        f"marketmeter-{VERSION}.tar.gz",
    ]


UI_TEMPLATES = (
    "_deliveries.html",
    "_form.html",
    "_overview_live.html",
    "base.html",
    "bench.html",
    "catalog.html",
    "journal.html",
    "journal_entry.html",
    "login.html",
    "notifications.html",
    "overview.html",
    "refused.html",
    "usage.html",
)


def test_the_wheel_and_sdist_hold_every_file_of_the_package(dist: Path) -> None:
    with zipfile.ZipFile(dist / f"marketmeter-{VERSION}-py3-none-any.whl") as wheel:
        in_wheel = set(wheel.namelist())
    with tarfile.open(dist / f"marketmeter-{VERSION}.tar.gz") as sdist:
        names = sdist.getnames()
    in_sdist = {name.removeprefix(f"marketmeter-{VERSION}/src/") for name in names}
    expected = _package_files()
    migrations = [
        f"{n}.{backend}.sql"
        for n in (
            "0001_initial",
            "0002_registration",
            "0003_snapshots",
            "0004_lifecycle",
            "0005_delivery_targets",
            "0006_entitlements",
            "0007_offers",
            "0008_catalog_digest",
        )
        for backend in ("postgresql", "sqlite")
    ]
    assert {name for name in expected if not name.endswith(".py")} == {
        "marketmeter/catalog/demo.yaml",
        "marketmeter/py.typed",
        *(f"marketmeter/store/migrations/{name}" for name in migrations),
        *(f"marketmeter/ui/static/{name}" for name in ("dashboard.css", "dashboard.js")),
        *(f"marketmeter/ui/templates/{name}" for name in UI_TEMPLATES),
    }
    assert expected - in_wheel == set()
    assert expected - in_sdist == set()
    assert "CHANGELOG.md" in {name.removeprefix(f"marketmeter-{VERSION}/") for name in names}


def test_the_installed_wheel_serves_boto3_from_a_fresh_venv(venv: Path, tmp_path: Path) -> None:
    marketmeter_bin = venv / "bin" / "marketmeter"
    assert _run(marketmeter_bin, "--version") == f"marketmeter, version {VERSION}\n"
    location = _run(
        venv / "bin" / "python", "-c", "import marketmeter; print(marketmeter.__file__)"
    )
    assert location.startswith(str(venv))

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [marketmeter_bin, "serve", "--port", str(port)],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("MARKETMETER_")},
        )
    try:
        url = f"http://127.0.0.1:{port}"
        health = json.loads(_wait_healthy(url, server, log))
        assert health == {"status": "ok", "version": VERSION, "catalogVersion": 1}
        client = boto3.client(
            "meteringmarketplace",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIAMMDEMOSELLER0001",
            aws_secret_access_key="demo-seller-secret-do-not-use-in-production",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        answer = client.batch_meter_usage(
            ProductCode="demo-saas-legacy",
            UsageRecords=[
                {
                    "Timestamp": int(time.time()) - 60,
                    "CustomerIdentifier": "alice-cust-0001",
                    "Dimension": "users",
                    "Quantity": 3,
                }
            ],
        )
        assert [(r["Status"], r["UsageRecord"]["Quantity"]) for r in answer["Results"]] == [
            ("Success", 3)
        ]
        assert answer["UnprocessedRecords"] == []
    finally:
        server.terminate()
        assert server.wait(timeout=15) == 0
    assert (tmp_path / "marketmeter.db").is_file()
    assert "catalog: bundled demo catalog" in log.read_text()


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> bytes:
    """The body of ``GET /_marketmeter/health`` once it answers 200."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"marketmeter exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_marketmeter/health", timeout=1) as answer:
                if answer.status == 200:
                    return bytes(answer.read())
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"marketmeter did not become healthy:\n{log.read_text()}")


def test_the_version_comes_from_one_place() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert '\nversion = "' not in pyproject
    assert f"## {VERSION} " in (ROOT / "CHANGELOG.md").read_text()
