"""Ports for the servers the tests and benches start on 127.0.0.1, never one in use.

A port from ``bind(("127.0.0.1", 0))`` comes from the kernel's ephemeral range: the range it
also takes every outgoing connection's local port from. Between choosing such a port and the
server's bind, a client socket of another test (boto3, psycopg, urllib, on another xdist
worker) can be given it, and the server exits with "address already in use". A CI run failed
so. Ports below that range are never given to connections; each xdist worker counts through a
slice of its own, from an offset of its process id (a nested pytest run shares its parent's
slice), and skips any port something is bound to. So two starts are never given one port.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

FLOOR = 10_000
"""The lowest port handed out: above the usual services' (PostgreSQL's 5432, 8080...)."""

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_floor() -> int:
    """The first port of the kernel's ephemeral range (Linux's default 32768 if unreadable)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def worker_slice(worker: str, workers: int, floor: int, ceiling: int) -> range:
    """The ports of xdist worker ``worker`` (``gw0``... or ``""`` outside xdist) of ``workers``:
    an equal share of ``floor`` up to ``ceiling``, disjoint from every other worker's."""
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    count = max(workers, index + 1)
    size = (ceiling - floor) // count
    start = floor + index * size
    return range(start, start + size)


def _this_process_slice() -> range:
    return worker_slice(
        os.environ.get("PYTEST_XDIST_WORKER", ""),
        int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1),
        FLOOR,
        ephemeral_floor(),
    )


def _candidates(ports: range) -> Iterator[int]:
    first = (os.getpid() * 7_919) % len(ports)
    return itertools.cycle([*ports[first:], *ports[:first]])


_lock = threading.Lock()
_slice = _this_process_slice()
_next = _candidates(_slice)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port of 127.0.0.1 nothing is bound to, and that no other caller of this function (in
    this process or another xdist worker) is given."""
    with _lock:
        for port in itertools.islice(_next, len(_slice)):
            if _bindable(port):
                return port
    raise RuntimeError(f"every port of 127.0.0.1 from {_slice.start} to {_slice.stop - 1} is bound")
