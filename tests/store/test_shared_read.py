"""``store.shared_read``: callers waiting at once share one read, and every caller's read began
after its call (a write committed before a call is always seen by it)."""

from __future__ import annotations

import asyncio

import pytest

from marketmeter.store.shared_read import SharedRead


class Source:
    """A value read with a delay; ``reads`` counts the reads, ``value`` is what was written."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.fail = False
        self.gate = asyncio.Event()

    async def read(self) -> int:
        self.reads += 1
        seen = self.value  # what a database reads at the start of its statement
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("the read failed")
        return seen


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_callers_waiting_together_share_the_next_read_which_sees_what_came_before() -> None:
    async def scenario() -> None:
        source = Source()
        shared = SharedRead(source.read)
        first = asyncio.ensure_future(shared())
        await settle()  # the first read runs and has seen value 0
        source.value = 1  # a commit after the first read began
        later = [asyncio.ensure_future(shared()) for _ in range(10)]
        await settle()
        assert source.reads == 1  # the later calls wait for the read in flight to end
        source.gate.set()
        assert await first == 0
        assert await asyncio.gather(*later) == [1] * 10  # one read, begun after their calls
        assert source.reads == 2
        assert await shared() == 1
        assert source.reads == 3

    asyncio.run(scenario())


def test_a_failed_read_fails_its_callers_and_the_next_call_reads_again() -> None:
    async def scenario() -> None:
        source = Source()
        shared = SharedRead(source.read)
        source.fail = True
        source.gate.set()
        calls = [asyncio.ensure_future(shared()) for _ in range(3)]
        for call in calls:
            with pytest.raises(RuntimeError, match="the read failed"):
                await call
        source.fail = False
        source.value = 5
        assert await shared() == 5

    asyncio.run(scenario())


def test_a_cancelled_caller_leaves_the_others_their_read() -> None:
    async def scenario() -> None:
        source = Source()
        shared = SharedRead(source.read)
        gone = asyncio.ensure_future(shared())
        await settle()
        staying = asyncio.ensure_future(shared())  # waits for the next read
        await settle()
        gone.cancel()
        source.value = 2
        source.gate.set()
        assert await staying == 2
        assert gone.cancelled()
        assert source.reads == 2

    asyncio.run(scenario())
