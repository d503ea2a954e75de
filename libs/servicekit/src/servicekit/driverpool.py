"""asyncpg connections for single statements (``Database.driver_connection``), pooled plainly.

asyncpg's own pool does more than a single statement in autocommit needs, and it costs: a proxy
object per acquire that every call goes through, a task (``asyncio.shield``) and a timeout scope
per release, a reset hook awaited each time. At 32 concurrent reads that came to ~30 us of CPU
per statement, more than the statement's own round trip (bench/registry_read.py; numbers in
docs/registry.md). Here a connection is a plain ``asyncpg.Connection`` taken from a stack of idle
ones or opened while fewer than ``max_size`` are; otherwise the caller waits in line and is
handed the next one released. A connection whose user raised, that is closed, or that is left
inside a transaction is never reused: it is terminated and its place freed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any


class DriverPool:
    def __init__(self, connect: Callable[[], Awaitable[Any]], max_size: int) -> None:
        self._connect = connect
        self.max_size = max_size
        self.size = 0  # open or being opened
        self._idle: list[Any] = []
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        connection = await self._acquire()
        try:
            yield connection
        except BaseException:
            self._discard(connection)
            raise
        if connection.is_closed() or connection.is_in_transaction():
            self._discard(connection)
        else:
            self._release(connection)

    async def _acquire(self) -> Any:
        while True:
            if self._closed:
                raise RuntimeError("the driver pool is closed")
            if self._idle:
                return self._idle.pop()
            if self.size < self.max_size:
                self.size += 1
                try:
                    return await self._connect()
                except BaseException:
                    self.size -= 1
                    self._wake(None)
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._release(waiter.result())  # handed one just as it was cancelled
                raise
            if connection is not None:
                return connection
            # None: a place was freed; go round and open a connection.

    def _release(self, connection: Any) -> None:
        if self._closed:
            self._discard(connection)
        elif not self._wake(connection):
            self._idle.append(connection)

    def _discard(self, connection: Any) -> None:
        connection.terminate()
        self.size -= 1
        self._wake(None)

    def _wake(self, connection: Any) -> bool:
        """Hand ``connection`` (or, with None, a free place) to the first caller still waiting."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        self.size -= len(idle)
        for waiter in self._waiting:
            if not waiter.done():
                waiter.cancel()
        self._waiting.clear()
        await asyncio.gather(*(c.close() for c in idle), return_exceptions=True)
