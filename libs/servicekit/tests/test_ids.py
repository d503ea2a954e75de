"""Time-ordered ids: valid version-7 UUIDs, ascending within a batch and across milliseconds, unique."""

import uuid

import pytest

from servicekit.ids import time_ordered_ids


def test_a_batch_is_valid_ascending_and_unique():
    ids = time_ordered_ids(70_000)  # past 2**16, so the sequence spills from rand_a's bits into rand_b's
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert [str(u) for u in parsed] == ids
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_the_millisecond_comes_first():
    early, late = time_ordered_ids(3, now_ms=1_000), time_ordered_ids(3, now_ms=1_001)
    assert max(early) < min(late)
    assert uuid.UUID(early[0]).int >> 80 == 1_000


def test_empty_and_too_large_batches():
    assert time_ordered_ids(0) == []
    with pytest.raises(ValueError):
        time_ordered_ids((1 << 30) + 1)
