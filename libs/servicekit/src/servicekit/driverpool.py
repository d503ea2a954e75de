"""asyncpg connections for single statements (``Database.driver_connection``), pooled plainly.

asyncpg's own pool does more than a single statement in autocommit needs, and it costs: a proxy
object per acquire that every call goes through, a task (``asyncio.shield``) and a timeout scope
per release, a reset hook awaited each time. At 32 concurrent reads that came to ~30 us of CPU
per statement, more than the statement's own round trip (bench/registry_read.py; numbers in
docs/registry.md). Here a connection is a plain ``asyncpg.Connection`` taken from a stack of idle
ones or opened while fewer than ``max_size`` are; otherwise the caller waits in line and is
handed the next one released. A connection whose user raised, that is closed, or that is left
inside a transaction is never reused: it is terminated and its place freed; one the server
closed while it was idle is passed over when taken. As asyncpg's pool
does, a connection left idle for ``max_idle`` seconds (300) is closed: the least recently used
one is looked at whenever one is taken or given back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any


class DriverPool:
    def __init__(self, connect: Callable[[], Awaitable[Any]], max_size: int, max_idle: float = 300.0) -> None:
        self._connect = connect
        self.max_size = max_size
        self.max_idle = max_idle
        self.size = 0  # open or being opened
        self._idle: deque[tuple[Any, float]] = deque()  # (connection, when it was given back), newest last
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._closing: set[asyncio.Future[Any]] = set()
        self._closed = False

    def connection(self) -> _Use:
        """``async with pool.connection() as connection``: a connection for the block, given back
        after it (terminated instead if the block raised or left it in a transaction)."""
        return _Use(self)

    async def _acquire(self) -> Any:
        while True:
            if self._closed:
                raise RuntimeError("the driver pool is closed")
            self._close_stale()
            while self._idle:
                connection = self._idle.pop()[0]
                if not connection.is_closed():
                    return connection
                self.size -= 1  # the server dropped it while it was idle (a restart, a fail-over)
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
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()  # handed a connection, or a free place, just as it was cancelled
                    if handed is not None:
                        self._release(handed)
                    else:
                        self._wake(None)  # pass the place on: the next in line would otherwise wait for a release
                raise
            if connection is not None:
                return connection
            # None: a place was freed; go round and open a connection.

    def _release(self, connection: Any) -> None:
        if self._closed:
            self._discard(connection)
        elif not self._wake(connection):
            self._idle.append((connection, time.monotonic()))
            self._close_stale()

    def _discard(self, connection: Any) -> None:
        connection.terminate()
        self.size -= 1
        self._wake(None)

    def _close_stale(self) -> None:
        if self._idle and time.monotonic() - self._idle[0][1] > self.max_idle:
            connection = self._idle.popleft()[0]
            self.size -= 1
            closing = asyncio.ensure_future(connection.close(timeout=5))  # politely: the server logs no error
            self._closing.add(closing)
            closing.add_done_callback(self._closed_one)

    def _closed_one(self, closing: asyncio.Future[Any]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled():
            closing.exception()  # retrieved: a connection the server already dropped needs no report

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
        idle, self._idle = [c for c, _ in self._idle], deque()
        self.size -= len(idle)
        for waiter in self._waiting:
            if not waiter.done():
                waiter.cancel()
        self._waiting.clear()
        await asyncio.gather(*(c.close() for c in idle), *self._closing, return_exceptions=True)


class _Use:
    """One use of a pooled connection. A class rather than ``@asynccontextmanager``, whose
    generator machinery cost ~1% of a household read's CPU here and as much again in
    ``Database.driver_connection`` above it."""

    __slots__ = ("pool", "connection")

    def __init__(self, pool: DriverPool) -> None:
        self.pool = pool
        self.connection: Any = None

    async def __aenter__(self) -> Any:
        self.connection = await self.pool._acquire()
        return self.connection

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        connection, self.connection = self.connection, None
        if kind is not None or connection.is_closed() or connection.is_in_transaction():
            self.pool._discard(connection)
        else:
            self.pool._release(connection)
