"""The cyclic garbage collector around CPU-bound stretches of code that allocate millions of
small, acyclic objects (a batch's records, rows, views): paused there, it does not rescan them
again and again for nothing. Only for synchronous code: nothing else runs while it is paused."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No collection inside; the collector runs as usual afterwards (if it was enabled), and
    what the stretch left as garbage cycles is collected then."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
