"""Id generators: random version-4 UUIDs in production, a predictable sequence in tests."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from marketmeter.metering.ids import RandomIds, SequentialIds


def test_random_ids_are_version_4_uuids_in_canonical_form() -> None:
    ids = RandomIds()
    found = [ids() for _ in range(5000)]
    parsed = [uuid.UUID(i) for i in found]
    assert [str(p) for p in parsed] == found  # lower case, dashed, 36 characters
    assert {p.version for p in parsed} == {4}
    assert {p.variant for p in parsed} == {uuid.RFC_4122}
    assert len(set(found)) == 5000
    # every variant digit occurs: the variant keeps two random bits
    assert {i[19] for i in found} == {"8", "9", "a", "b"}


def test_sequential_ids() -> None:
    ids = SequentialIds(start=41)
    assert [ids(), ids()] == [
        "00000000-0000-4000-8000-000000000041",
        "00000000-0000-4000-8000-000000000042",
    ]


def test_random_ids_from_several_threads_are_distinct() -> None:
    ids = RandomIds()
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [ids() for _ in range(1000)], range(8)))
    found = [i for batch in batches for i in batch]
    assert len(set(found)) == 8000
    assert {uuid.UUID(i).version for i in found} == {4}
