"""One worker process of ``marketmeter serve --workers N``: HTTP on the shared listening socket,
the common BatchMeterUsage and MeterUsage answered here, everything else handed to the
coordinator.

A worker answers a call itself when the test bench is idle (``cluster.shared_state``) and it
is, on ``POST /``, the common BatchMeterUsage batch (``protocol.batch_lane.BatchCodec``) or a
MeterUsage of an hourly record (no dry run, no client token): it authenticates and
authorizes the caller, reads the catalog from the database (its own read connections, the
catalog stamp telling it when to reload), checks the rules on the coordinator's clock
(``StampedClock``), then sends the ledger rows to the coordinator (``cluster.link``) and
answers only once the coordinator has committed them, and once the call's journal entry is
in the coordinator's journal. Whatever it does not
answer itself (another operation, another path, an invalid or refused request, a rule that
refuses the call, and every call while a fault rule, a latency or a quota is set) goes to the
coordinator's full app unchanged (``cluster.forward``): the coordinator answers it exactly as
one process does. Every answer carries ``x-marketmeter-worker`` (the worker's number).

Started by the coordinator (process ``PID``) as ``python -m marketmeter.cluster.worker RUNTIME
INDEX FD PID``: its settings are in ``RUNTIME/settings.pickle``, the listening socket is
descriptor ``FD``. It
stops (draining its connections as uvicorn does) on SIGTERM or SIGINT, and when the
coordinator goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import pickle
import signal
import socket
import sys
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any, cast

import uvicorn

from marketmeter.catalog.model import CatalogSnapshot
from marketmeter.cluster.forward import Forwarder
from marketmeter.cluster.link import CoordinatorLink
from marketmeter.cluster.shared_state import SharedState, StampedClock
from marketmeter.config import COLLECTOR_THRESHOLDS, Settings
from marketmeter.errors import AwsError, InternalServiceErrorException
from marketmeter.metering.ids import RandomIds
from marketmeter.metering.meter_usage import MeterUsage
from marketmeter.metering.simple_batch import SimpleBatch
from marketmeter.metering.types import Caller, LedgerEntry, LedgerOutcome
from marketmeter.observe.logs import configure as configure_logging
from marketmeter.protocol import serialize
from marketmeter.protocol.auth import Authenticator, OpenAuth, StrictAuth
from marketmeter.protocol.batch_lane import BatchCodec
from marketmeter.protocol.guarded_http import guarded_uvicorn_config
from marketmeter.protocol.hooks import JournalEntry
from marketmeter.protocol.parse import decode_and_validate, meter_usage_request
from marketmeter.protocol.raw_request import RawRequest
from marketmeter.protocol.sigv4 import SigV4Verifier
from marketmeter.servicemodel.spec import METERING, service_model, service_regions, target_prefix
from marketmeter.servicemodel.validation import compile_shape
from marketmeter.store.base import LedgerRow, OperatorStore, Store, ledger_row
from marketmeter.store.open import open_store

__all__ = ["WORKER_HEADER", "WorkerApp", "fork", "main", "run"]

log = logging.getLogger(__name__)

WORKER_HEADER = b"x-marketmeter-worker"
# the operations a worker answers itself, by X-Amz-Target
_OPERATIONS = {
    f"{target_prefix()}.{name}".encode(): name for name in ("BatchMeterUsage", "MeterUsage")
}
# the coordinator may be applying a large start-up catalog while the workers start
_COORDINATOR_PATIENCE = 3600.0
_PR_SET_PDEATHSIG = 1

Message = MutableMapping[str, Any]


class _Ledger:
    """The lane's ledger in a worker: catalog reads here, writes by the coordinator."""

    def __init__(self, store: OperatorStore, link: CoordinatorLink) -> None:
        self._store = store
        self._link = link

    async def catalog_snapshot(self) -> CatalogSnapshot:
        return await self._store.catalog_snapshot()

    async def bill_rows(self, rows: Sequence[LedgerRow]) -> list[LedgerOutcome] | None:
        return await self._link.bill_rows(rows)

    async def bill(self, entries: Sequence[LedgerEntry]) -> list[LedgerOutcome]:
        """``store.base.Store.bill``, what MeterUsage's hourly records need (a dry run and a
        client token, which read or claim otherwise, are the coordinator's)."""
        rows = [ledger_row(entry) for entry in entries]
        outcomes = await self._link.bill_rows(rows)
        if outcomes is None:
            return [LedgerOutcome(row[5], row[4], inserted=True) for row in rows]
        return outcomes


class _ClientGone(Exception):
    """The client disconnected before its body was complete."""


class _Undecided(Exception):
    """The worker does not answer this call itself: the coordinator does."""


class WorkerApp:
    """The worker's ASGI app."""

    def __init__(
        self,
        settings: Settings,
        runtime: Path,
        index: int,
        parent: int,
        catalog: CatalogSnapshot | None = None,
    ) -> None:
        self._settings = settings
        self._catalog = catalog  # the coordinator's, if it forked this process
        self._parent = parent
        self._runtime = runtime
        self._index = index
        self._header = [(WORKER_HEADER, str(index).encode())]
        self._state = SharedState(str(runtime / "state"))
        self._clock = StampedClock(self._state)
        self._forward = Forwarder(str(runtime / "http.sock"), settings.limits.max_connections)
        self._codec = BatchCodec()
        self._request_ids = RandomIds()
        self.link = CoordinatorLink(self._coordinator_lost)
        self._store: OperatorStore | None = None
        self._auth: Authenticator = OpenAuth()
        self._simple: SimpleBatch | None = None
        self._meter: MeterUsage | None = None
        self._meter_checker = compile_shape(
            service_model().operation_model("MeterUsage").input_shape
        )
        self.server: uvicorn.Server | None = None

    def _coordinator_lost(self) -> None:
        log.warning("worker %d: the coordinator is gone; stopping", self._index)
        if self.server is not None:
            self.server.should_exit = True

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            return
        elif (
            self._simple is not None
            and scope["method"] == "POST"
            and scope["path"] == "/"
            and (operation := _OPERATIONS.get(_target(scope["headers"]) or b"")) is not None
            and self._state.idle
        ):
            await self._metering(operation, scope, receive, send)
        else:
            await self._forward(scope, receive, send, extra=self._header)

    async def _metering(self, operation: str, scope: Message, receive: Any, send: Any) -> None:
        try:
            body = await _body(scope, receive, self._settings.max_body_bytes)
        except _ClientGone:
            return  # a truncated body is never acted on
        if body is None:
            await self._forward(scope, receive, send, extra=self._header)
            return
        started = time.perf_counter()
        request_id = self._request_ids()
        try:
            decided = await self._decide(operation, scope, body)
        except _Undecided:
            await self._forward(scope, receive, send, body=body, extra=self._header)
            return
        access_key, code, status, answer, verdicts, error_type = decided
        response = serialize.WireResponse(status, answer, error_type)
        if self.link.observing:
            entry = JournalEntry(
                time=self._clock.now().timestamp(),
                wall_time=time.time(),
                request_id=request_id,
                operation=operation,
                target=f"{target_prefix()}.{operation}",
                access_key_id=access_key,
                product_code=code,
                request_body=body,
                status=status,
                error_type=error_type,
                response_body=answer,
                verdicts=verdicts,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
            try:
                await self.link.record(entry)
            except Exception:
                log.exception("worker %d: journal entry of %s not kept", self._index, request_id)
                response = _internal_error()
        headers = serialize.headers(response, request_id) + self._header
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _decide(
        self, operation: str, scope: Message, body: bytes
    ) -> tuple[str | None, str | None, int, bytes, tuple[str, ...], str | None]:
        """Access key, product, status, answer, verdicts and error type of a call this
        worker answers; ``_Undecided`` if the coordinator must."""
        request = RawRequest(
            method="POST",
            path="/",
            query=scope.get("query_string", b""),
            headers=scope["headers"],
            body=body,
            raw_path=scope.get("raw_path") or b"/",
        )
        try:
            caller = await self._auth.authenticate(request, METERING)
            self._auth.authorize(caller, operation)
        except AwsError:
            raise _Undecided from None
        if operation == "MeterUsage":
            return await self._meter_usage(caller, body)
        parsed = self._codec.accept(body)
        if parsed is None:
            raise _Undecided
        code, records, timestamps, dimensions, customers, quantities = parsed
        assert self._simple is not None
        try:
            async with asyncio.timeout(self._settings.limits.processing_timeout):
                result = await self._simple(
                    code, caller, timestamps, dimensions, customers, quantities
                )
        except Exception:
            log.exception("worker %d: BatchMeterUsage failed", self._index)
            failed = _internal_error()
            assert failed.error_type is not None
            return caller.access_key_id, code, 500, failed.body, (), failed.error_type
        if result is None:
            raise _Undecided  # a whole-request check failed: the coordinator's exact error
        answer = self._codec.encode(records, result)
        return caller.access_key_id, code, 200, answer, tuple(result.statuses), None

    async def _meter_usage(
        self, caller: Caller, body: bytes
    ) -> tuple[str | None, str | None, int, bytes, tuple[str, ...], str | None]:
        """MeterUsage of an hourly record: the rules of one process, billed by the
        coordinator. An AWS error, raised before anything is billed or by a duplicate (which
        billing again reproduces), is the coordinator's to answer and journal."""
        assert self._meter is not None
        try:
            request = meter_usage_request(decode_and_validate(self._meter_checker, body))
            if request.dry_run or request.client_token is not None:
                raise _Undecided
            async with asyncio.timeout(self._settings.limits.processing_timeout):
                result = await self._meter(request, caller)
        except AwsError:
            raise _Undecided from None
        except _Undecided:
            raise
        except Exception:
            log.exception("worker %d: MeterUsage failed", self._index)
            failed = _internal_error()
            return caller.access_key_id, None, 500, failed.body, (), failed.error_type
        answer = serialize.success(serialize.meter_usage_result(result)).body
        return caller.access_key_id, request.product_code, 200, answer, ("Success",), None

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start()
                except BaseException as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    raise
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.link.close()
                await self._forward.close()
                if self._store is not None:
                    await self._store.close()
                self._state.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        await self.link.connect(
            str(self._runtime / "ledger.sock"),
            self._index,
            _COORDINATOR_PATIENCE,
            lambda: os.getppid() == self._parent,
        )
        settings = self._settings
        # opened once the coordinator is ready: the schema is migrated, the catalog applied
        store = self._store = await asyncio.to_thread(
            open_store, settings.db, settings.synchronous, 4, self._catalog
        )
        self._catalog = None  # the store holds it while it is current
        if settings.auth == "sigv4":
            self._auth = StrictAuth(
                store.catalog_snapshot, SigV4Verifier(regions=service_regions())
            )
        ledger = _Ledger(store, self.link)
        self._meter = MeterUsage(
            cast(Store, ledger),  # catalog reads and ``bill``: all an hourly record needs
            self._clock,
            RandomIds(),
            settings.meter_usage_window,
            settings.dry_run_answer,
        )
        self._simple = SimpleBatch(ledger, self._clock, RandomIds(), settings.usage_window)


def _target(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for key, value in headers:
        if key.lower() == b"x-amz-target":
            return value
    return None


async def _body(scope: Message, receive: Any, limit: int) -> bytes | None:
    """The request's body, or None if it may be too large (the coordinator answers 413)."""
    for key, value in scope["headers"]:
        if key.lower() == b"content-length" and value.isdigit() and int(value) >= limit:
            return None
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _internal_error() -> serialize.WireResponse:
    return serialize.error(
        InternalServiceErrorException("An internal error has occurred. Retry your request.")
    )


def worker_config(app: WorkerApp, settings: Settings) -> uvicorn.Config:
    """uvicorn as ``server.uvicorn_config`` sets it up for one process."""
    return guarded_uvicorn_config(app, settings.limits)


def _stop_with_parent() -> None:
    """Ask Linux to kill this worker when the coordinator dies (a SIGKILL leaves it no time to
    stop its workers; without it nothing can be billed): the port is free at once for the
    next server. Elsewhere the lost link stops it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run(
    settings: Settings,
    runtime: Path,
    index: int,
    listening: socket.socket,
    parent: int,
    catalog: CatalogSnapshot | None = None,
) -> int:
    """Serve on ``listening`` until stopped; the exit status. In a process of its own: started
    by ``main``, or forked by the coordinator before it opened its store (``fork``; then
    ``catalog`` is the catalog it read)."""
    _stop_with_parent()
    if os.getppid() != parent:  # the coordinator died before the signal was asked for
        return 1
    app = WorkerApp(settings, runtime, index, parent, catalog)
    server = app.server = uvicorn.Server(worker_config(app, settings))
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda signum, frame: None)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(server.serve(sockets=[listening]))
    return 0 if server.started else 1


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency): less CPU per request."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop


def fork(
    settings: Settings,
    runtime: Path,
    index: int,
    listening: socket.socket,
    others: Sequence[socket.socket] = (),
    catalog: CatalogSnapshot | None = None,
) -> int:
    """A worker forked from the coordinator, which has imported all a worker needs already and
    has no thread yet (its pid); ``catalog`` is the ledger's, as the coordinator read it (the
    child's store starts with it: no read of its own, the pages shared). The child closes the
    ``others`` listening sockets: once every process that listens on one has closed it, a new
    connection there is refused."""
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # the parent's objects stay shared pages in the child
    pid = os.fork()
    if pid:
        gc.unfreeze()
        return pid
    code = 1
    try:
        for other in others:
            other.close()
        code = run(settings, runtime, index, listening, parent, catalog)
    finally:
        logging.shutdown()
        os._exit(code)


def main(argv: list[str]) -> None:
    runtime, index, descriptor, parent = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    settings: Settings = pickle.loads((runtime / "settings.pickle").read_bytes())
    configure_logging(settings.log_format, settings.log_level, [settings.admin_token or ""])
    gc.set_threshold(*COLLECTOR_THRESHOLDS)  # a forked worker has its coordinator's
    sys.exit(run(settings, runtime, index, socket.socket(fileno=descriptor), parent))


if __name__ == "__main__":
    main(sys.argv[1:])
