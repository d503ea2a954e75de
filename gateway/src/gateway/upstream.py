"""The hop to the services: a lean HTTP/1.1 client with a keep-alive pool per service.

aiohttp's client spends more CPU per request than everything else the gateway does together;
this one writes the request in one piece and parses the answer with httptools (the parser
uvicorn uses), so the proxy pays for little more than the two socket writes. It handles only
what the hop needs: plain HTTP/1.1 to the suite's services, which frame every answer with
Content-Length or chunked encoding (as uvicorn does), streamed bodies both ways, timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httptools


class UpstreamError(Exception):
    """The exchange with a service failed before its answer was complete."""


class ConnectFailed(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class Disconnected(UpstreamError):
    pass


class BodySourceFailed(UpstreamError):
    """Reading the request body from the client failed; the cause says why."""


# Stop reading from a service while this much of its answer waits for a slow client.
_HIGH_WATER = 256 * 1024


class Listener(Protocol):
    """Callback-driven exchanges (the gateway's fast path) receive the answer through these."""

    def upstream_head(self, conn: _Connection) -> None: ...
    def upstream_body(self, conn: _Connection, chunk: bytes) -> None: ...
    def upstream_complete(self, conn: _Connection) -> None: ...
    def upstream_failed(self, conn: _Connection, exc: BaseException) -> None: ...


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one exchange at a time.

    An exchange either awaits futures (``UpstreamPool.request``) or, with a ``listener``, is
    told of each part of the answer from the protocol callbacks themselves, without a task.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self._reset()

    def _reset(self, listener: Listener | None = None) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.listener = listener
        self.head: asyncio.Future[None] | None = None if listener else self.loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.write_ready: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Disconnected(f"malformed answer: {type(exc).__name__}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(Disconnected("the service closed the connection"))
        if self.write_ready is not None and not self.write_ready.done():
            self.write_ready.set_exception(Disconnected("the service closed the connection"))

    def pause_writing(self) -> None:
        self.write_ready = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.write_ready is not None and not self.write_ready.done():
            self.write_ready.set_result(None)
        self.write_ready = None

    # -- httptools callbacks --

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.listener is not None:
            self.listener.upstream_head(self)
        elif self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.listener is not None:
            self.listener.upstream_body(self, body)
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        if self.listener is not None:
            self.listener.upstream_complete(self)
            return
        self._wake()

    # -- helpers --

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        if self.listener is not None:
            listener, self.listener = self.listener, None
            listener.upstream_failed(self, exc)
            return
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved: nobody may be waiting on it
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def drain(self) -> None:
        if self.write_ready is not None:
            await self.write_ready


async def _bounded(future: asyncio.Future[Any], timeout: float, what: str) -> None:
    """Await a future, failing it with UpstreamTimeout after ``timeout`` seconds."""
    if future.done():
        future.result()
        return
    loop = asyncio.get_running_loop()

    def expire() -> None:
        if not future.done():
            future.set_exception(UpstreamTimeout(what))

    handle = loop.call_later(timeout, expire)
    try:
        await future
    finally:
        handle.cancel()


class UpstreamResponse:
    """The answer of a service: status and raw headers at once, the body as it arrives."""

    def __init__(
        self,
        pool: UpstreamPool,
        conn: _Connection,
        writer: asyncio.Task[None] | None,
        head_only: bool,
    ):
        self._pool = pool
        self._conn = conn
        self._writer = writer
        self._head_only = head_only
        self._released = False
        self.status = conn.status
        self.headers = conn.headers
        self.content_length: int | None = None
        for name, value in conn.headers:
            if name.lower() == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    self.content_length = None
        if head_only:
            self.content_length = 0

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.chunks:
                chunk = conn.chunks.popleft()
                conn.buffered -= len(chunk)
                if (
                    conn.reading_paused
                    and conn.buffered <= _HIGH_WATER // 2
                    and conn.transport is not None
                ):
                    conn.reading_paused = False
                    conn.transport.resume_reading()
                yield chunk
                continue
            if conn.complete or self._head_only:
                return
            if conn.error is not None:
                raise conn.error
            conn.waiter = conn.loop.create_future()
            try:
                await _bounded(
                    conn.waiter, self._pool.read_timeout, "the service stopped answering"
                )
            finally:
                conn.waiter = None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_chunks()])

    def release(self) -> None:
        """Give the connection back when the exchange ended cleanly, else close it."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        clean = (
            conn.complete
            and conn.keep_alive
            and not conn.closed
            and not self._head_only
            and (
                self._writer is None
                or (
                    self._writer.done()
                    and not self._writer.cancelled()
                    and self._writer.exception() is None
                )
            )
        )
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._pool.release(conn, reusable=clean)

    def close(self) -> None:
        self._conn.complete = False
        self.release()


class UpstreamPool:
    """Keep-alive connections to one service, at most ``limit`` at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        limit: int,
        keepalive: float,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.host_header = f"{host}:{port}".encode()
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        # At most `limit` exchanges at once; callers beyond wait in line for a slot.
        self._limit = limit
        self._in_use = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    def take_idle(self, listener: Listener) -> _Connection | None:
        """An idle keep-alive connection for ``listener`` at once, or None when there is none
        (or no slot is free): the caller then goes the awaiting way."""
        if self._in_use >= self._limit or self._waiting:
            return None
        conn = self._pop_idle()
        if conn is None:
            return None
        self._in_use += 1
        conn._reset(listener)
        return conn

    def _pop_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive:
                conn.reused = True
                return conn
            conn.close()
            self._all.discard(conn)
        return None

    async def _slot(self) -> None:
        if self._in_use < self._limit and not self._waiting:
            self._in_use += 1
            return
        # Every connection busy: wait as long as a connect may take, then give up rather than
        # queue without bound behind a service that has stalled. A released slot is handed
        # straight to the first waiter, so `_in_use` stays counted.
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await asyncio.wait_for(waiter, self.connect_timeout)
        except TimeoutError:
            raise UpstreamTimeout("no connection to the service came free in time") from None

    def _free_slot(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._in_use -= 1

    async def acquire(self, listener: Listener | None = None) -> _Connection:
        """A connection and its slot: an idle one, else a new one."""
        await self._slot()
        conn = self._pop_idle()
        if conn is not None:
            conn._reset(listener)
            return conn
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop), self.host, self.port),
                self.connect_timeout,
            )
        except TimeoutError:
            self._free_slot()
            raise UpstreamTimeout("connecting to the service timed out") from None
        except OSError as exc:
            self._free_slot()
            raise ConnectFailed(str(exc.strerror or exc)) from None
        except BaseException:
            self._free_slot()
            raise
        self._all.add(conn)
        conn._reset(listener)
        return conn

    def release(self, conn: _Connection, *, reusable: bool) -> None:
        """The exchange is over: keep the connection for the next one, or close it."""
        conn.listener = None
        if reusable and not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)
        self._free_slot()

    def request_head(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> list[bytes]:
        """The request line and headers, without framing or the blank line."""
        head = [method, b" ", target, b" HTTP/1.1\r\nhost: ", self.host_header, b"\r\n"]
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        return head

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        *,
        content_length: int | None = None,
        retry_stale: bool = False,
    ) -> UpstreamResponse:
        """Send one request; return once the answer's status line and headers are in."""
        try:
            return await self._exchange(method, target, headers, body, content_length)
        except _StaleConnection:
            if not retry_stale:
                raise Disconnected("the service closed the connection") from None
            # A pooled connection the service closed just as it was reused: nothing was
            # processed, so a bodiless idempotent request is sent again on a fresh one.
            return await self._exchange(method, target, headers, body, content_length)

    async def _exchange(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        content_length: int | None,
    ) -> UpstreamResponse:
        conn = await self.acquire()
        reused = conn.reused
        head = self.request_head(method.encode(), target, headers)
        # Framing is the client's to decide, never copied from the caller's headers.
        streaming = body is not None and not isinstance(body, bytes)
        if isinstance(body, bytes):
            head += (b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body)
        elif streaming:
            head.append(
                b"transfer-encoding: chunked\r\n\r\n"
                if content_length is None
                else b"content-length: %d\r\n\r\n" % content_length
            )
        elif method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            head.append(b"\r\n")
        else:
            head.append(b"content-length: 0\r\n\r\n")

        writer: asyncio.Task[None] | None = None
        try:
            assert conn.transport is not None
            conn.transport.write(b"".join(head))
            if streaming:
                writer = asyncio.ensure_future(
                    self._write_body(conn, body, declared=content_length)
                )  # type: ignore[arg-type]
                writer.add_done_callback(_on_writer_done(conn))
            try:
                assert conn.head is not None
                await _bounded(conn.head, self.read_timeout, "the service did not answer in time")
            except Disconnected:
                if reused and not streaming:
                    raise _StaleConnection() from None
                raise
        except BaseException:
            if writer is not None and not writer.done():
                writer.cancel()
            self.release(conn, reusable=False)
            raise
        return UpstreamResponse(self, conn, writer, head_only=method == "HEAD")

    async def _write_body(
        self, conn: _Connection, body: AsyncIterator[bytes], *, declared: int | None
    ) -> None:
        """Stream the body; with a declared length, never a byte more or less than declared.

        The connection is shared by many callers over time: a body that overran its length
        would be read by the service as the start of a next request (request smuggling).
        """
        transport = conn.transport
        assert transport is not None
        sent = 0
        try:
            async for chunk in body:
                if not chunk:
                    continue
                if conn.closed:
                    return
                sent += len(chunk)
                if declared is None:
                    transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                elif sent > declared:
                    raise BodySourceFailed("the body is longer than its Content-Length")
                else:
                    transport.write(chunk)
                await conn.drain()
        except BodySourceFailed:
            raise
        except Disconnected:
            return  # the service closed first; the answer side sees it and says why
        except Exception as exc:
            raise BodySourceFailed(type(exc).__name__) from exc
        if declared is not None and sent != declared:
            raise BodySourceFailed("the body is shorter than its Content-Length")
        if declared is None and not conn.closed:
            transport.write(b"0\r\n\r\n")

    async def close(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()


class _StaleConnection(Exception):
    pass


def _on_writer_done(conn: _Connection) -> Any:
    def done(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # The body could not be read from the client: the request is incomplete, so the
            # exchange is over; the proxy looks at the cause.
            conn._fail(exc)
            conn.close()

    return done
