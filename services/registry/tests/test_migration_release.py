"""registry_0010 on a database that already has closed households: their members are released
(blind index moved to released_bidx), the open households' members are not, and a released
person may then be placed again."""

import asyncio
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from registry.app import MIGRATIONS
from registry.settings import RegistrySettings
from servicekit.migrations import upgrade
from servicekit.testing import migrated_database, settings_for_tests


def _household(hid: str, closed: bool) -> dict:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    return {"id": hid, "area_code": "330106001001", "register_status": "dibao", "status_since": date(2026, 1, 1),
            "channel": "survey", "rural_hukou": False, "label_masked": "张*户", "facts": "{}", "version": 1,
            "synthetic": True, "created_by": "test", "created_at": now, "updated_at": now,
            "closed_on": date(2026, 10, 1) if closed else None}


def _member(mid: str, hid: str, bidx: str) -> dict:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    return {"id": mid, "household_id": hid, "resident_bidx": bidx, "resident_masked": "3301**********0015",
            "sex": "M", "birth_date": date(1970, 1, 1), "relation": "head", "facts": "{}", "version": 1,
            "synthetic": True, "created_at": now, "updated_at": now}


async def test_members_of_households_closed_before_the_revision_are_released():
    async with migrated_database(settings_for_tests(RegistrySettings), MIGRATIONS, revision="registry_0009") as settings:
        engine = create_async_engine(settings.effective_database_url, connect_args=(
            {"server_settings": {"search_path": settings.effective_db_schema}} if settings.is_postgres else {}))
        households, members = sa.table("households", *map(sa.column, _household("x", False))), \
            sa.table("members", *map(sa.column, _member("x", "x", "x")))
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.insert(households), [_household("h-closed", True), _household("h-open", False)])
                await conn.execute(sa.insert(members), [_member("m-closed", "h-closed", "b" * 64),
                                                        _member("m-open", "h-open", "c" * 64)])
            await engine.dispose()
            await asyncio.to_thread(upgrade, MIGRATIONS, settings)
            async with engine.begin() as conn:
                rows = (await conn.execute(sa.text(
                    "SELECT id, resident_bidx, released_bidx FROM members ORDER BY id"))).all()
                assert [tuple(r) for r in rows] == [("m-closed", None, "b" * 64), ("m-open", "c" * 64, None)]
                # The released person can be placed in another household; the open one's cannot.
                await conn.execute(sa.insert(members), [_member("m-again", "h-open", "b" * 64)])
            with pytest.raises(sa.exc.IntegrityError):  # the unique blind index still holds for open households
                async with engine.begin() as conn:
                    await conn.execute(sa.insert(members), [_member("m-twice", "h-open", "c" * 64)])
        finally:
            await engine.dispose()
