"""Time-ordered ids: valid version-7 UUIDs, ascending within a batch and across milliseconds, unique."""

import os
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


def test_the_layout_is_millisecond_then_position_then_random(monkeypatch):
    n = (1 << 18) + 40  # past 2**18, so the position reaches rand_a's bits
    noise = bytes(range(7, 256)) * (6 * n // 249 + 1)
    monkeypatch.setattr(os, "urandom", lambda k: noise[:k])
    ids = time_ordered_ids(n, now_ms=0x0123_4567_89AB)
    assert len(ids) == n
    tail = noise[:6 * n].hex()
    for i in [0, 1, 15, 16, 17, 4095, 65_535, 65_536, (1 << 18) - 1, 1 << 18, n - 1]:
        u = uuid.UUID(ids[i]).int
        assert u >> 80 == 0x0123_4567_89AB
        assert (u >> 64) & 0xFFF == i >> 18 and (u >> 48) & 0x3FFF == (i >> 4) & 0x3FFF and (u >> 44) & 0xF == i & 0xF
        assert f"{u & (1 << 44) - 1:011x}" == tail[12 * i:12 * i + 11]
