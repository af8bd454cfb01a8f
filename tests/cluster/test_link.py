"""The workers' link (``cluster.link``) over a real Unix socket, to a real SQLite store: the
calls a worker makes in one turn of its loop travel in one frame, are billed in one call of
the store in order, and each caller gets its own share of the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from marketmeter.cluster.link import CoordinatorLink, LedgerService
from marketmeter.metering.types import LedgerOutcome
from marketmeter.protocol.hooks import JournalEntry
from marketmeter.store.sqlite import SQLiteStore
from tests.store.ledger_keys import HOUR, row


def entry(request_id: str) -> JournalEntry:
    return JournalEntry(
        HOUR, HOUR, request_id, "BatchMeterUsage", None, None, "p", b"{}", 200, None, b"{}"
    )


class Recorded:
    """The coordinator's call log: the entries it was given, and the frames they came in."""

    enabled = True

    def __init__(self) -> None:
        self.entries: list[str] = []

    def record(self, entry: JournalEntry) -> None:
        self.entries.append(entry.request_id)


def test_one_turns_calls_are_one_frame_billed_in_order_each_with_its_share(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    observers = Recorded()
    frames: list[str] = []

    async def scenario() -> tuple[list[list[LedgerOutcome] | None], list[None]]:
        ready = asyncio.Event()
        ready.set()
        service = LedgerService(store, observers, ready)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            original = reader.readexactly

            async def counted(n: int) -> bytes:
                data = await original(n)
                if n > 4:
                    frames.append("frame")
                return data

            reader.readexactly = counted  # type: ignore[method-assign]
            await service.serve(reader, writer)

        server = await asyncio.start_unix_server(serve, path=str(tmp_path / "ledger.sock"))
        link = CoordinatorLink(on_lost=lambda: None)
        await link.connect(str(tmp_path / "ledger.sock"), 0, 5.0, lambda: True)
        frames.clear()  # the hello
        bills = await asyncio.gather(
            link.bill_rows([row(1), row(2)]),
            link.bill_rows([row(2, quantity=5), row(3)]),  # key 2 again: the first call's
            link.bill_rows([row(4)]),
        )
        bill_frames = len(frames)
        records = await asyncio.gather(link.record(entry("a")), link.record(entry("b")))
        await link.close()
        server.close()
        assert bill_frames == 1
        return list(bills), list(records)

    bills, records = asyncio.run(scenario())
    store.close_now()
    assert bills == [
        [LedgerOutcome("id-1-1", 1_000_000, True), LedgerOutcome("id-2-1", 1_000_000, True)],
        [LedgerOutcome("id-2-1", 1_000_000, False), LedgerOutcome("id-3-1", 1_000_000, True)],
        [LedgerOutcome("id-4-1", 1_000_000, True)],
    ]
    assert records == [None, None]
    assert frames == ["frame", "frame"]  # the bills' frame, then the records'
    assert observers.entries == ["a", "b"]
