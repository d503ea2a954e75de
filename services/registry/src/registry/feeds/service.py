"""Department deliveries: a batch streamed line by line and committed chunk by chunk; a single
record in its request's transaction; reports and feed health."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from servicekit.auth import Caller
from servicekit.collector import gc_paused
from servicekit.db import Database, lock_conflict, unit_of_work
from servicekit.errors import Forbidden, PayloadTooLarge, Unprocessable
from servicekit.tables import utcnow

from registry.columns import city_day, new_id
from registry.feeds import repository
from registry.feeds.apply import ChunkResult, FeedContext, LookedUp, Pipeline, Written, apply_chunk, look_up
from registry.feeds.parsing import NUMBERS_KEPT, Record, RecordChecker, Rejection, csv_header, parse_csv_lines, parse_json_line
from registry.feeds.schemas import FeedHealth, FeedRecordIn, RecordOutcome
from registry.feeds.tables import FeedBatch
from registry.profile import CityProfile
from registry.settings import RegistrySettings
from registry.vault import Vault

log = logging.getLogger(__name__)

FORMATS = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
           "application/x-jsonlines": "jsonl", "application/json-seq": "jsonl"}


def feed_context(profile: CityProfile, vault: Vault, caller: Caller,
                 on_events: Callable[[int], Any] | None = None) -> FeedContext:
    now = utcnow()
    return FeedContext(profile, vault, caller, now, city_day(now), on_events)


async def lines_of(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[tuple[int, bytes]]:
    """Numbered lines of a streamed body, never holding more than one network chunk and a line."""
    pending = b""
    number = 0
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"A batch may be at most {limit} bytes; split it.")
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            number += 1
            yield number, line.rstrip(b"\r")
    if pending.strip():
        yield number + 1, pending.rstrip(b"\r")


QUEUED = 2  # checked chunks waiting to be applied
EARLIER_KEPT = 3  # chunks whose changes are kept for the lookups that may not have seen them (2 at most)
COLLECT_EVERY = 100  # chunks of a pipeline between two collections of its garbage cycles (~120 a chunk)
CHECK_SLICE = 500  # lines checked between two turns of the chunk being applied (~3 ms)
CONFLICT_TRIES = 3  # a chunk aborted for another transaction's locks is applied again (BatchRun.apply)
MAX_CSV_RECORD = 64 * 1024


@dataclass(slots=True)
class Checked:
    """A chunk of lines, checked: records and rejections in line order, blind index by number."""

    lines: int
    items: list[Record | Rejection]
    indexes: dict[str, str]


async def csv_records(lines: AsyncIterator[tuple[int, bytes]]) -> AsyncIterator[tuple[int, bytes]]:
    """CSV records from numbered lines: a quoted field may hold line breaks, so a record goes on
    while its quotes are open; it is numbered by its first line. A record that never closes its
    quote stops growing at MAX_CSV_RECORD bytes and goes on as it is (it will not parse)."""
    open_record: tuple[int, bytes] | None = None
    async for number, line in lines:
        if open_record is not None:
            number, line = open_record[0], open_record[1] + b"\n" + line
            open_record = None
        if line.count(b'"') % 2 and len(line) < MAX_CSV_RECORD:
            open_record = (number, line)
            continue
        yield number, line
    if open_record is not None:
        yield open_record


class BatchRun:
    """One batch: created, fed chunk by chunk (each its own transaction), finished."""

    def __init__(self, db: Database, profile: CityProfile, vault: Vault, settings: RegistrySettings,
                 department: str, fmt: str, caller: Caller, on_events: Callable[[int], Any] | None = None) -> None:
        self.db, self.settings, self.department, self.fmt = db, settings, department, fmt
        self.fc = feed_context(profile, vault, caller, on_events)
        self.checker = RecordChecker(department, profile.catalogue, profile.areas, self.fc.today)
        self.batch = FeedBatch(id=new_id(), department=department, format=fmt, status="processing",
                               submitted_by=caller.subject[:128], received_at=self.fc.now)
        self.kept_rejections = 0
        self.committed = 0  # chunks committed (in order)
        self.indexes: dict[str, str] = {}  # blind index by number, across chunks (people recur)
        self.header: list[str] | None = None

    async def run(self, lines: AsyncIterator[tuple[int, bytes]]) -> str:
        """Reading and checking records overlaps with applying them: while one chunk waits on
        the database, the next is read and checked. At most ``QUEUED`` checked chunks wait, so
        memory stays bounded whatever the size of the batch. On PostgreSQL the chunks are
        applied in a pipeline (``pipelined``)."""
        async with unit_of_work(self.db) as session:
            await repository.add_batch(session, self.batch)
        queue: asyncio.Queue[Checked | None] = asyncio.Queue(maxsize=QUEUED)
        reader = asyncio.create_task(self.read(lines, queue))
        in_flight: list[asyncio.Future[Any]] = []
        try:
            if self.db.is_postgres:
                await self.pipelined(queue, in_flight)
            else:
                while (checked := await queue.get()) is not None:
                    with gc_paused():
                        await self.apply(checked)
            await reader  # a failure while reading (too large, bad header) surfaces here
        except BaseException:
            reader.cancel()
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)  # their transactions rolled back
            async with unit_of_work(self.db) as session:
                await repository.finish_batch(session, self.batch.id, "failed", utcnow())
            raise
        async with unit_of_work(self.db) as session:
            await repository.finish_batch(session, self.batch.id, "completed", utcnow())
        return self.batch.id

    async def pipelined(self, queue: asyncio.Queue[Checked | None], in_flight: list[asyncio.Future[Any]]) -> None:
        """Chunk N+1 is looked up (its own connection, no lock) while chunk N is worked out, and
        chunk N+1 is worked out -- records classified, locked, re-applied, views made -- while
        chunk N's writes and commit go on (each chunk its own transaction), so the service's
        Python and PostgreSQL work at the same time. A chunk writes nothing before the one
        before it has committed, and reads what that one and its lookup's unseen predecessors
        change from them (``Written``), not from the database; what they locked it locks only
        after that commit (``apply_chunk``).

        The cyclic collector is paused for the pipeline (a chunk's rows, fact documents and
        views are acyclic and die with it; collections within a chunk cost a tenth of the
        service's CPU for nothing). As chunks overlap it would never run meanwhile: the
        youngest generation is collected every ``COLLECT_EVERY`` chunks, after a commit, and the
        rest as usual once the batch is over. A chunk leaves ~120 objects in cycles (4,860 found
        after the 200k bench without a collection); collecting after each chunk, or the two
        young generations every ten, cost 0.4 s and 0.3 s of its 6 s."""
        written: deque[tuple[int, Written]] = deque(maxlen=EARLIER_KEPT)
        ahead: tuple[int, Checked, asyncio.Task[LookedUp], int] | None = None
        writing: asyncio.Task[None] | None = None
        number = 0
        with gc_paused():
            while True:
                checked = await queue.get()
                following = None
                if checked is not None:
                    number += 1
                    lookup = asyncio.create_task(self.look_up(checked))
                    in_flight.append(lookup)
                    following = (number, checked, lookup, self.committed)
                if ahead is not None:
                    writing = await self.start(ahead, writing, written, in_flight)
                if following is None:
                    break
                ahead = following
                in_flight[:] = [t for t in in_flight if not t.done()]
            if writing is not None:
                await writing

    async def start(self, ahead: tuple[int, Checked, asyncio.Task[LookedUp], int], writing: asyncio.Task[None] | None,
                    written: deque[tuple[int, Written]], in_flight: list[asyncio.Future[Any]]) -> asyncio.Task[None]:
        """Start applying a chunk; return once it is worked out (it is then being written)."""
        number, checked, lookup, seen_through = ahead
        earlier = [w for n, w in written if n > seen_through]
        assert len(earlier) == number - 1 - seen_through, "a chunk the lookup may not have seen was forgotten"
        prepared: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_prepared(w: Written) -> None:
            written.append((number, w))
            prepared.set_result(None)

        task = asyncio.create_task(self.apply(checked, lookup, Pipeline(earlier, writing, on_prepared), number))
        in_flight.append(task)
        await asyncio.wait([task, prepared], return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception() is not None:
            if writing is not None:  # the chunk before, written meanwhile, still commits
                await asyncio.gather(writing, return_exceptions=True)
            task.result()  # the failure surfaces here
        return task

    async def look_up(self, checked: Checked) -> LookedUp:
        async with self.db.sessionmaker() as session:
            return await look_up(session, self.fc, checked.items, checked.indexes, department=self.department)

    async def read(self, lines: AsyncIterator[tuple[int, bytes]], queue: asyncio.Queue[Checked | None]) -> None:
        try:
            chunk: list[tuple[int, bytes]] = []
            if self.fmt == "csv":
                lines = csv_records(lines)
            async for number, line in lines:
                if self.fmt == "csv" and self.header is None:
                    self.header = csv_header(line.decode("utf-8-sig", "replace"))
                    if self.header is None:
                        raise Unprocessable("The first CSV line must be a header naming the record fields.")
                    continue
                if not line.strip():
                    continue
                chunk.append((number, line))
                if len(chunk) >= self.settings.feed_chunk_records:
                    await queue.put(await self.check_in_slices(chunk))
                    chunk = []
            if chunk:
                await queue.put(await self.check_in_slices(chunk))
        finally:
            await queue.put(None)

    async def check_in_slices(self, chunk: list[tuple[int, bytes]]) -> Checked:
        """``check`` a slice at a time, letting the chunk being applied go on in between: checking
        then fills the time the service waits on PostgreSQL rather than holding up the apply
        (~30 ms a chunk in one go)."""
        items: list[Record | Rejection] = []
        indexes: dict[str, str] = {}
        for start in range(0, len(chunk), CHECK_SLICE):
            with gc_paused():
                part = self.check(chunk[start:start + CHECK_SLICE])
            items += part.items
            indexes |= part.indexes
            await asyncio.sleep(0)
        return Checked(len(chunk), items, indexes)

    def check(self, chunk: list[tuple[int, bytes]]) -> Checked:
        """Parse and check the lines of a chunk, and find each person's blind index."""
        if self.fmt == "csv":
            assert self.header is not None
            raws = parse_csv_lines(self.header, (line.decode("utf-8", "replace") for _, line in chunk))
        else:
            raws = [parse_json_line(n, line) for n, line in chunk]
        items = [self.checker.check(n, raw) for (n, _), raw in zip(chunk, raws, strict=True)]
        index, known = self.fc.vault.resident_index, self.indexes
        if len(known) >= NUMBERS_KEPT:
            known.clear()
        indexes = {}
        for r in items:
            if isinstance(r, Record):
                found = known.get(r.number)
                if found is None:
                    found = known[r.number] = index(r.number)
                indexes[r.number] = found
        return Checked(len(chunk), items, indexes)

    async def apply(self, checked: Checked, lookup: asyncio.Task[LookedUp] | None = None,
                    pipeline: Pipeline | None = None, number: int = 0) -> None:
        """Apply and commit one chunk (looked up already, in a pipeline, on PostgreSQL).

        A chunk whose transaction PostgreSQL aborted for another writer's (a deadlock over the
        locks it takes before writing) committed nothing and is applied again, looked up afresh
        in its new transaction, up to ``CONFLICT_TRIES`` times; once it has told the chunks after
        it what it writes (``Pipeline.prepared``), or when the failure is the chunk before's, the
        batch fails as on any other error (a re-sent batch finds the committed chunks unchanged)."""
        looked_up = await lookup if lookup is not None else None
        for attempt in range(1, CONFLICT_TRIES + 1):
            told: list[Written] = []
            this_try = None if pipeline is None else Pipeline(pipeline.earlier, pipeline.committed,
                                                              _telling(pipeline.prepared, told))
            try:
                async with unit_of_work(self.db) as session:
                    result = await apply_chunk(session, self.fc, self.department, checked.items, checked.indexes,
                                               looked_up, pipeline=this_try)
                    kept = await self._count(session, checked, result)
                break
            except Exception as exc:
                before = pipeline.committed if pipeline is not None else None
                theirs = before is not None and before.done() and not before.cancelled() and before.exception() is exc
                if told or theirs or attempt == CONFLICT_TRIES or not lock_conflict(exc):
                    raise
                log.warning("chunk %d of batch %s aborted for a concurrent transaction (%s); applying it again",
                            number, self.batch.id, type(exc).__name__)
                looked_up = None
        self.kept_rejections += len(kept)
        self.committed = number
        if pipeline is not None and number % COLLECT_EVERY == 0:
            gc.collect(0)

    async def _count(self, session: Any, checked: Checked, result: ChunkResult) -> list[Rejection]:
        room = max(0, self.settings.feed_rejections_kept - self.kept_rejections)
        kept = result.rejections[:room]
        await repository.insert_rejections(session, [
            {"batch_id": self.batch.id, "line": r.line, "record_id": r.record_id, "reason_code": r.code,
             "reason": r.reason} for r in kept])
        await repository.count_into_batch(
            session, self.batch.id, lines=checked.lines, applied=result.count("applied"),
            unchanged=result.count("unchanged"), rejected=len(result.rejections), leads=result.count("lead"),
            households_changed=result.households_changed)
        return kept


def _telling(prepared: Callable[[Written], None], told: list[Written]) -> Callable[[Written], None]:
    """``prepared``, remembering in ``told`` that it was called."""
    def tell(written: Written) -> None:
        told.append(written)
        prepared(written)

    return tell


async def single_record(session: Any, profile: CityProfile, vault: Vault, department: str, caller: Caller,
                        body: FeedRecordIn, on_events: Callable[[int], Any] | None = None) -> RecordOutcome:
    fc = feed_context(profile, vault, caller, on_events)
    checker = RecordChecker(department, profile.catalogue, profile.areas, fc.today)
    item = checker.check(1, body.model_dump(mode="json", exclude_none=True) | {"value": body.value})
    if isinstance(item, Rejection):
        if item.code == "item_of_another_department":
            raise Forbidden(item.reason)
        raise Unprocessable(item.reason, reason_code=item.code)
    result = await apply_chunk(session, fc, department, [item], outcomes=True)
    if result.rejections:
        r = result.rejections[0]
        raise Unprocessable(r.reason, reason_code=r.code)
    assert result.outcomes is not None
    outcome = result.outcomes[0]
    batch = FeedBatch(id=new_id(), department=department, format="single", status="completed",
                      submitted_by=caller.subject[:128], received_at=fc.now, finished_at=fc.now, lines=1,
                      applied=int(outcome.outcome == "applied"), unchanged=int(outcome.outcome == "unchanged"),
                      leads=int(outcome.outcome == "lead"), households_changed=result.households_changed)
    await repository.add_batch(session, batch)
    return RecordOutcome(record_id=body.record_id, outcome=outcome.outcome, household_id=outcome.household_id)


async def health(session: Any, profile: CityProfile, now: datetime) -> list[FeedHealth]:
    stats = await repository.health(session, now - timedelta(days=30))
    out = []
    for code, department in profile.catalogue.departments.items():
        s = stats.get(code, {})
        last = s.get("last_delivery")
        if last is not None and last.tzinfo is None:  # SQLite hands back naive UTC
            last = last.replace(tzinfo=now.tzinfo)
        records = s.get("records", 0)
        out.append(FeedHealth(
            department=code, name_zh=department.name_zh, every_hours=department.every_hours, last_delivery=last,
            late=last is None or now - last > timedelta(hours=department.every_hours),
            deliveries_30d=s.get("deliveries", 0), records_30d=records,
            rejection_rate_30d=round(s.get("rejected", 0) / records, 4) if records else None,
            leads_30d=s.get("leads", 0),
        ))
    return out
