"""``python -m registry seed``: load the synthetic city (idempotent), or write a batch file.

    python -m registry seed --scale 0.02                 # what `make run` does after migrating
    python -m registry seed --scale 0.02 --batch var/mi.jsonl --records 100000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterable
from datetime import date
from itertools import chain
from pathlib import Path

from sqlalchemy import text

from servicekit.db import Database

from registry.bulk import load
from registry.profile import load_profile
from registry.profile.errors import read_yaml
from registry.settings import RegistrySettings
from registry.synthetic import CityGenerator, SyntheticHousehold
from registry.synthetic_feeds import write_batch
from registry.vault import Vault


def seed_command(settings: RegistrySettings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m registry seed")
    parser.add_argument("--scale", type=float, default=0.02, help="1.0 is Hangzhou: 223k households, 420k people")
    parser.add_argument("--seed", type=int, default=20241128)
    parser.add_argument("--no-events", action="store_true", help="do not publish household.changed (initial import)")
    parser.add_argument("--batch", type=Path, help="write a medical-insurance batch (JSON Lines) here instead")
    parser.add_argument("--records", type=int, default=10_000, help="records in the batch file")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    profile = load_profile(settings.config_dir)
    generator = CityGenerator(profile.areas, profile.catalogue.code_lists, seed=args.seed)
    if args.batch:
        write_batch(generator, args.scale, args.records, args.batch)
        print(f"registry: wrote {args.records} records to {args.batch}")
        return 0
    demo = _demo_households(settings.config_dir / "registry" / "demo-households.yaml", generator)
    return asyncio.run(_seed(settings, profile, chain(demo, generator.households(args.scale)), args.scale,
                             not args.no_events, generator.today))


# What a load fills. PostgreSQL's guide to populating a database: ANALYZE afterwards, so the
# first requests are planned on statistics (autovacuum gathers them later, where it runs at all).
LOADED_TABLES = ("households", "members", "status_changes", "outbox")


async def _analyze(db: Database) -> None:
    async with db.engine.begin() as conn:
        for table in LOADED_TABLES:
            await conn.execute(text(f"ANALYZE {table}"))


def _demo_households(path: Path, generator: CityGenerator) -> list[SyntheticHousehold]:
    """The walk-throughs' demo families, first (an absent file means none)."""
    if not path.exists():
        return []
    raw = read_yaml(path) or {}
    return [generator.demo_household(spec) for spec in raw.get("households", [])]


async def _seed(settings: RegistrySettings, profile, households: Iterable[SyntheticHousehold], scale: float,
                events: bool, today: date) -> int:
    db = Database.from_settings(settings, pool_size=2)
    started = time.perf_counter()
    try:
        # Past a small city, seal in a second process while PostgreSQL copies (a worker costs a
        # few seconds to start, more than a small city takes).
        workers = 1 if scale >= 0.2 and db.is_postgres else 0
        report = await load(db, profile, Vault.from_settings(settings), households, events=events,
                            today=today, workers=workers, settings=settings)
        if db.is_postgres:
            await _analyze(db)
    finally:
        await db.dispose()
    print(f"registry: synthetic city at scale {scale}: {report.households} households and {report.members} people "
          f"loaded, {report.skipped} already present, {report.events} events, {time.perf_counter() - started:.1f}s")
    return 0
