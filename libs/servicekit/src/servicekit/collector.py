"""The cyclic garbage collector paused around stretches of code that allocate millions of small,
acyclic objects (a batch's records, rows, views): paused there, it does not rescan them again and
again for nothing.

Pauses may overlap -- two department batches at once, a rescore's pipeline on the event loop and
its chunks built in a worker thread -- so they are counted: the collector is enabled again when
the last one ends, and only if it was enabled when the first began. Other tasks of the process
run meanwhile: their garbage cycles wait until then (a chunk, or a rescore's few seconds)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_enable_after = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No collection inside; the collector runs as usual once no pause is left (if it was enabled),
    and what the stretch left as garbage cycles is collected then."""
    global _pauses, _enable_after
    with _lock:
        if _pauses == 0:
            _enable_after = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _enable_after:
                gc.enable()


def freeze_startup() -> None:
    """At the end of a process's start-up: what it keeps for its life (the app, uvicorn, the
    lifespan's objects, and what the first readiness probe would load -- the migrations check:
    alembic, mako) kept out of the collector's scans. Left in, a full collection came every
    1.5-2 s under load and walked them all, 10-37 ms in the registry and 35-150 ms in the gateway
    with every request of the process waiting (bench/registry_read.py)."""
    import servicekit.migrations  # noqa: F401

    gc.collect()
    gc.freeze()
