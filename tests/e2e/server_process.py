"""A real ``marketmeter serve`` process on 127.0.0.1, for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CATALOG = Path(__file__).parent.parent / "data" / "catalog.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """Start, stop and restart ``marketmeter serve`` on one database file."""

    def __init__(self, db: Path, catalog: Path | None = CATALOG, *extra: str) -> None:
        self.db = db
        self.catalog = catalog
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    def start(self, timeout: float = 15.0) -> ServerProcess:
        args = [sys.executable, "-m", "marketmeter", "serve", "--port", str(self.port)]
        args += ["--db", str(self.db)]
        if self.catalog is not None:
            args += ["--catalog", str(self.catalog)]
        args += list(self.extra)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"marketmeter exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_marketmeter/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"marketmeter did not become healthy:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def output(self) -> str:
        return self.log.read_text()
