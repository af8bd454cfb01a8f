"""One read shared by every caller waiting for it, never older than the call.

``SharedRead(read)`` is called by many coroutines of one event loop at once (a node's requests
each asking for the catalog version). At most one ``read`` runs at a time. A call made while
none runs starts one; a call made while one runs waits for the *next* one, which starts when
the running one ends and serves every call that arrived meanwhile. So every caller gets a read
that began after its call (what was committed before the call is seen), and a node under load
makes about one read per round trip instead of one per request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SharedRead"]

T = TypeVar("T")


class _OnLoop(Generic[T]):
    """The shared read of one event loop."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._task: asyncio.Task[T] | None = None  # the read running
        self._waiting: asyncio.Future[T] | None = None  # the callers of the next read

    async def __call__(self) -> T:
        if self._waiting is None:
            self._waiting = asyncio.get_running_loop().create_future()
        waiting = self._waiting
        if self._task is None:
            self._start()
        return await asyncio.shield(waiting)

    def _start(self) -> None:
        waiting, self._waiting = self._waiting, None
        assert waiting is not None
        self._task = asyncio.get_running_loop().create_task(_run(self._read))

        def done(finished: asyncio.Task[T]) -> None:
            self._task = None
            if not waiting.done():  # a waiter cancelled is shielded: the future itself is not
                if finished.cancelled():
                    waiting.cancel()
                elif (error := finished.exception()) is not None:
                    waiting.set_exception(error)
                else:
                    waiting.set_result(finished.result())
            if self._waiting is not None:
                self._start()

        self._task.add_done_callback(done)


async def _run(read: Callable[[], Awaitable[T]]) -> T:
    return await read()


class SharedRead(Generic[T]):
    """``await shared()``: the result of a ``read()`` that began after this call; see the
    module docstring. Each event loop has its own."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop[T]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self) -> T:
        loop = asyncio.get_running_loop()
        on_loop = self._loops.get(loop)
        if on_loop is None:
            on_loop = self._loops[loop] = _OnLoop(self._read)
        return await on_loop()
