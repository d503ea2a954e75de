"""Group commit: what many concurrent requests read and write, in one statement and one commit.

A hot read path that must leave a durable record (the audit log of personal data) would otherwise
commit once per request, and each commit waits for its WAL flush: on PostgreSQL that wait and the
commit's own work were most of the database's CPU for an audited read. A ``GroupStatement``
queues a caller's item and returns only once the statement carrying it has committed -- so a
caller that answers after it returns never answers without its record -- while the items queued
during one statement go together in the next (the group as one JSON parameter, its own
transaction on a driver connection). Under load the groups grow by themselves; alone, an item
waits for its own statement only.

The statement may read as well as write (``GroupStatement.one``): each row it returns starts with
the ordinal of the item it answers (1 for the group's first), and each caller gets its own row or
None. So a read and its audit record can be one statement for many readers: one round trip, one
plan, one commit for the group, where a statement per read and a group insert for the records
cost the database twice the CPU (see the registry's household read). A statement that only writes
(an ``INSERT`` of the group's rows) answers every caller with None.

At most ``concurrency`` statements run at once. If one fails for the data of
an item (a value the table refuses: an SQLSTATE of class 22 or 23, or a trigger's exception), the
group's items are tried again one statement each, so that only the callers whose own item is
refused get ``GroupWriteFailed``: one reader's record must not fail the reads of everyone else of
the moment. Any other failure (the connection, the server) fails every caller of the group
(nothing of it was written: the statement is one transaction); the next group is tried afresh. A
caller cancelled while waiting does not take its item back: it goes with its group (for the
audit log, a record of a read whose answer was never sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson

log = logging.getLogger(__name__)

MAX_ROWS = 1000

_Queued = tuple[Mapping[str, Any], "asyncio.Future[Any]"]


class GroupWriteFailed(RuntimeError):
    """The statement carrying the caller's item failed; nothing of it was written."""


class GroupStatement:
    """Items for ``sql``, a statement that reads the group from its one parameter, a JSON array
    with an object per item (``json_populate_recordset``, ``json_array_elements ... WITH
    ORDINALITY``), in the items' order; ``connect`` opens a connection for each statement
    (``Database.driver_connection``). One text parameter: as one array per column, asyncpg
    checked every value against an abstract base class (~21 checks for an audit record, a few
    percent of a household read's CPU)."""

    def __init__(self, connect: Any, sql: str, *, max_rows: int = MAX_ROWS, concurrency: int = 1,
                 name: str = "group statement") -> None:
        self._connect = connect
        self.sql = sql
        self.max_rows = max_rows
        self.concurrency = concurrency
        self.name = name
        self._pending: list[_Queued] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.groups = 0  # statements committed (tests and probes)

    async def one(self, item: Mapping[str, Any]) -> Any:
        """Queue ``item`` (its values by name, as orjson encodes them) and return, once the
        statement carrying it has committed, the row the statement gave for it (None if none)."""
        if self._closed:
            raise GroupWriteFailed(f"{self.name}: closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._tasks) < self.concurrency:
            task = asyncio.create_task(self._run(), name=self.name)
            self._tasks.add(task)
        return await future

    async def close(self) -> None:
        """Refuse new items and wait for the queued ones to be written."""
        self._closed = True
        while self._tasks:
            await asyncio.shield(asyncio.gather(*self._tasks, return_exceptions=True))

    async def _run(self) -> None:
        try:
            while self._pending:
                group = self._pending[:self.max_rows]
                del self._pending[:self.max_rows]
                if await self._execute(group):
                    for i, one in enumerate(group):
                        try:
                            await self._execute([one])
                        except BaseException as exc:  # stopped: the items not yet tried are not written
                            self._fail(group[i + 1:], exc)
                            raise
        finally:
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            if not self._tasks:
                # Items still queued here mean the task was stopped (cancelled with the event loop).
                for _, future in self._pending:
                    if not future.done():
                        future.set_exception(GroupWriteFailed(f"{self.name}: stopped before the row was written"))
                self._pending.clear()

    async def _execute(self, group: list[_Queued]) -> bool:
        """One statement for ``group``; settles its callers unless the statement failed for the
        data of an item and the group is to be tried again item by item (returns True then)."""
        try:
            async with self._connect() as connection:
                rows = await connection.fetch(self.sql, orjson.dumps([item for item, _ in group]).decode())
        except BaseException as exc:
            if len(group) > 1 and isinstance(exc, Exception) and _refused_row(exc):
                return True
            self._fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            log.error("%s: a group of %d rows was not written (%s)", self.name, len(group), type(exc).__name__)
            return False
        self.groups += 1
        answers = {row[0]: row for row in rows}
        for ordinal, (_, future) in enumerate(group, 1):
            if not future.done():
                future.set_result(answers.get(ordinal))
        return False

    def _fail(self, group: list[_Queued], exc: BaseException) -> None:
        """Not written, none of them (one statement, one transaction): each caller gets its own
        exception, the cause chained, never the items' values."""
        for _, future in group:
            if not future.done():
                failed = GroupWriteFailed(f"{self.name}: the group's statement failed ({type(exc).__name__})")
                failed.__cause__ = exc
                future.set_exception(failed)


# SQLSTATE classes of an item the statement's table refuses: data exception (22), integrity
# constraint violation (23), an exception raised by a trigger or function (P0).
_ROW_REFUSED = ("22", "23", "P0")


def _refused_row(exc: Exception) -> bool:
    return str(getattr(exc, "sqlstate", "") or "").startswith(_ROW_REFUSED)
