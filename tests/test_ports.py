"""tests/ports.py: the test servers' ports are below the ephemeral range, one slice per xdist
worker, never repeated, and never one something is bound to."""

from __future__ import annotations

import socket

from tests import ports


def test_the_workers_slices_are_disjoint_and_cover_the_range() -> None:
    slices = [ports.worker_slice(f"gw{index}", 3, 10_000, 32_768) for index in range(3)]

    assert [(s.start, s.stop) for s in slices] == [
        (10_000, 17_589),
        (17_589, 25_178),
        (25_178, 32_767),
    ]
    assert ports.worker_slice("", 1, 10_000, 32_768) == range(10_000, 32_768)
    # a worker numbered past the count it was told (a nested run) still gets a slice in range
    assert ports.worker_slice("gw5", 2, 10_000, 32_768) == range(28_970, 32_764)


def test_ports_are_below_the_ephemeral_range_and_never_repeat() -> None:
    given = [ports.free_port() for _ in range(200)]

    assert len(set(given)) == 200
    assert all(ports.FLOOR <= port < ports.ephemeral_floor() for port in given)


def test_a_port_something_is_bound_to_is_skipped() -> None:
    taken = ports.free_port() + 1  # the next candidate, unless the slice wraps right there
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()

        assert ports.free_port() == taken + 1
