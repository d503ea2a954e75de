"""``python -m registry seed``: the synthetic city loaded, once, and on PostgreSQL analysed at once."""

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from registry.app import MIGRATIONS
from registry.seed import LOADED_TABLES, seed_command
from registry.settings import RegistrySettings
from servicekit.testing import migrated_database, settings_for_tests


async def _households(settings: RegistrySettings) -> int:
    engine = create_async_engine(settings.effective_database_url,
                                 connect_args={"server_settings": {"search_path": settings.effective_db_schema}}
                                 if settings.is_postgres else {})
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM households"))).scalar_one()
    finally:
        await engine.dispose()


async def test_seeding_loads_the_city_once_and_analyses_it_on_postgresql() -> None:
    async with migrated_database(settings_for_tests(RegistrySettings), MIGRATIONS) as settings:
        assert await asyncio.to_thread(seed_command, settings, ["--scale", "0.001", "--no-events"]) == 0
        loaded = await _households(settings)
        assert loaded > 100
        assert await asyncio.to_thread(seed_command, settings, ["--scale", "0.001", "--no-events"]) == 0
        assert await _households(settings) == loaded  # idempotent: nothing loaded twice
        if not settings.is_postgres:
            return
        engine = create_async_engine(settings.effective_database_url)
        try:
            async with engine.connect() as conn:
                analysed = set((await conn.execute(text(
                    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = :s AND last_analyze IS NOT NULL"),
                    {"s": settings.effective_db_schema})).scalars())
        finally:
            await engine.dispose()
        assert set(LOADED_TABLES) <= analysed, analysed
