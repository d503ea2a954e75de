"""A city's rescore built in a worker process (PostgreSQL): the rows, current rows and events are
those the rescore in the service's own process writes; a failure or the death of the worker fails
the rescore and leaves nothing of it; the worker goes with the service. The binary COPY streams
it makes are the rows the driver writes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from scoring_fakes import FailingRuntime, StallingRuntime, decode_binary_copy, service_lab
from scoring.assessments import repository as assessments_repo
from scoring.assessments.rescore_worker import RescoreFailed, RescoreWorker
from scoring.assessments.service import rescore_all
from scoring.assessments.tables import Assessment as A, CurrentAssessment as C
from scoring.bulk import streamed
from scoring.copy_format import encode
from servicekit.db import driver_of, unit_of_work
from servicekit.tables import OutboxEvent


async def rescored(lab, worker, runtime=None) -> tuple[list, list, list]:
    """What a rescore writes (rolled back after): the assessments and current rows without their
    ids and times, the events without theirs, positions from the first."""
    engine = lab.app.state.engine
    async with lab.db.sessionmaker() as session:
        rt = runtime or await engine.runtimes.active(session)
        before = (await session.execute(select(func.coalesce(func.max(OutboxEvent.position), 0)))).scalar_one()
        # COPY for every chunk's events, as a city's chunks have them (fewer go through the kit's
        # publish, whose rows are written at commit)
        settings = engine.settings.model_copy(update={"copy_threshold": 1})
        outcome = await rescore_all(session, rt, settings, worker=worker)
        rows = (await session.execute(select(A, C).join(C, C.assessment_id == A.id).order_by(C.household_id))).all()
        skip = {"id", "assessment_id", "assessed_at"}
        assessments = [{k: v for k, v in a.model_dump().items() if k not in skip} for a, _ in rows]
        current = [{k: v for k, v in c.model_dump().items() if k not in skip} | {"same": c.assessed_at == a.assessed_at}
                   for a, c in rows]
        events = []
        for e in (await session.execute(select(OutboxEvent).where(OutboxEvent.position > before)
                                        .order_by(OutboxEvent.position))).scalars():
            body = json.loads(e.payload) if isinstance(e.payload, str) else e.payload
            assert body.pop("assessment_id") in {a.id for a, _ in rows}
            body.pop("assessed_at")
            events.append((e.position - before, e.type, e.subject, e.traceparent, body))
        await session.rollback()
    assert outcome.assessed == len(rows) and outcome.events == len(events)
    return assessments, current, events


async def test_the_worker_process_writes_what_the_service_process_writes(lab, city):
    """Rows, current rows (a first assessment for some households, an update in place for the
    others) and events, positions one after the other from the sequencer's."""
    engine = lab.app.state.engine
    if not lab.db.is_postgres:  # no worker here: a worker given is left alone, the thread builds
        assert engine.rescore_worker is None
        idle = RescoreWorker()
        assert (await rescored(lab, idle))[0] and idle.pid is None
        return
    worker = engine.rescore_worker
    assert worker is not None
    async with unit_of_work(lab.db) as session:  # half the households without a current row
        await session.execute(C.__table__.delete().where(C.household_id.in_(sorted(city)[::2])))
        await session.execute(A.__table__.delete().where(A.household_id.in_(sorted(city)[::2])))
    ours = await rescored(lab, worker)
    theirs = await rescored(lab, None)
    assert ours == theirs
    assessments, current, events = ours
    assert len(assessments) == len(city) and [e[0] for e in events] == list(range(1, len(events) + 1))
    assert {a["number"] for a in assessments} == {1, 2} and all(c["same"] for c in current)
    assert worker.last.cpu_seconds > 0 and worker.last.peak_rss_bytes > 0


async def test_a_worker_failing_mid_way_fails_the_rescore_and_leaves_nothing(lab, city):
    if not lab.db.is_postgres:
        assert lab.app.state.engine.rescore_worker is None
        return
    engine, worker, rt = await _worker_and_model(lab)
    before = await _counts(lab)
    with pytest.raises(RescoreFailed, match="a chunk the model cannot score"):
        async with unit_of_work(lab.db) as session:
            await rescore_all(session, FailingRuntime.like(rt), engine.settings, worker=worker)
    assert await _counts(lab) == before  # the first chunk was written, and rolled back with the rest
    assert worker.pid is None  # ended; the next rescore starts another
    async with unit_of_work(lab.db) as session:
        # COPY for every chunk's events, as a city's chunks have them (fewer go through the kit's
        # publish, whose rows are written at commit)
        settings = engine.settings.model_copy(update={"copy_threshold": 1})
        outcome = await rescore_all(session, rt, settings, worker=worker)
    assert outcome.assessed == len(city) and worker.pid is not None
    after = await _counts(lab)
    assert after[0] == before[0] + len(city) and after[1] == before[1] + outcome.events


async def test_a_worker_that_dies_fails_the_rescore_and_a_new_one_repairs_it(lab, city, monkeypatch):
    if not lab.db.is_postgres:
        assert lab.app.state.engine.rescore_worker is None
        return
    engine, worker, rt = await _worker_and_model(lab)
    written = assessments_repo.write_encoded
    killed: list[int] = []

    async def then_kill(session, chunk):  # the worker is stalled in its second chunk meanwhile
        await written(session, chunk)
        if not killed:
            killed.append(worker.pid)
            os.kill(worker.pid, signal.SIGKILL)

    monkeypatch.setattr(assessments_repo, "write_encoded", then_kill)
    before = await _counts(lab)
    with pytest.raises(RescoreFailed, match="stopped"):
        async with unit_of_work(lab.db) as session:
            await asyncio.wait_for(rescore_all(session, StallingRuntime.like(rt), engine.settings, worker=worker), 30)
    assert killed and await _counts(lab) == before
    monkeypatch.undo()
    async with unit_of_work(lab.db) as session:
        assert (await rescore_all(session, rt, engine.settings, worker=worker)).assessed == len(city)
    assert worker.pid not in (None, killed[0])


async def test_the_worker_process_stops_with_the_service(identity, config_dir):
    async with service_lab(identity, config_dir) as service:
        worker = service.app.state.engine.rescore_worker
        if not service.db.is_postgres:
            assert worker is None
            return
        await worker.ready()
        process = worker._process
        assert process is not None and process.is_alive()
    assert not process.is_alive() and process.exitcode == 0  # told to stop, not killed
    assert service.app.state.engine.rescore_worker is None


async def _counts(lab) -> tuple[int, int, tuple]:
    async with lab.db.sessionmaker() as session:
        assessments = (await session.execute(select(func.count()).select_from(A))).scalar_one()
        events = (await session.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
        current = tuple((await session.execute(select(C.assessment_id).order_by(C.household_id))).scalars())
    return assessments, events, current


async def _worker_and_model(lab):
    engine = lab.app.state.engine
    async with lab.db.sessionmaker() as session:
        return engine, engine.rescore_worker, await engine.runtimes.active(session)


# ---- the binary COPY streams -------------------------------------------------------------------

NOW = datetime(2026, 11, 29, 1, 2, 3, 456789, tzinfo=UTC)
NAMES = ["id", "code", "label", "number", "big", "small", "score", "at", "maybe_id", "maybe_level", "maybe_score",
         "text"]
KINDS = ["text", "text", "text", "int4", "int8", "int2", "float8", "timestamptz", "text", "int2", "float8", "text"]
COLUMNS_SQL = ("id varchar(36), code varchar(12), label varchar(64), number int, big bigint, small smallint, "
               "score double precision, at timestamptz, maybe_id varchar(36), maybe_level smallint, "
               "maybe_score double precision, text text")


def sample_rows(n: int = 300) -> list[tuple]:
    labels = ["张*明户", "", "tab\there", 'quote"back\\slash\nline', "x" * 60]
    return [(f"{i:036d}", f"330106{i % 3:06d}", labels[i % len(labels)], i, 2**40 + i, i % 4 - 2, i / 7 - 20,
             NOW + timedelta(microseconds=i % 2), None if i % 3 else f"{i + 1:036d}", None if i % 2 else i % 5,
             None if i % 4 else i / 3, f"unique text {i} " * (i % 4)) for i in range(n)]


async def test_the_encoded_rows_are_the_rows_the_driver_writes(lab):
    rows = sample_rows()
    encoded = encode(NAMES, KINDS, [list(c) for c in zip(*rows, strict=True)], block=64)
    # same-width columns first (one NumPy record per row), then the others in their order
    assert encoded.columns[:7] == ["id", "code", "number", "big", "small", "score", "at"]
    if not lab.db.is_postgres:
        decoded = decode_binary_copy(b"".join(encoded.blocks), [KINDS[NAMES.index(c)] for c in encoded.columns])
        assert [tuple(r[encoded.columns.index(c)] for c in NAMES) for r in decoded] == rows
        return
    async with lab.db.sessionmaker() as session:
        raw = await driver_of(session)
        async with raw.transaction():
            await raw.execute(f"CREATE TEMP TABLE rows_driver ({COLUMNS_SQL}) ON COMMIT DROP; "
                              f"CREATE TEMP TABLE rows_ours ({COLUMNS_SQL}) ON COMMIT DROP")
            await raw.copy_records_to_table("rows_driver", records=rows, columns=NAMES)
            await raw.copy_to_table("rows_ours", source=streamed(encoded.blocks), columns=encoded.columns,
                                    format="binary")
            query = f"SELECT {', '.join(NAMES)} FROM {{}} ORDER BY id"
            driver, ours = await raw.fetch(query.format("rows_driver")), await raw.fetch(query.format("rows_ours"))
    assert [tuple(r) for r in ours] == [tuple(r) for r in driver] == rows


async def test_a_number_out_of_range_is_refused_not_wrapped(lab):
    with pytest.raises(OverflowError):
        encode(["small"], ["int2"], [[1, 40_000]])
    with pytest.raises(ValueError):
        encode(["at"], ["timestamptz"], [[datetime(2026, 1, 1)]])  # no time zone

