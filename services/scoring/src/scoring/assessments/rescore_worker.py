"""A city's rescore built in a worker process (PostgreSQL): the process reads the chunks on a
connection of its own, scores them, builds the rows and events and encodes them as binary COPY
streams; the service's event loop only sends those bytes, inside its own transaction.

In one interpreter the event loop (the driver encoding the COPY rows) and a worker thread (the
build) took turns on the GIL; with the build and the encoding in another process, the two cores
go to the worker and to PostgreSQL. The worker is started with the service and kept; it serves
one rescore at a time. Anything wrong -- the worker failing, dying, or the service's side
failing or being cancelled mid-way -- ends the worker (a new one starts for the next rescore)
and fails the rescore: its transaction is rolled back, nothing of it stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from scoring.engine.runtime import ModelRuntime

log = logging.getLogger(__name__)


class RescoreFailed(RuntimeError):
    """The worker process could not build the rescore (its error, or it died)."""


@dataclass
class Job:
    runtime: ModelRuntime
    url: str
    schema: str | None
    chunk_size: int
    cause: str
    first_position: int  # the outbox position of the rescore's first event (the sequencer is held)
    traceparent: str | None


@dataclass
class Chunk:
    """One chunk of households as the worker hands it back, ready to be copied in."""

    households: int
    low: str  # the chunk's range of household ids
    high: str
    assessed_at: datetime
    levels: dict[int, int]
    first_position: int
    events: int
    assessment_columns: list[str]
    current_columns: list[str] | None  # rows of households without a current one (None: none)
    update: list[Any] | None  # arrays for the in-place update of households with one (None: none)
    counts: tuple[int, int, int] = (0, 0, 0)  # blocks of assessments, current rows, outbox
    assessments: list[bytes] = field(default_factory=list)
    current: list[bytes] = field(default_factory=list)
    outbox: list[bytes] = field(default_factory=list)


@dataclass
class Usage:
    """What the worker spent on its last rescore."""

    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0


class RescoreWorker:
    """The service's side: starts, feeds and stops the worker process."""

    def __init__(self) -> None:
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._busy = asyncio.Lock()
        self._ready = False  # the running process said it is ready
        self.last = Usage()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the process unless it runs (it imports and is ready in a few seconds; a rescore
        sent meanwhile waits for it)."""
        if self._process is not None and self._process.is_alive():
            return
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs,), name="scoring-rescore", daemon=True)
        process.start()
        theirs.close()
        self._process, self._conn, self._ready = process, ours, False

    async def ready(self) -> None:
        """Wait until the started process has its modules imported."""
        self.start()
        if self._ready:
            return
        conn = self._conn
        assert conn is not None
        try:
            await asyncio.to_thread(_expect, conn, "ready")
        except BaseException:
            self._end()
            conn.close()
            raise
        self._ready = True

    async def stop(self, grace: float = 5.0) -> None:
        process, conn, ready = self._process, self._conn, self._ready
        self._process = self._conn = None
        if process is None or conn is None:
            return
        if not ready and conn.poll(0):  # it said so, and nobody has asked yet
            with contextlib.suppress(Exception):
                ready = _expect(conn, "ready") is None
        if not ready:  # still importing: nothing of its own to finish
            process.kill()
        with contextlib.suppress(OSError):
            conn.send(None)
        await asyncio.to_thread(process.join, grace)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, grace)
        conn.close()

    def _end(self) -> Connection | None:
        """Kill the process; its connection is the caller's to close once nothing reads it (a
        thread blocked on it gets end-of-file now that the other side is gone)."""
        process, conn = self._process, self._conn
        self._process, self._conn, self._ready = None, None, False
        if process is not None:
            process.kill()
            process.join(5)
        return conn

    async def rescore(self, job: Job) -> AsyncIterator[Chunk]:
        """The chunks of a rescore as the worker builds them; the next one is received while the
        caller writes this one."""
        async with self._busy:
            await self.ready()
            conn = self._conn
            assert conn is not None
            ok = False
            receiving: asyncio.Future[Chunk | Usage] | None = None
            try:
                conn.send(job)
                receiving = asyncio.ensure_future(asyncio.to_thread(_receive, conn))
                while not isinstance(got := await receiving, Usage):
                    receiving = asyncio.ensure_future(asyncio.to_thread(_receive, conn))
                    yield got
                receiving = None
                self.last = got
                ok = True
            finally:
                if not ok:  # failed or abandoned mid-way: the worker's state is unknown
                    self._end()
                    if receiving is not None:
                        with contextlib.suppress(Exception):
                            await receiving
                    conn.close()


def _expect(conn: Connection, what: str) -> Any:
    try:
        message = conn.recv()
    except (EOFError, OSError) as exc:
        raise RescoreFailed("the rescore worker process stopped") from exc
    if isinstance(message, tuple) and message and message[0] == "error":
        raise RescoreFailed(f"the rescore worker failed: {message[1]}")
    if message[0] != what:
        raise RescoreFailed(f"the rescore worker sent {message[0]!r}, not {what!r}")
    return message[1]


def _receive(conn: Connection) -> Chunk | Usage:
    try:
        return _read(conn)
    except (EOFError, OSError) as exc:
        raise RescoreFailed("the rescore worker process stopped") from exc


def _read(conn: Connection) -> Chunk | Usage:
    message = conn.recv()
    if isinstance(message, Usage):
        return message
    if not isinstance(message, Chunk):
        raise RescoreFailed(f"the rescore worker failed: {message[1]}" if isinstance(message, tuple)
                            else "the rescore worker sent something unexpected")
    a, c, o = message.counts
    message.assessments = [conn.recv_bytes() for _ in range(a)]
    message.current = [conn.recv_bytes() for _ in range(c)]
    message.outbox = [conn.recv_bytes() for _ in range(o)]
    return message


# ---- the worker process -------------------------------------------------------------------------

def serve(conn: Connection) -> None:
    """The worker's main: one rescore after another, until told to stop or the service goes."""
    import gc
    import resource

    try:
        from scoring.assessments.rescore_build import rescore  # the heavy imports, once
    except BaseException:  # noqa: BLE001 -- told to the service, which fails the rescore
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc(limit=5)))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        started = time.process_time()
        try:
            gc.disable()  # during a rescore: the rows in flight are all alive, rescanning them costs
            asyncio.run(rescore(job, conn))
        except BaseException:  # noqa: BLE001
            with contextlib.suppress(OSError):
                conn.send(("error", traceback.format_exc(limit=5)))
            return
        finally:
            gc.enable()
        conn.send(Usage(time.process_time() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
        gc.collect()  # what the rescore left (the connection's, the session's cycles), while idle

