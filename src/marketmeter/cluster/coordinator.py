"""``marketmeter serve --workers N`` (N > 1): the coordinator process and its workers.

The coordinator is the process ``serve`` starts in. It binds the public address (one
listening socket per worker, ``SO_REUSEPORT``), starts N worker processes on them
(``cluster.worker``), then opens the store and runs the whole single-process app
(``app.MarketmeterApp``: the store's one writer, the test bench, the journal, the
lifecycle's background tasks, the admin API, the dashboard) on a Unix socket of its runtime
directory, which the workers forward to, and serves the workers' ledger writes and
journal entries on another (``cluster.link``). Before answering any call it publishes its
service clock and whether the bench is idle (``cluster.shared_state``), so a clock moved or a
fault rule added holds for the very next call on any worker; the catalog's version reaches
the workers through the store (the catalog stamp of a SQLite ledger; a query on PostgreSQL).

A worker that dies is started again. SIGTERM or SIGINT stops the workers first (each drains
its connections: every call it received is answered, its records committed by the
coordinator), then the coordinator's app, whose store commits what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

from marketmeter.app import MarketmeterApp
from marketmeter.catalog.model import CatalogSnapshot
from marketmeter.cluster import worker
from marketmeter.cluster.link import LedgerService
from marketmeter.cluster.shared_state import SharedState
from marketmeter.config import Settings
from marketmeter.metering.clock import ClockState
from marketmeter.server import (
    banner_lines,
    build_service,
    credentials_line,
    prepared,
    ready_text,
    uvicorn_config,
)
from marketmeter.servicemodel.spec import service_regions
from marketmeter.store.open import catalog_before_open

__all__ = ["serve"]

log = logging.getLogger(__name__)

_BACKLOG = 2048
_STATE_REFRESH = 0.2  # seconds: a rule that stopped firing makes the bench idle again
_RESPAWN_PAUSE = 0.2


class _Internal(uvicorn.Server):
    """uvicorn on the internal socket: the coordinator decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def _listen(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one address, one per worker: with ``SO_REUSEPORT`` the
    kernel spreads new connections evenly over them (one socket shared by every worker
    leaves most connections to whichever wakes first). A worker's socket stays open here
    while it is started again: its connections wait in the backlog meanwhile."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            listening = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(listening)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listening.bind((host, port))
            port = listening.getsockname()[1]  # port 0: the others take the one it got
            listening.listen(_BACKLOG)
            listening.set_inheritable(True)
    except BaseException:
        for listening in sockets:
            listening.close()
        raise
    return sockets


class _Workers:
    """The worker processes: started, started again when one dies, stopped."""

    def __init__(self, settings: Settings, runtime: Path, listening: list[socket.socket]) -> None:
        self._settings = settings
        self._runtime = runtime
        self._listening = listening
        self.processes: list[subprocess.Popen[bytes] | _Forked | None] = [None] * len(listening)
        self.stopping = False

    def fork_all(self, catalog: CatalogSnapshot | None) -> None:
        """The first workers: forked, with what the coordinator imported (no thread yet) and
        the ledger's ``catalog`` as it read it."""
        if self._settings.auth == "sigv4":
            service_regions()  # botocore's endpoints file read once, here: not in each worker
        for index in range(len(self.processes)):
            others = [s for i, s in enumerate(self._listening) if i != index]
            pid = worker.fork(
                self._settings, self._runtime, index, self._listening[index], others, catalog
            )
            self.processes[index] = _Forked(pid)

    def start(self, index: int) -> None:
        """A worker started again: a new interpreter (the coordinator runs threads now)."""
        descriptor = self._listening[index].fileno()
        self.processes[index] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "marketmeter.cluster.worker",
                str(self._runtime),
                str(index),
                str(descriptor),
                str(os.getpid()),
            ],
            pass_fds=(descriptor,),
        )

    async def supervise(self) -> None:
        """Start again any worker that exits while the server is not stopping."""
        while not self.stopping:
            await asyncio.sleep(0.05)
            for index, process in enumerate(self.processes):
                if self.stopping or process is None or process.poll() is None:
                    continue
                log.warning(
                    "worker %d (pid %d) exited with %s: starting it again",
                    index,
                    process.pid,
                    process.returncode,
                )
                await asyncio.sleep(_RESPAWN_PAUSE)
                if not self.stopping:
                    self.start(index)

    def signal_all(self, signum: int) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)

    async def stop(self, patience: float) -> None:
        """SIGTERM to each worker, then wait for it to drain (SIGKILL after ``patience``).
        The coordinator's copies of the listening sockets close first: with the workers', a
        new connection is refused at once."""
        self.stopping = True
        for listening in self._listening:
            listening.close()
        self.signal_all(signal.SIGTERM)
        for process in self.processes:
            if process is None:
                continue
            try:
                await asyncio.to_thread(process.wait, patience)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, None)


class _Forked:
    """A forked worker, as much of ``subprocess.Popen`` as ``_Workers`` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def serve(settings: Settings) -> None:
    """Serve with ``settings.workers`` worker processes until stopped."""
    settings, generated_token = prepared(settings)
    listening = _listen(settings.host, settings.port, settings.workers)
    runtime = Path(tempfile.mkdtemp(prefix="marketmeter-serve-"))
    workers = _Workers(settings, runtime, listening)
    try:
        (runtime / "settings.pickle").write_bytes(pickle.dumps(settings))
        state = SharedState(str(runtime / "state"), create=True)
        # until the app is built: wall time, and idle unless a start-up quota is set
        state.publish(
            ClockState(datetime.now(UTC), "system", timedelta(0)), settings.quota == "off"
        )
        # read once, before the fork: every process starts with this copy, its pages shared
        catalog = catalog_before_open(settings.db)
        workers.fork_all(catalog)  # they start while the coordinator opens the store
        app, store, catalog_line = build_service(settings, catalog)
        banner = banner_lines(settings, store, catalog_line, generated_token)
        host, port = listening[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        text = ready_text(f"http://{shown}:{port}", banner, credentials_line(settings))
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, lambda signum, frame: None)
        with asyncio.Runner(loop_factory=worker.loop_factory()) as runner:
            started = runner.run(_coordinate(settings, app, state, runtime, workers, text))
    finally:
        workers.stopping = True
        workers.signal_all(signal.SIGKILL)
        for each in listening:
            each.close()
        shutil.rmtree(runtime, ignore_errors=True)
    if not started:
        sys.exit(1)


async def _coordinate(
    settings: Settings,
    app: MarketmeterApp,
    state: SharedState,
    runtime: Path,
    workers: _Workers,
    ready_line: str,
) -> bool:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stop.set)

    def publish() -> None:
        state.publish_from(app.clock, app.bench.idle)  # type: ignore[arg-type]

    publish()

    async def publishing(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_after_publishing(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                publish()  # before the caller can learn of the change, every worker sees it
            await send(message)

        await app(scope, receive, send_after_publishing)

    limits = settings.limits
    internal_limits = dataclasses.replace(
        limits, max_connections=limits.max_connections * settings.workers + 64
    )
    internal_settings = dataclasses.replace(settings, limits=internal_limits)
    config = uvicorn_config(publishing, internal_settings, "127.0.0.1", 0)  # type: ignore[arg-type]
    config.uds = str(runtime / "http.sock")
    internal = _Internal(config)
    ready = asyncio.Event()
    ledger = LedgerService(app.store, app.observers, ready)
    link_server = await asyncio.start_unix_server(ledger.serve, path=str(runtime / "ledger.sock"))
    serving = asyncio.create_task(internal.serve())
    while not internal.started and not serving.done():
        await asyncio.sleep(0.01)
    if not internal.started:
        link_server.close()
        await serving
        return False
    ready.set()
    supervising = asyncio.create_task(workers.supervise())
    refreshing = asyncio.create_task(_refresh(publish))
    waiting_for_workers = asyncio.create_task(_hellos(ledger, settings.workers))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({waiting_for_workers, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if waiting_for_workers.done():
        print(ready_line, flush=True)
    await stopping
    waiting_for_workers.cancel()
    # the workers drain first: what they received is billed by this process, still serving
    await workers.stop(limits.request_timeout + limits.processing_timeout + 5)
    supervising.cancel()
    refreshing.cancel()
    internal.should_exit = True
    await serving
    link_server.close()
    return True


async def _hellos(ledger: LedgerService, count: int) -> None:
    seen: set[int] = set()
    while len(seen) < count:
        seen.add(await ledger.hellos.get())


async def _refresh(publish: Any) -> None:
    while True:
        await asyncio.sleep(_STATE_REFRESH)
        publish()
