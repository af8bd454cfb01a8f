"""A marketmeter server for a seller's tests, on a free port of 127.0.0.1.

``MarketmeterServer(catalog, db, mode)`` starts one and stops it:

- ``inprocess`` (default): the app served by uvicorn on a thread of the test's process, on
  the asyncio event loop (so it does not change the process's event loop policy). Starts in
  well under a second.
- ``subprocess``: ``python -m marketmeter serve`` in its own process, exactly as in production;
  the URL is read from its banner.

Without ``db`` the ledger is a SQLite file in a temporary directory, removed at ``stop``.
``dry_run_answer`` is ``serve --dry-run-answer`` (how a MeterUsage DryRun that would succeed is
answered; default ``success``, as AWS).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

import uvicorn

from marketmeter.config import DryRunAnswer, Settings
from marketmeter.server import build_service, uvicorn_config
from marketmeter.testing.admin_client import MarketmeterAdmin

__all__ = ["MarketmeterServer", "Mode"]

Mode = Literal["inprocess", "subprocess"]

_BANNER_URL = re.compile(rb"Metering Service at (http://[0-9.]+:[0-9]+)")


class MarketmeterServer:
    """One marketmeter server; ``start()`` returns it with ``endpoint`` and ``admin`` set."""

    def __init__(
        self,
        catalog: str | Path | None = None,
        db: str | None = None,
        mode: Mode = "inprocess",
        serve_options: tuple[str, ...] = (),
        settings: Settings | None = None,
        dry_run_answer: str = DryRunAnswer.SUCCESS.value,
    ) -> None:
        if mode not in ("inprocess", "subprocess"):
            raise ValueError(f"mode must be inprocess or subprocess, not {mode!r}")
        self.dry_run_answer = DryRunAnswer(dry_run_answer)
        self.catalog = Path(catalog) if catalog is not None else None
        self.mode = mode
        self.serve_options = serve_options
        self._settings = settings
        self._workdir: str | None = None
        if db is None:
            self._workdir = tempfile.mkdtemp(prefix="marketmeter-")
            db = str(Path(self._workdir) / "ledger.db")
        self.db = db
        self.endpoint = ""
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._admin: MarketmeterAdmin | None = None

    @property
    def admin(self) -> MarketmeterAdmin:
        if self._admin is None:
            raise RuntimeError("the server is not started")
        return self._admin

    def start(self, timeout: float = 30.0) -> MarketmeterServer:
        if self.mode == "inprocess":
            self._start_in_process(timeout)
        else:
            self._start_subprocess(timeout)
        token = self._settings.admin_token if self._settings is not None else None
        self._admin = MarketmeterAdmin(self.endpoint, admin_token=token)
        return self

    def _start_in_process(self, timeout: float) -> None:
        if self.serve_options:
            raise ValueError("serve_options apply to subprocess mode; pass settings instead")
        settings = self._settings or Settings(
            port=0, db=self.db, catalog=self.catalog, dry_run_answer=self.dry_run_answer
        )
        app, _, _ = build_service(settings)
        server = uvicorn.Server(uvicorn_config(app, settings, "127.0.0.1", 0, loop="asyncio"))
        self._uvicorn = server
        self._thread = threading.Thread(target=server.run, name="marketmeter", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("marketmeter did not start in-process")
            time.sleep(0.01)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self.endpoint = f"http://{host}:{port}"

    def _start_subprocess(self, timeout: float) -> None:
        args = [sys.executable, "-m", "marketmeter", "serve", "--port", "0", "--db", self.db]
        if self.catalog is not None:
            args += ["--catalog", str(self.catalog)]
        args += ["--dry-run-answer", self.dry_run_answer.value]
        if "--workers" not in self.serve_options:
            args += ["--workers", "1"]  # one process starts fastest: what a test needs
        args += self.serve_options
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        output = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                break
            output += line
            found = _BANNER_URL.search(line)
            if found:
                self.endpoint = found.group(1).decode()
                self._drain = threading.Thread(
                    target=_drain, args=(self._process.stdout,), daemon=True
                )
                self._drain.start()
                return
        self.stop()
        raise RuntimeError(f"marketmeter did not start:\n{output.decode(errors='replace')}")

    def stop(self) -> None:
        """Stop the server (in-flight requests finish) and remove its temporary ledger."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=30)
            self._uvicorn = None
            self._thread = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._drain is not None:
                self._drain.join(timeout=5)
                self._drain = None
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> MarketmeterServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _drain(stream: Any) -> None:
    """Keep reading the subprocess's output so it never blocks on a full pipe."""
    for _ in iter(stream.readline, b""):
        pass
