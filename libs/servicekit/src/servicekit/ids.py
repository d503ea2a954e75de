"""Identifiers made in bulk: UUIDs of version 7 (RFC 9562), time first, so that a batch of new rows
lands at the right edge of each B-tree index instead of on random pages."""

from __future__ import annotations

import os
import time

SEQUENCE_BITS = 30  # ids of one batch are numbered: 12 bits of rand_a and 18 of rand_b


def time_ordered_ids(n: int, *, now_ms: int | None = None) -> list[str]:
    """``n`` version-7 UUIDs as strings, in ascending order: the millisecond, then the position
    in the batch (up to 2**30), then 44 random bits. Many times faster than ``uuid.uuid4()`` one
    by one, and unique as long as two batches of the same millisecond do not share their random bits."""
    if n > 1 << SEQUENCE_BITS:
        raise ValueError(f"at most {1 << SEQUENCE_BITS} ids per batch")
    stamp = f"{(int(time.time() * 1000) if now_ms is None else now_ms) & (1 << 48) - 1:012x}"
    head = f"{stamp[:8]}-{stamp[8:]}-7"
    tail = os.urandom(6 * n).hex()  # 44 random bits (11 hex digits) per id, and spare
    return [f"{head}{i >> 18:03x}-{0x8000 | (i >> 4) & 0x3FFF:04x}-{i & 0xF:x}{tail[12 * i:12 * i + 11]}"
            for i in range(n)]
