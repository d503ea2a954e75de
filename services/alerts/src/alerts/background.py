"""Background work of the service, each loop under a lease so that with many replicas exactly
one runs it: the overdue sweeper (with feed housekeeping) and the webhook dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI

from servicekit.events import make_lease
from servicekit.events.consumer import Lease
from servicekit.events.feed import prune

from alerts.overdue.service import sweep
from alerts.settings import AlertsSettings
from alerts.subscription.dispatcher import Dispatcher

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


class LeasedLoop:
    """Runs ``step`` every ``interval`` seconds while holding ``lease``; ``wake()`` runs it sooner."""

    def __init__(self, name: str, lease: Lease, step: Callable[[], Awaitable[object]], interval: float) -> None:
        self.name, self.lease, self.step, self.interval = name, lease, step, interval
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                if not await self.lease.acquire():
                    await self._pause(5.0)
                    continue
                try:
                    while not self._stop.is_set() and await self.lease.still_held():
                        await self.step()
                        backoff = 1.0
                        await self._pause(self.interval)
                finally:
                    await self.lease.release()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("%s failed (%s); retrying in %.1fs", self.name, type(exc).__name__, backoff)
                await self._pause(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 60.0)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


async def start_background(app: FastAPI) -> None:
    settings: AlertsSettings = app.state.settings
    db, profile = app.state.db, app.state.profile
    loops: list[LeasedLoop] = []
    dispatcher = Dispatcher.from_app(app)
    app.state.dispatcher = dispatcher
    if settings.run_sweeper:
        last_prune = [0.0]

        async def sweep_step() -> None:
            result = await sweep(db, profile, settings.sweep_batch)
            if result.warned or result.overdue:
                log.info("sweep: %d warned, %d overdue", result.warned, result.overdue)
            if time.monotonic() - last_prune[0] > PRUNE_EVERY_SECONDS:
                last_prune[0] = time.monotonic()
                await prune(db, timedelta(days=settings.feed_retention_days))

        loops.append(LeasedLoop("sweeper", make_lease(db, "alerts-sweeper"), sweep_step, settings.sweep_interval_seconds))
    if settings.run_dispatcher:
        loop = LeasedLoop("dispatcher", make_lease(db, "alerts-dispatcher"), dispatcher.run_once, settings.webhook_poll_seconds)
        dispatcher.on_wake(loop.wake)
        loops.append(loop)
    app.state.background = [(loop, asyncio.create_task(loop.run(), name=f"alerts:{loop.name}")) for loop in loops]


async def stop_background(app: FastAPI) -> None:
    for loop, _task in getattr(app.state, "background", []):
        loop.stop()
    tasks = [task for _loop, task in getattr(app.state, "background", [])]
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=15.0)
        for task in pending:
            task.cancel()
    dispatcher = getattr(app.state, "dispatcher", None)
    if dispatcher is not None:
        await dispatcher.aclose()
