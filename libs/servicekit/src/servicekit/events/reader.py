"""Reading the pages a consumer fetches ahead in a worker process.

Behind a backlog the consumer fetches the next page while it applies the current one; parsing
that page (and whatever a service does with each event before it can be applied) is pure CPU,
which in one interpreter takes turns on the GIL with the apply. A ``PageReader`` does it in a
process of its own, on the other core, and hands back the events ready to apply.

The worker is started on the first page fetched ahead behind a backlog of at least
``min_backlog`` events (it takes seconds to start: a small backlog is read sooner without it; a
service that never falls behind never has one) and stopped when the consumer has caught up (a
page shorter than a batch) or closes.
It only ever speeds things up: while it starts, after it died, or when it cannot read a page,
``read`` answers None and the consumer reads the page itself, as without a reader -- so a bad
page gets the same error either way, and nothing is lost or applied twice (the worker only
reads; every write stays in the consumer's transaction).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from servicekit.collector import gc_paused
from servicekit.events.outbox import Event

log = logging.getLogger(__name__)

# A worker that failed is not replaced at once: a page that kills it would otherwise cost a
# process start (seconds of CPU) every page.
RETRY_AFTER_SECONDS = 60.0

# A page's events and the producer's head as the page says (FeedPage.head).
Read = Callable[[bytes], tuple[list[Event], int]]


class PageReader:
    """``read(content) -> (events, head)`` run in one worker process; ``read``, ``setup`` and
    ``args`` must pickle (module-level functions), ``setup(*args)`` runs once in the worker first."""

    def __init__(self, read: Read, setup: Callable[..., None] | None = None, args: Sequence[Any] = (),
                 *, min_backlog: int = 0) -> None:
        self._read = read
        self.min_backlog = min_backlog
        self._setup = setup
        self._args = tuple(args)
        self._pool: ProcessPoolExecutor | None = None
        self._ready: Future[bool] | None = None
        self._retry_at = 0.0  # after a failure, no new worker before this (monotonic) time
        self.read_here = 0  # pages the caller had to read itself (starting, failed)
        self.read_there = 0

    @property
    def running(self) -> bool:
        return self._pool is not None

    def pids(self) -> list[int]:
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return list(processes)

    async def started(self) -> None:
        """Start the worker now, if none runs, and wait until it is ready (for a consumer that
        expects a backlog; otherwise the first page fetched ahead starts it)."""
        self._start()
        if self._ready is not None:
            await asyncio.wrap_future(self._ready)

    async def read(self, content: bytes, backlog: int) -> tuple[list[Event], int] | None:
        """The page read by the worker, or None: read it yourself. ``backlog``: the events past the
        page before, this one's among them (a worker starts only for ``min_backlog`` or more)."""
        events = None
        try:
            pool = self._start() if self._pool is not None or backlog >= self.min_backlog else None
        except Exception as exc:  # noqa: BLE001 -- no process can be made here (no /dev/shm, limits)
            self._stop(type(exc).__name__)
            pool = None
        if pool is not None and self._ready is not None and self._ready.done():
            if self._ready.exception() is not None:
                self._stop("it could not start")
            else:
                try:
                    events = await asyncio.wrap_future(pool.submit(_guarded, self._read, content))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 -- the worker died (BrokenProcessPool)
                    self._stop(type(exc).__name__)
        if events is None:
            self.read_here += 1
        else:
            self.read_there += 1
        return events

    def close(self) -> None:
        """Stop the worker (a page it is reading is dropped; the consumer reads it itself)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool, self._ready = None, None
            log.info("page reader worker stopped; pages read by it so far %d, by the service %d",
                     self.read_there, self.read_here)

    def _start(self) -> ProcessPoolExecutor | None:
        if self._pool is None and time.monotonic() >= self._retry_at:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=self._setup, initargs=self._args)
            # Unpickling ``read`` imports its module: once that is done, the worker is ready.
            self._ready = self._pool.submit(_warm, self._read)
            log.info("page reader worker starting: behind a backlog, pages fetched ahead are read there")
        return self._pool

    def _stop(self, why: str) -> None:
        log.warning("page reader worker stopped (%s); pages are read in the service for %.0f s",
                    why, RETRY_AFTER_SECONDS)
        try:
            self.close()
        except Exception:  # noqa: BLE001 -- a pool that never came up: nothing to shut down
            self._pool, self._ready = None, None
        self._retry_at = time.monotonic() + RETRY_AFTER_SECONDS


def _warm(read: Read) -> bool:
    return True


def _guarded(read: Read, content: bytes) -> tuple[list[Event], int] | None:
    """In the worker: a page that cannot be read is the caller's to read (and report) itself."""
    try:
        with gc_paused():
            return read(content)
    except Exception:  # noqa: BLE001 -- the caller's own read raises the error it reports
        return None
