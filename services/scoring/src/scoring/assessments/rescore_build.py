"""Inside the rescore's worker process (``rescore_worker``): each chunk read, scored, built and
encoded as the COPY streams the service sends -- assessments, current rows of households that
have none, outbox rows -- with the arrays that update the others' current rows in place."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from itertools import compress
from multiprocessing.connection import Connection

from servicekit.collector import gc_paused
from servicekit.db import Database
from scoring.assessments import repository as repo
from scoring.assessments.rescore_worker import Chunk, Job
from scoring.assessments.service import pending
from scoring.assessments.tables import Assessment, CurrentAssessment
from scoring.bulk import outbox_copy_data
from scoring.copy_format import encode, kinds
from scoring.engine import records
from scoring.engine.records import ASSESSMENT_COLUMNS, CURRENT_COLUMNS

ASSESSMENT_KINDS = kinds(Assessment.__table__, ASSESSMENT_COLUMNS)
CURRENT_KINDS = kinds(CurrentAssessment.__table__, CURRENT_COLUMNS)
_NUMBER, _ASSESSED_AT = CURRENT_COLUMNS.index("number"), CURRENT_COLUMNS.index("assessed_at")


async def rescore(job: Job, conn: Connection) -> None:
    """Every open household, chunk by chunk, sent on ``conn``; the next chunk is read while this
    one is built."""
    db = Database(job.url, schema=job.schema, pool_size=1)
    try:
        async with db.sessionmaker() as reader:
            chunks = aiter(repo.population(reader, job.chunk_size))
            position = job.first_position
            reading = asyncio.ensure_future(anext(chunks, None))
            try:
                while (read := await reading) is not None:
                    rows, previous = read
                    work = await pending(reader, job.runtime, rows, cause=job.cause, force=True, previous=previous)
                    reading = asyncio.ensure_future(anext(chunks, None))
                    chunk = await asyncio.to_thread(built, work, position, job.traceparent)
                    position += chunk.events
                    await asyncio.to_thread(send, conn, chunk)
            finally:
                if not reading.done():
                    reading.cancel()
                await chunks.aclose()
    finally:
        await db.dispose()


def built(work, position: int, traceparent: str | None) -> Chunk:
    """One chunk's rows and events as COPY streams (``position``: its first event's)."""
    with gc_paused():
        batch = work.compute(rows=False)
        return encoded(batch, position, traceparent, datetime.now(UTC))


def encoded(batch: records.Batch, position: int, traceparent: str | None, created_at: datetime) -> Chunk:
    columns = batch.current_columns
    hids = columns[0]
    known = [number > 1 for number in columns[_NUMBER]]  # number 1: no current row to update
    assessments = encode(ASSESSMENT_COLUMNS, ASSESSMENT_KINDS, batch.assessment_columns)
    update = fresh = None
    if any(known):
        have = columns if all(known) else [list(compress(c, known)) for c in columns]
        update = repo.update_arrays(have[1], [have[i] for i in repo.OWN_AT])
        if not all(known):
            unknown = [not k for k in known]
            fresh = [list(compress(c, unknown)) for c in columns]
    else:
        fresh = columns
    current = encode(CURRENT_COLUMNS, CURRENT_KINDS, fresh) if fresh is not None else None
    outbox = list(outbox_copy_data(position, batch.events, traceparent, created_at)) if batch.events else []
    return Chunk(
        households=len(hids), low=min(hids), high=max(hids), assessed_at=columns[_ASSESSED_AT][0],
        levels=batch.levels, first_position=position, events=len(batch.events),
        assessment_columns=assessments.columns, current_columns=current.columns if current is not None else None,
        update=update, counts=(len(assessments.blocks), len(current.blocks) if current is not None else 0, len(outbox)),
        assessments=assessments.blocks, current=current.blocks if current is not None else [], outbox=outbox,
    )


def send(conn: Connection, chunk: Chunk) -> None:
    blocks = (chunk.assessments, chunk.current, chunk.outbox)
    chunk.assessments, chunk.current, chunk.outbox = [], [], []  # sent as bytes, not pickled
    conn.send(chunk)
    for part in blocks:
        for block in part:
            conn.send_bytes(block)
