"""Assessing households: a batch from the registry's feed, a whole city after an activation,
and an officer's review. Domain logic only flushes; the caller commits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.collector import gc_paused
from servicekit.concurrency import check_version
from servicekit.errors import NotFound, Unprocessable
from servicekit.telemetry import current_traceparent
from scoring.assessments import repository as repo
from scoring.assessments.tables import AssessmentReview, CurrentAssessment
from scoring.assessments.rescore_worker import Job, RescoreFailed, RescoreWorker
from scoring.bulk import copy_outbox, is_postgres, publish_many, take_positions, write_together
from scoring.engine import records
from scoring.engine.records import UNKNOWN_AGES, Subjects
from scoring.engine.runtime import ModelRuntime, dumps
from scoring.engine.runtimes import Runtimes
from scoring.households import repository as households
from scoring.households.repository import SubjectRow
from scoring.models import repository as models_repo
from scoring.rules.validation import RulesContext
from scoring.settings import ScoringSettings

Wake = Callable[[int], None] | None


@dataclass
class Outcome:
    assessed: int = 0
    events: int = 0
    levels: dict[int, int] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)  # same input, same model: left as they were

    def add(self, other: Outcome) -> None:
        self.assessed += other.assessed
        self.events += other.events
        for level, n in other.levels.items():
            self.levels[level] = self.levels.get(level, 0) + n


def facts_json(missing: Sequence[str], invalid: Sequence[str], clamped: Sequence[str]) -> str:
    if not (missing or invalid or clamped):  # most households: every fact known and in range
        return NO_NOTES
    return dumps({"missing": list(missing), "invalid": list(invalid), "clamped": list(clamped)})


NO_NOTES = dumps({"missing": [], "invalid": [], "clamped": []})


async def views_again(session: AsyncSession, ctx: RulesContext, ids: Sequence[str],
                      layouts: Sequence[str]) -> dict[str, Any]:
    """The views among ``ids`` stored under another layout of the contract, prepared again from
    the JSON the registry sent (by household)."""
    stale = [hid for hid, layout in zip(ids, layouts, strict=True) if layout != ctx.view.layout]
    if not stale:
        return {}
    return {hid: ctx.view.prepare(view, missing) for hid, (view, missing) in (await households.views(session, stale)).items()}


def stacked(ctx: RulesContext, ids: Sequence[str], features: Sequence[bytes], again: Mapping[str, Any]) -> np.ndarray:
    """The stored facts as a (fields x households) matrix, those prepared ``again`` instead of
    their stored row."""
    if again:
        features = [again[hid].row.tobytes() if hid in again else f for hid, f in zip(ids, features, strict=True)]
    return np.frombuffer(b"".join(features), dtype=np.float64).reshape(len(ids), len(ctx.view)).T.copy()


async def matrix_of(session: AsyncSession, ctx: RulesContext, ids: Sequence[str], features: Sequence[bytes],
                    layouts: Sequence[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """The facts of households given by columns as a (fields x households) matrix, and the views
    prepared again (another layout) by household."""
    again = await views_again(session, ctx, ids, layouts)
    return stacked(ctx, ids, features, again), again


def subjects_of(ctx: RulesContext, rows: Sequence[SubjectRow], matrix: np.ndarray, again: Mapping[str, Any],
                triggers: Mapping[str, str]) -> Subjects:
    """The households as the rows and events name them (``matrix`` column i is ``rows[i]``)."""
    if not rows:
        return Subjects(*([] for _ in Subjects.__slots__))
    (hids, versions, areas, townships, districts, labels, inputs, facts, _features, _layouts,
     ages) = (list(column) for column in zip(*rows, strict=True))
    if again:  # views prepared again under another layout: what preparing found now
        for i, hid in enumerate(hids):
            prepared = again.get(hid)
            if prepared is not None:
                facts[i] = facts_json(prepared.missing, prepared.invalid, prepared.clamped)
    if None in ages:
        ages = [UNKNOWN_AGES if a is None else a for a in ages]
    return Subjects(hids, versions, areas, townships, districts, labels, inputs, facts,
                    list(map(triggers.get, hids, repeat("[]"))), records.household_types(ctx.view, matrix), ages)


@dataclass
class Pending:
    """Households whose facts are read, ready to be scored and turned into rows (no database:
    a worker thread may do it)."""

    rt: ModelRuntime
    rows: Sequence[SubjectRow]
    again: Mapping[str, Any]  # views prepared again (another layout), by household
    triggers: Mapping[str, str]
    previous: Mapping[str, records.Previous]
    cause: str
    unchanged: list[str]

    def compute(self, rows: bool = True) -> records.Batch:
        with gc_paused():
            # The matrix is stacked here, not where the facts are read: in a rescore the event
            # loop is then free to stream the previous chunk's rows (~30 ms a chunk of 20,000).
            ctx = self.rt.ctx
            matrix = stacked(ctx, [r.household_id for r in self.rows], [r.features for r in self.rows], self.again)
            subjects = subjects_of(ctx, self.rows, matrix, self.again, self.triggers)
            return records.build(self.rt, self.rt.evaluate(matrix), subjects, self.previous, self.cause,
                                 datetime.now(UTC), rows=rows)


async def pending(session: AsyncSession, rt: ModelRuntime, rows: Sequence[SubjectRow], *, cause: str,
                  triggers: Mapping[str, str] | None = None, force: bool = False,
                  previous: Mapping[str, records.Previous] | None = None) -> Pending:
    """Read what assessing ``rows`` needs; unless ``force``, a household whose input and model
    are those of its current assessment is left as it is. ``previous`` when the caller has it."""
    if previous is None:
        previous = await repo.previous(session, [r.household_id for r in rows]) if rows else {}
    unchanged: list[str] = []
    if not force:
        keep = []
        for r in rows:
            p = previous.get(r.household_id)
            if p is not None and p.input_hash == r.input_hash and p.model_version == rt.version:
                unchanged.append(r.household_id)
            else:
                keep.append(r)
        rows = keep
    again = await views_again(session, rt.ctx, [r.household_id for r in rows], [r.layout for r in rows])
    return Pending(rt, rows, again, triggers or {}, previous, cause, unchanged)


async def write(session: AsyncSession, batch: records.Batch, settings: ScoringSettings, *, wake: Wake = None,
                whole_range: bool = False) -> Outcome:
    if is_postgres(session) and not whole_range and 0 < len(batch.current) < settings.copy_threshold:
        # A few households (one change from the feed): rows and events in one round trip.
        n = len(batch.current)
        await write_together(session, ("assessments", n), lambda: repo.small_writes(session, n),
                             repo.small_params(batch), batch.events, wake=wake)
    else:
        await repo.write(session, batch, copy_threshold=settings.copy_threshold, whole_range=whole_range)
        await publish_many(session, batch.events, copy_threshold=settings.copy_threshold, wake=wake)
    return Outcome(len(batch.current), len(batch.events), batch.levels)


async def rescore_all(session: AsyncSession, rt: ModelRuntime, settings: ScoringSettings, *, wake: Wake = None,
                      worker: RescoreWorker | None = None) -> Outcome:
    """Every open household with the model (an activation), chunk by chunk in one transaction.

    A pipeline on two cores: while PostgreSQL takes in one chunk's rows and events, the next
    chunk is read (on PostgreSQL on a second connection) and scored, and its rows built. With a
    ``worker`` (PostgreSQL) a process of its own reads, builds and encodes the chunks, and the
    event loop only sends them; without, a worker thread builds them (NumPy and the string
    building leave the event loop free to stream the COPY)."""
    total = Outcome()
    if worker is not None and is_postgres(session):
        await _in_worker(session, rt, settings, wake, total, worker)
        return total
    # The collector stays off for the whole pipeline, not only while a chunk is built: enabled in
    # between, it scanned the rows of the chunks in flight again and again (~0.9 s of a city's
    # 6 s of CPU, sampled with perf). Other tasks of the process run meanwhile: their garbage
    # cycles wait the few seconds until it is enabled again.
    with gc_paused():
        async with _reader(session) as reader:
            await _pipeline(session, reader, rt, settings, wake, total)
    return total


async def _pipeline(session: AsyncSession, reader: AsyncSession, rt: ModelRuntime, settings: ScoringSettings,
                    wake: Wake, total: Outcome) -> None:
    """The chunks through the pipeline, read on ``reader``, written on ``session``."""
    chunks = aiter(repo.population(reader, settings.rescore_chunk_size))
    ahead = reader is not session  # the next chunk is read while this one is written
    reading: asyncio.Future[Any] | None = asyncio.ensure_future(anext(chunks, None))
    building: asyncio.Future[records.Batch] | None = None
    try:
        while (read := await reading) is not None:
            reading = asyncio.ensure_future(anext(chunks, None)) if ahead else None
            chunk, previous = read
            work = await pending(session, rt, chunk, cause="model_activated", force=True, previous=previous)
            done = await building if building is not None else None
            building = asyncio.ensure_future(asyncio.to_thread(work.compute))
            if done is not None:
                total.add(await write(session, done, settings, wake=wake, whole_range=True))
            if reading is None:
                reading = asyncio.ensure_future(anext(chunks, None))
        reading = None
        if building is not None:
            done, building = await building, None
            total.add(await write(session, done, settings, wake=wake, whole_range=True))
    finally:
        for running in (reading, building):  # a failed write: let the others finish before the session goes
            if running is not None:
                with contextlib.suppress(Exception):
                    await running
        await chunks.aclose()


async def _in_worker(session: AsyncSession, rt: ModelRuntime, settings: ScoringSettings, wake: Wake, total: Outcome,
                     worker: RescoreWorker) -> None:
    """The chunks as the worker process encodes them, copied in on ``session``. The sequencer is
    held from the start, so that the worker can number the events (positions follow on from
    one chunk to the next: nobody else takes one before this transaction ends)."""
    await session.flush()
    position = await take_positions(session, 0) + 1
    job = Job(runtime=rt, url=settings.effective_database_url, schema=settings.effective_db_schema,
              chunk_size=settings.rescore_chunk_size, cause="model_activated", first_position=position,
              traceparent=current_traceparent())
    async with contextlib.aclosing(worker.rescore(job)) as chunks:  # closed at once if a write fails
        async for chunk in chunks:
            await repo.write_encoded(session, chunk)
            if chunk.events:
                last = await take_positions(session, chunk.events)
                if last - chunk.events + 1 != chunk.first_position:
                    raise RescoreFailed("the feed's positions moved during the rescore")
                await copy_outbox(session, chunk.outbox, last, wake=wake)
            total.add(Outcome(chunk.households, chunk.events, chunk.levels))


@contextlib.asynccontextmanager
async def _reader(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Where a rescore reads the population: on PostgreSQL a session of its own, so that the next
    chunk is read while this one's rows are written (the chunks are disjoint ranges of household
    ids: the rows the rescore has replaced are never read again, so its own uncommitted writes
    need not be seen; feed consumers, which change views, wait for the activation's state lock);
    elsewhere the session itself."""
    if not is_postgres(session):
        yield session
        return
    async with AsyncSession(session.bind) as reader:
        yield reader


async def record_review(session: AsyncSession, runtimes: Runtimes, caller: Caller, household_id: str, *, expected: int,
                        level: int, reason: str, settings: ScoringSettings, wake: Wake = None) -> CurrentAssessment:
    """An officer's reviewed level beside the computed one; the computed score stays as it is.

    It waits for an activation under way (the state row, shared as a feed batch takes it): a
    rescore carries reviews forward from the rows it read, so a review committed between that
    read and the rescore's write would be lost."""
    await models_repo.state(session, lock="share")
    current = await repo.current(session, caller, household_id, for_update=True)
    if current is None:
        raise NotFound("No assessed household with that id is in your jurisdiction.")
    check_version(expected, current.etag)
    stored = await repo.assessment(session, current.assessment_id)
    rt = await runtimes.get(session, current.model_version)
    if stored is None or rt is None:
        raise NotFound("The household's current assessment cannot be read.")
    if not any(b.level == level for b in rt.model.bands):
        raise Unprocessable(f"level must be one of the model's levels ({', '.join(str(b.level) for b in rt.model.bands)}).")
    before = current.effective_level
    review = AssessmentReview(
        id=str(uuid.uuid4()), household_id=household_id, assessment_id=current.assessment_id,
        computed_level=current.level, reviewed_level=level, reason=reason, reviewer=caller.subject,
        reviewer_role=caller.role.value, created_at=datetime.now(UTC),
    )
    await repo.add_review(session, review)
    current.reviewed_level, current.review_id, current.review_basis_level = level, review.id, current.level
    current.effective_level = level
    current.etag += 1
    body = records.stored_payload(rt, stored, level=level, previous_level=before, previous_score=current.score,
                                  cause="review", member_ages=await households.member_ages(session, household_id))
    await publish_many(session, [(str(uuid.uuid4()), household_id, body)], copy_threshold=settings.copy_threshold,
                       wake=wake)
    await session.flush()
    return current


def triggers_json(triggers: Sequence[Mapping[str, object]]) -> str:
    """The triggers as assessment.updated carries them: no detail (it may name an illness)."""
    keep = ("code", "member_ref", "effective_date", "source")
    return json.dumps([{k: t.get(k) for k in keep if k in t} for t in triggers], ensure_ascii=False, separators=(",", ":"))
