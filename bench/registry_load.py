"""Registry: full load of the synthetic city into PostgreSQL, against a plain COPY of the same rows.

    .venv/bin/python -m bench registry_load          (REGISTRY_BENCH_SCALE=0.1 for a quick run)

In one run, on one fresh schema each: (1) a plain COPY of the households, members and status
rows, unencrypted (the plaintext where the ciphertext goes, no blind index, views computed
beforehand); (2) the registry's bulk load of the same households: names, ID numbers, phones,
addresses and locations sealed with AES-GCM, blind indexes, scoring views, COPY -- and, reported
apart, one household.changed per household into the outbox. Sealing runs in one worker process
while PostgreSQL copies the previous chunk. Generating the city is not timed.
Goal (issue 3): the load takes at most 3x the plain COPY. Needs PostgreSQL (DATABASE_URL, default
the local zhongfu_dev).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path


from bench.common import drop_schema, postgres_url, report

ROOT = Path(__file__).resolve().parents[1]


def _settings(schema: str):
    from registry.settings import RegistrySettings

    return RegistrySettings(database_url=postgres_url(), db_schema=schema,
                            config_dir=ROOT / "config", environment="test")


def _plain_rows(profile, households, today):
    """The same rows with plaintext in place of ciphertext and the number in place of its index."""
    from registry.bulk import H_COLUMNS, M_COLUMNS, S_COLUMNS  # noqa: F401  (column order)
    from registry.facts.view import HouseholdFacts, MemberFacts
    from registry.households.present import label
    from servicekit.tables import utcnow

    now = utcnow()
    hs, ms, ss = [], [], []
    for h in households:
        view, missing = profile.view(HouseholdFacts(
            h.area_code, h.register_status, h.off_register_source, h.channel, h.status_since, h.rural_hukou, h.facts,
            [MemberFacts(m.birth_date, m.sex, m.relation, m.facts) for m in h.members]), today)
        hs.append((h.id, h.area_code, h.register_status, h.off_register_source, h.status_since, h.channel, h.rural_hukou,
                   h.address, f"{h.location[0]},{h.location[1]}", label(h.head_name), json.dumps(h.facts),
                   json.dumps(view), json.dumps(missing), 1, True, "bench", now, now))
        for m in h.members:
            ms.append((m.id, h.id, m.resident_id, m.resident_id, m.resident_id[:6], m.name, m.name[:1], m.phone,
                       (m.phone or "")[:3] or None, m.sex, m.birth_date, m.relation, json.dumps(m.facts), 1, True, now, now))
        ss.append((str(uuid.uuid4()), h.id, None, None, h.register_status, h.off_register_source, h.status_since,
                   "opened", "bench", "service", now))
    return hs, ms, ss


async def _copy_plain(db, rows) -> float:
    from registry.bulk import H_COLUMNS, M_COLUMNS, S_COLUMNS

    hs, ms, ss = rows
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        started = time.perf_counter()
        async with raw.transaction():
            await raw.copy_records_to_table("households", records=hs, columns=list(H_COLUMNS), schema_name=db.schema)
            await raw.copy_records_to_table("members", records=ms, columns=list(M_COLUMNS), schema_name=db.schema)
            await raw.copy_records_to_table("status_changes", records=ss, columns=list(S_COLUMNS), schema_name=db.schema)
        return time.perf_counter() - started


async def _run(scale: float) -> dict:
    from registry.app import MIGRATIONS
    from registry.bulk import load
    from registry.profile import load_profile
    from registry.synthetic import CityGenerator
    from registry.vault import Vault
    from servicekit.db import Database
    from servicekit.migrations import upgrade

    profile = load_profile(ROOT / "config")
    generator = CityGenerator(profile.areas, profile.catalogue.code_lists)
    started = time.perf_counter()
    households = list(generator.households(scale))
    generated = time.perf_counter() - started
    today = generator.today
    plain_rows = _plain_rows(profile, households, today)
    figures: dict = {"scale": scale, "households": len(households), "people": len(plain_rows[1]),
                     "generate_seconds_untimed": round(generated, 1)}
    schemas = {name: f"bench_registry_{name}_{uuid.uuid4().hex[:6]}" for name in ("copy", "load")}
    try:
        dbs = {}
        for name, schema in schemas.items():
            settings = _settings(schema)
            await asyncio.to_thread(upgrade, MIGRATIONS, settings)
            dbs[name] = (Database.from_settings(settings, pool_size=2), settings)
        copy_seconds = await _copy_plain(dbs["copy"][0], plain_rows)
        del plain_rows
        db, settings = dbs["load"]
        started = time.perf_counter()
        # One sealing process beside this one: sealing the next chunk overlaps the COPY of this one.
        result = await load(db, profile, Vault.from_settings(settings), households, events=True, today=today,
                            workers=1, settings=settings)
        load_seconds = time.perf_counter() - started
        for database, _ in dbs.values():
            await database.dispose()
    finally:
        for schema in schemas.values():
            await drop_schema(_settings(schema).effective_database_url, schema)
    without_events = load_seconds - result.events_seconds
    figures |= {
        "plain_copy_seconds": round(copy_seconds, 2),
        "load_seconds_with_events": round(load_seconds, 2),
        "load_seconds_without_events": round(without_events, 2),
        "of_which_seal_index_view_seconds": round(result.seal_seconds, 2),
        "of_which_copy_seconds": round(result.write_seconds - result.events_seconds, 2),
        "of_which_events_seconds": round(result.events_seconds, 2),
        "ratio_load_to_copy": round(without_events / copy_seconds, 2),
        "ratio_with_events_to_copy": round(load_seconds / copy_seconds, 2),
        "households_per_second": round(result.households / load_seconds),
    }
    return figures


def main() -> dict:
    scale = float(os.environ.get("REGISTRY_BENCH_SCALE", "1.0"))
    figures = asyncio.run(_run(scale))
    return report(
        "registry_load", figures,
        goals={"ratio_load_to_copy": "<= 3 (sealed, indexed load vs plain COPY of the same rows)"},
        met={"ratio_load_to_copy": figures["ratio_load_to_copy"] <= 3},
    )


if __name__ == "__main__":
    main()
