"""Leased periodic jobs, the database clock and UTC timestamps."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from servicekit.db import db_now
from servicekit.jobs import PeriodicJob
from servicekit.tables import UTCDateTime


async def test_job_runs_repeatedly_and_stops(kit):
    runs = []

    async def tick():
        runs.append(1)

    job = PeriodicJob("tick", 0.05, tick, db=kit.db)
    task = asyncio.create_task(job.run())
    await asyncio.sleep(0.4)
    job.stop()
    await asyncio.wait_for(task, 5)
    assert job.runs >= 3


async def test_a_failing_job_keeps_its_loop(kit):
    calls = 0

    async def flaky():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run fails")

    job = PeriodicJob("flaky", 0.05, flaky, db=kit.db)
    task = asyncio.create_task(job.run())
    await asyncio.sleep(0.4)
    job.stop()
    await asyncio.wait_for(task, 5)
    assert calls >= 2


async def test_db_now_is_aware_utc_and_close(kit):
    async with kit.db.sessionmaker() as s:
        now = await db_now(s)
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs((now - datetime.now(UTC)).total_seconds()) < 60


async def test_db_now_has_sub_second_precision(kit):
    """Two transactions 20 ms apart see two different times (SQLite's CURRENT_TIMESTAMP alone
    would give the same whole second)."""
    async with kit.db.sessionmaker() as s:
        first = await db_now(s)
    await asyncio.sleep(0.02)
    async with kit.db.sessionmaker() as s:
        second = await db_now(s)
    assert second > first


def test_utc_datetime_refuses_naive_and_returns_aware():
    t = UTCDateTime()
    with pytest.raises(ValueError):
        t.process_bind_param(datetime(2026, 1, 1), None)
    back = t.process_result_value(datetime(2026, 1, 1, 8, 0), None)
    assert back.tzinfo is UTC
