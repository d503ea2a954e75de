"""The driver connection (PostgreSQL only), the jurisdiction prefix a driver-level statement
applies (Caller.visible_prefix, which Caller.scope and can_see_area also use), and when a pooled
connection is pinged."""

import asyncio
import uuid

import pytest
from sqlalchemy import column, select, text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.exc import DBAPIError

from servicekit.auth import Caller, Role
from servicekit.db import Database
from servicekit.testing import TOWNSHIP


def test_visible_prefix_and_the_sql_scope_agree():
    town = Caller(subject="t", role=Role.town_worker, area="330106001000")
    city = Caller(subject="c", role=Role.city_admin)
    stray = Caller(subject="v", role=Role.village_worker)  # no area claim: sees nothing
    assert (town.visible_prefix, city.visible_prefix, stray.visible_prefix) == ("330106001", "", None)
    assert [c.can_see_area("330106001001") for c in (town, city, stray)] == [True, True, False]
    area = column("area_code")
    compiled = [str(select(area).where(c.scope(area)).compile(compile_kwargs={"literal_binds": True}))
                for c in (town, city, stray)]
    assert "LIKE '330106001' || '%'" in compiled[0] and "true" in compiled[1] and "false" in compiled[2]


async def test_driver_connection_is_postgresql_only_in_the_service_schema(kit):
    db = kit.db
    if not db.is_postgres:
        with pytest.raises(RuntimeError):
            async with db.driver_connection():
                pass
        return
    async with db.driver_connection() as connection:
        schema = await connection.fetchval("SELECT current_schema()")
        await connection.execute("SELECT 1")
    assert schema == db.schema
    async with db.driver_connection() as again:  # the same pool, no reset query in between
        assert await again.fetchval("SELECT current_schema()") == db.schema


async def _backend_pid(db) -> int:
    async with db.sessionmaker() as session:
        return (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def _terminate(kit, pid: int) -> None:
    async with kit.db.sessionmaker() as session:
        assert (await session.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})).scalar_one()


async def test_a_pooled_connection_is_pinged_only_after_sitting_idle(kit, monkeypatch):
    """No round trip before each transaction of a connection in steady use; one left idle is
    pinged, and if the server dropped it meanwhile a fresh one is opened without an error."""
    if not kit.db.is_postgres:  # SQLite: a file, nothing to ping
        async with Database(kit.db.url).sessionmaker() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        return
    pings: list[int] = []
    ping = AsyncAdapt_asyncpg_connection.ping
    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", lambda self: (pings.append(1), ping(self))[1])
    steady = Database(kit.db.url, schema=kit.db.schema, pool_size=1)
    idle = Database(kit.db.url, schema=kit.db.schema, pool_size=1, ping_after=0.05)
    try:
        first = await _backend_pid(steady)
        assert [await _backend_pid(steady) for _ in range(5)] == [first] * 5 and pings == []
        dropped = await _backend_pid(idle)
        await _terminate(kit, dropped)
        await asyncio.sleep(0.1)
        replaced = await _backend_pid(idle)  # pinged, found dead, replaced: no error
        assert pings == [1] and replaced != dropped
        await _terminate(kit, first)  # without the ping, the next use fails once, then recovers
        with pytest.raises(DBAPIError):
            await _backend_pid(steady)
        assert await _backend_pid(steady) != first
    finally:
        await steady.dispose()
        await idle.dispose()


async def test_a_request_on_a_connection_the_server_dropped_gets_a_503_problem_and_the_next_works(
        kit, kit_settings, identity):
    """A server restart under a connection in steady use (not pinged): the request fails with a
    problem a client retries, not a 500, and the pool has replaced the connection for the next."""
    from kitapp.app import create_app
    from servicekit.testing import running_service

    if not kit.db.is_postgres:  # SQLite: a file, no connection to lose
        async with kit.client("town_worker", area=TOWNSHIP) as c:
            assert (await c.get(f"/api/v1/notes/{uuid.uuid4()}")).status_code == 404
        return
    db = Database(kit.db.url, schema=kit.db.schema, pool_size=1)
    try:
        # No background jobs: the request is then the pool's one connection's only user.
        async with running_service(create_app, kit_settings, identity, db=db, start_consumers=False) as svc:
            async with svc.client("town_worker", area=TOWNSHIP) as c:
                missing = f"/api/v1/notes/{uuid.uuid4()}"
                assert (await c.get(missing)).status_code == 404
                await _terminate(kit, await _backend_pid(db))  # the one pooled connection
                lost = await c.get(missing)
                assert lost.status_code == 503 and lost.headers["content-type"] == "application/problem+json"
                assert lost.headers["retry-after"] == "1" and "connection was lost" in lost.json()["detail"]
                assert (await c.get(missing)).status_code == 404
    finally:
        await db.dispose()
