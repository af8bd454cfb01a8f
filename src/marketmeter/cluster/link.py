"""The workers' line to the coordinator: ledger rows to bill and journal entries to keep, as
msgpack frames over one Unix stream connection per worker, pipelined.

A frame is a 4-byte big-endian length and a msgpack array. A worker sends
``[sequence, kind, payload]`` and the coordinator answers ``[sequence, ok, payload]``, in any
order (a bill is answered once committed; many are in flight at once):

- ``hello`` (payload: the worker's number): answered with whether the coordinator keeps call
  records at all (journal, metrics or call log), once it is ready;
- ``bills`` (payload: a list of requests' ``store.ledger_rows`` rows): billed in one call of
  the store, in order (so a key twice is billed by its first request, as if they committed
  one after the other); answered once committed, with what the ledger holds for each row of
  each request (``store.base.Store.bill_rows``; None for a request whose rows were all new);
- ``records`` (payload: a list of ``JournalEntry`` fields): answered once the entries are in
  the journal, the metrics and the call log, so the calls they describe are answered after.

A worker's calls made in one turn of its event loop travel together: one ``bills`` frame and
one ``records`` frame per turn, not one per request, so the coordinator's loop reads, decodes
and answers a frame for many requests (docs/performance.md).

An error answer (``ok`` false) carries the message of the coordinator's exception; the worker
answers its clients 500 (retry-safe), as a failed write does in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from marketmeter.metering.types import LedgerOutcome
from marketmeter.protocol.hooks import CallLog, JournalEntry
from marketmeter.store.base import LedgerRow, Store, each_request

__all__ = ["CoordinatorLink", "LedgerService", "LinkLost"]

log = logging.getLogger(__name__)
_LENGTH = struct.Struct(">I")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class LinkLost(ConnectionError):
    """The coordinator is gone: nothing more can be billed."""


def _frame(message: Sequence[Any]) -> bytes:
    body = _encode(message)
    return _LENGTH.pack(len(body)) + body


async def _read(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(_LENGTH.size)
    return _decode(await reader.readexactly(_LENGTH.unpack(header)[0]))


def entry_fields(entry: JournalEntry) -> list[Any]:
    return [
        entry.time,
        entry.wall_time,
        entry.request_id,
        entry.operation,
        entry.target,
        entry.access_key_id,
        entry.product_code,
        entry.request_body,
        entry.status,
        entry.error_type,
        entry.response_body,
        list(entry.verdicts),
        entry.fault,
        entry.duration_ms,
    ]


def entry_of(fields: list[Any]) -> JournalEntry:
    values = list(fields)
    values[11] = tuple(values[11])
    return JournalEntry(*values)


class LedgerService:
    """The coordinator's end: bills on ``store``, records to ``observers``."""

    def __init__(self, store: Store, observers: CallLog, ready: asyncio.Event) -> None:
        self._store = store
        self._observers = observers
        self._ready = ready
        self.hellos: asyncio.Queue[int] = asyncio.Queue()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    sequence, kind, payload = await _read(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if kind == "bills":
                    task = asyncio.create_task(self._bill(writer, sequence, payload))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif kind == "records":
                    for fields in payload:
                        self._observers.record(entry_of(fields))
                    writer.write(_frame((sequence, True, None)))
                elif kind == "hello":
                    await self._ready.wait()
                    writer.write(_frame((sequence, True, self._observers.enabled)))
                    self.hellos.put_nowait(int(payload))
        finally:
            if tasks:  # what a lost worker asked for still commits (its client saw no answer)
                await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()

    async def _bill(
        self, writer: asyncio.StreamWriter, sequence: int, requests: list[list[Any]]
    ) -> None:
        rows: list[Any] = [row for each in requests for row in each]  # as decoded: lists
        try:
            outcomes = await self._store.bill_rows(rows)
        except Exception as error:
            log.exception("billing %d rows for a worker failed", len(rows))
            reply: tuple[Any, ...] = (sequence, False, str(error))
        else:
            reply = (sequence, True, _held_by_request(requests, outcomes))
        if not writer.is_closing():
            writer.write(_frame(reply))


def _held_by_request(
    requests: list[list[Any]], outcomes: list[LedgerOutcome] | None
) -> list[list[tuple[str, int, bool]] | None]:
    """Each request's share of the store's outcomes, as the frame carries them."""
    return [
        None
        if share is None
        else [(o.metering_record_id, o.quantity_micros, o.inserted) for o in share]
        for share in each_request(outcomes, requests)
    ]


class CoordinatorLink:
    """A worker's end: one connection, any number of calls in flight."""

    def __init__(self, on_lost: Callable[[], None]) -> None:
        self._on_lost = on_lost
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._sequence = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._closing = False
        self._batches: dict[str, tuple[list[Any], list[asyncio.Future[Any]]]] = {}
        self.observing = True

    async def connect(
        self, path: str, index: int, patience: float, alive: Callable[[], bool]
    ) -> None:
        """Connect (retrying while the coordinator starts and is ``alive``, up to ``patience``
        seconds), then say hello and wait until the coordinator is ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            try:
                reader, self._writer = await asyncio.open_unix_connection(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if loop.time() > deadline or not alive():
                    raise
                await asyncio.sleep(0.02)
        self._reader_task = asyncio.create_task(self._read_answers(reader))
        self.observing = bool(await self._call("hello", index))

    async def bill_rows(self, rows: Sequence[LedgerRow]) -> list[LedgerOutcome] | None:
        held = await self._batched("bills", rows)
        if held is None:
            return None
        return [LedgerOutcome(i, q, inserted) for i, q, inserted in held]

    async def record(self, entry: JournalEntry) -> None:
        await self._batched("records", entry_fields(entry))

    async def _batched(self, kind: str, item: Any) -> Any:
        """``item`` sent in this loop turn's ``kind`` frame; its share of the answer."""
        if self._writer is None or self._writer.is_closing():
            raise LinkLost("the coordinator is gone")
        loop = asyncio.get_running_loop()
        share: asyncio.Future[Any] = loop.create_future()
        batch = self._batches.get(kind)
        if batch is None:
            batch = self._batches[kind] = ([], [])
            loop.call_soon(self._send, kind)
        batch[0].append(item)
        batch[1].append(share)
        return await share

    def _send(self, kind: str) -> None:
        items, shares = self._batches.pop(kind)
        sent = asyncio.ensure_future(self._call(kind, items))
        sent.add_done_callback(lambda done: _hand_out(done, shares))

    async def _call(self, kind: str, payload: Any) -> Any:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise LinkLost("the coordinator is gone")
        sequence = next(self._sequence)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = answer
        writer.write(_frame((sequence, kind, payload)))
        ok, value = await answer
        if not ok:
            raise RuntimeError(f"the coordinator could not {kind}: {value}")
        return value

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                sequence, ok, value = await _read(reader)
                answer = self._pending.pop(sequence, None)
                if answer is not None and not answer.done():
                    answer.set_result((ok, value))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            lost = LinkLost("the coordinator is gone")
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(lost)
            self._pending.clear()
            if self._writer is not None:
                self._writer.close()
            if not self._closing:
                self._on_lost()

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task


def _hand_out(done: asyncio.Future[Any], shares: list[asyncio.Future[Any]]) -> None:
    """A batch's answer to each of its callers: its own part (``bills``), or the same
    acknowledgement or failure for all."""
    failure = LinkLost("the coordinator is gone") if done.cancelled() else done.exception()
    value = None if failure is not None else done.result()
    for index, share in enumerate(shares):
        if share.done():
            continue
        if failure is not None:
            share.set_exception(failure)
        else:
            share.set_result(value[index] if isinstance(value, list) else value)
