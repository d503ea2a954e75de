"""Incremental matching on its own: a moment after needs or offers change (debounced, so a batch
of referrals is one run), one run at a time. A failed run is logged and retried on the next change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Runner = Callable[[], Awaitable[object]]


class Matcher:
    def __init__(self, runner: Runner, delay_seconds: float) -> None:
        self.runner = runner
        self.delay = delay_seconds
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    @property
    def enabled(self) -> bool:
        return self.delay > 0

    def poke(self) -> None:
        """Something changed: run soon (called after the change commits)."""
        if self.enabled:
            self._wanted.set()

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="matcher")
            self._wanted.set()  # catch up with whatever arrived while we were down

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(self.delay)
            self._wanted.clear()
            try:
                await self.runner()
                self.runs += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next change retries; the data stays as committed
                log.error("incremental matching failed (%s)", type(exc).__name__, exc_info=exc)
