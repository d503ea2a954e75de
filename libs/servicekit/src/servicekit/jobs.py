"""Periodic background jobs that run on one replica at a time (sweepers, pruning).

A job holds the same kind of lease as a feed consumer, runs every ``interval`` seconds with a
little jitter, logs failures without their contents and stops between runs on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from servicekit.db import Database
from servicekit.events.consumer import Lease, make_lease

log = logging.getLogger(__name__)


class PeriodicJob:
    def __init__(
        self, name: str, interval: float, run_once: Callable[[], Awaitable[object]], *, db: Database, lease: Lease | None = None
    ) -> None:
        self.name = name
        self.interval = interval
        self.run_once = run_once
        self.lease = lease or make_lease(db, f"job:{name}")
        self._stopping = asyncio.Event()
        self.runs = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self.lease.acquire():
                    try:
                        while not self._stopping.is_set() and await self.lease.still_held():
                            await self.run_once()
                            self.runs += 1
                            await self._sleep(self.interval * (0.9 + 0.2 * random.random()))
                    finally:
                        await self.lease.release()
                else:
                    await self._sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("job %s failed (%s); next try in %.0fs", self.name, type(exc).__name__, self.interval)
                await self._sleep(self.interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def feed_pruning_job(db: Database, retention_days: int, interval: float = 3600.0) -> PeriodicJob:
    from servicekit.events.feed import prune

    return PeriodicJob("prune-feed", interval, lambda: prune(db, timedelta(days=retention_days)), db=db)
