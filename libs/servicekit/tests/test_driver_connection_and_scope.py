"""The driver connection (PostgreSQL only) and the jurisdiction prefix a driver-level statement
applies (Caller.visible_prefix, which Caller.scope and can_see_area also use)."""

import pytest
from sqlalchemy import column, select

from servicekit.auth import Caller, Role


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
