"""Group commit: rows that many concurrent requests write, in one statement and one commit.

A hot read path that must leave a durable record (the audit log of personal data) would otherwise
commit once per request, and each commit waits for its WAL flush: on PostgreSQL that wait and the
commit's own work were most of the database's CPU for an audited read. ``GroupInsert.write``
queues a row and returns only once the statement carrying it has committed -- so a caller that
answers after ``write`` returns never answers without its record -- while the rows queued during
one commit go together in the next (one statement of ``unnest`` arrays, its own transaction on a
driver connection). Under load the groups grow by themselves; alone, a row waits for its own
commit only, as before.

One statement runs at a time. If it fails for the data of a row (a value the table refuses: an
SQLSTATE of class 22 or 23, or a trigger's exception), the group's rows are written again one
statement each, so that only the callers whose own row is refused get ``GroupWriteFailed``: one
reader's record must not fail the reads of everyone else of the moment. Any other failure (the
connection, the server) fails every caller of the group (their rows were not written: the
statement is one transaction); the next group is tried afresh. A caller cancelled while waiting
does not take its row back: the row is written with its group (for the audit log, a record of a
read whose answer was never sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson

log = logging.getLogger(__name__)

MAX_ROWS = 1000


class GroupWriteFailed(RuntimeError):
    """The statement carrying the caller's row failed; the row was not written."""


class GroupInsert:
    """Rows for ``sql``, an ``INSERT`` that reads the group from its one parameter, a JSON array
    with an object per row (``json_populate_recordset``), in the rows' order; ``connect`` opens a
    connection for each statement (``Database.driver_connection``). One text parameter: as one
    array per column, asyncpg checked every value against an abstract base class (~21 checks
    for an audit record, a few percent of a household read's CPU)."""

    def __init__(self, connect: Any, sql: str, *, max_rows: int = MAX_ROWS, name: str = "group insert") -> None:
        self._connect = connect
        self.sql = sql
        self.max_rows = max_rows
        self.name = name
        self._pending: list[tuple[Mapping[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.groups = 0  # statements committed (tests and probes)

    async def write(self, row: Mapping[str, Any]) -> None:
        """Queue ``row`` (its values by column, as orjson encodes them) and return once it is
        committed."""
        if self._closed:
            raise GroupWriteFailed(f"{self.name}: closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
        await future

    async def close(self) -> None:
        """Refuse new rows and wait for the queued ones to be written."""
        self._closed = True
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while self._pending:
                group = self._pending[:self.max_rows]
                del self._pending[:self.max_rows]
                if await self._write(group):
                    for i, one in enumerate(group):
                        try:
                            await self._write([one])
                        except BaseException as exc:  # stopped: the rows not yet tried are not written
                            self._fail(group[i + 1:], exc)
                            raise
        finally:
            self._task = None
            # Rows still queued here mean the task was stopped (cancelled with the event loop).
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(GroupWriteFailed(f"{self.name}: stopped before the row was written"))
            self._pending.clear()

    async def _write(self, group: list[tuple[Mapping[str, Any], asyncio.Future[None]]]) -> bool:
        """One statement for ``group``; settles its callers unless the statement failed for the
        data of a row and the group is to be written again row by row (returns True then)."""
        try:
            async with self._connect() as connection:
                await connection.execute(self.sql, orjson.dumps([row for row, _ in group]).decode())
        except BaseException as exc:
            if len(group) > 1 and isinstance(exc, Exception) and _refused_row(exc):
                return True
            self._fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            log.error("%s: a group of %d rows was not written (%s)", self.name, len(group), type(exc).__name__)
            return False
        self.groups += 1
        for _, future in group:
            if not future.done():
                future.set_result(None)
        return False

    def _fail(self, group: list[tuple[Mapping[str, Any], asyncio.Future[None]]], exc: BaseException) -> None:
        """Not written, none of them (one statement, one transaction): each caller gets its own
        exception, the cause chained, never the rows' values."""
        for _, future in group:
            if not future.done():
                failed = GroupWriteFailed(f"{self.name}: the group's statement failed ({type(exc).__name__})")
                failed.__cause__ = exc
                future.set_exception(failed)


# SQLSTATE classes of a row the table refuses: data exception (22), integrity constraint
# violation (23), an exception raised by a trigger or function (P0).
_ROW_REFUSED = ("22", "23", "P0")


def _refused_row(exc: Exception) -> bool:
    return str(getattr(exc, "sqlstate", "") or "").startswith(_ROW_REFUSED)
