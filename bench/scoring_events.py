"""Following the registry: catching up with a fresh registry of 230,000 households, then the
latency of one household.changed. ``python -m bench scoring_events`` (PostgreSQL: DATABASE_URL,
default the local zhongfu_dev).

The registry is an in-process stand-in serving pre-serialised household.changed events
(synthetic views) over its feed API; scoring's own FeedConsumer reads it through httpx, in
batches of 1,000, each applied in one transaction (views stored, households scored by the
kernel, assessments and assessment.updated events written), the page fetched ahead read in the
consumer's worker process (its CPU and memory are reported, and counted as the service's). Then,
once the tables are vacuumed, analysed and checkpointed (what autovacuum and the checkpointer
would do after the catch-up, not timed), single events: the time from a fetched event's arrival
to its assessment committed (FeedConsumer.apply), p50/p99 over 300.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI, Query, Response

from bench.common import drop_schema, postgres_cpu_seconds, postgres_url, report
from bench.scoring_rescore import PeakMemory, say, settle

HOUSEHOLDS = int(os.environ.get("SCORING_BENCH_HOUSEHOLDS", "230000"))
SINGLE_EVENTS = 300
CONFIG = Path(__file__).resolve().parent.parent / "config"


class Registry:
    """Pre-serialised events behind the registry's feed route."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.app = FastAPI()

        @self.app.get("/internal/feed")
        async def feed(after: int = 0, limit: int = Query(100, le=1000), wait: float = 0) -> Response:
            page = self.events[after:after + limit]
            body = b'{"events":[' + b",".join(page) + b'],"next_after":%d,"head":%d}' % (after + len(page), len(self.events))
            return Response(content=body, media_type="application/json")

    def add(self, household_id: str, version: int, area: str, view: dict, missing: list[str], triggers: list) -> None:
        position = len(self.events) + 1
        data = {"household_id": household_id, "version": version, "area_code": area,
                "township_code": area[:9] + "000", "district_code": area[:6] + "000000", "label_masked": "张*明户",
                "synthetic": True, "change": "updated", "triggers": triggers, "view": view, "missing": missing}
        event = {"position": position, "id": str(uuid.uuid4()), "type": "household.changed", "subject": household_id,
                 "occurred_at": datetime.now(UTC).isoformat(), "traceparent": None, "data": data}
        self.events.append(json.dumps(event, ensure_ascii=False).encode())


async def run(url: str) -> dict:

    from servicekit.events import Event
    from servicekit.migrations import upgrade
    from scoring.app import MIGRATIONS, create_app, registry_consumer
    from scoring.models import service as models
    from scoring.settings import ScoringSettings
    from scoring.synthetic import DISTRICT_WEIGHTS, generate, to_views

    schema = f"bench_scoring_{uuid.uuid4().hex[:8]}"
    settings = ScoringSettings(database_url=url, db_schema=schema, config_dir=CONFIG, consumer_batch_size=1000)
    await asyncio.to_thread(upgrade, MIGRATIONS, settings)
    registry = Registry()
    transport = httpx.ASGITransport(app=registry.app)

    async def no_token() -> str:  # the stand-in registry checks no token
        return "bench"

    app = create_app(settings, registry_transport=transport, registry_token=no_token, start_consumers=False)
    engine, db, profile = app.state.engine, app.state.db, app.state.engine.profile
    # The stand-in registry (every event and view, ~1.5 GB) lives in this process: the service's
    # own footprint is the process before the registry is filled plus what catching up adds.
    import psutil

    service_base = psutil.Process().memory_info().rss
    try:
        started = time.perf_counter()
        matrix, missing = generate(profile.ctx.view, HOUSEHOLDS, seed=20261129, unknown_rate=0.005)
        views = to_views(profile.ctx.view, matrix, missing)
        del matrix, missing
        ids = [str(uuid.UUID(int=i + 1)) for i in range(HOUSEHOLDS)]
        districts = list(DISTRICT_WEIGHTS)
        for i, (view, said) in enumerate(views):
            district = view["district_code"] or districts[0]
            registry.add(ids[i], 1, district[:6] + f"{1 + i % 20:03d}{1 + i % 15:03d}", view, said, [])
        say(f"registry of {HOUSEHOLDS} households ready in {time.perf_counter() - started:.1f}s")
        # The stand-in registry's events and the views kept for the single events below are the
        # registry's, not scoring's: kept out of the collector's scans, as they would be in the
        # registry's own process (left in, every full collection walked their 460,000 objects).
        gc.collect()
        gc.freeze()
        await models.bootstrap(engine)

        consumer = registry_consumer(app, transport, no_token)
        before_catch_up = psutil.Process().memory_info().rss
        with PeakMemory(children=True) as memory:
            start, cpu, server = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
            applied = 0
            while (n := await consumer.step()) > 0:
                applied += n
            catch_up, catch_up_cpu = time.perf_counter() - start, time.process_time() - cpu
            server_cpu = sum(used - server.get(pid, 0.0) for pid, used in postgres_cpu_seconds().items())
            reader = consumer.reader
        consumer.close()
        say(f"caught up with {applied} events in {catch_up:.1f}s")
        # Not timed: the maintenance PostgreSQL does by itself after the 1.5 GB just written
        # (autovacuum and autoanalyze of the new rows, a checkpoint), done now, so that the single
        # events are measured in steady state rather than beside it.
        started = time.perf_counter()
        await maintain(db)
        say(f"vacuumed, analysed and checkpointed in {time.perf_counter() - started:.1f}s")

        latencies = []
        rng = __import__("random").Random(7)
        for k in range(SINGLE_EVENTS):
            i = rng.randrange(HOUSEHOLDS)
            view = dict(views[i][0])
            view["major_illness_members"] = (view.get("major_illness_members") or 0) + 1  # a diagnosis
            registry.add(ids[i], 2 + k, f"{(view['district_code'] or districts[0])[:6]}001001", view, views[i][1],
                         [{"code": "major_illness_diagnosed", "member_ref": "m", "source": "health"}])
            events = await consumer.fetch(await consumer.cursor(), 0)
            assert len(events) == 1 and isinstance(events[0], Event)
            arrived = time.perf_counter()
            assert await consumer.apply(events) == 1
            latencies.append(time.perf_counter() - arrived)
        latencies.sort()
    finally:
        gc.unfreeze()
        await db.dispose()
        await drop_schema(settings.effective_database_url, schema)
    service = service_base + memory.peak - before_catch_up + memory.children_peak
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    figures = {
        "households": HOUSEHOLDS,
        "catch-up, fresh registry (s)": round(catch_up, 1),
        "catch-up rate (households/s)": round(applied / catch_up),
        "  catch-up: CPU of this process, stand-in registry included (s)": round(catch_up_cpu, 1),
        "  catch-up: CPU of the page reader's worker process (s)": round(sum(memory.children_cpu.values()), 1),
        "  catch-up: pages fetched ahead read by the worker / in the service": (
            f"{reader.read_there} / {reader.read_here}" if reader is not None else "no worker"),
        "  catch-up: CPU of PostgreSQL, every server process (s)": round(server_cpu, 1),
        "consumer batch": settings.consumer_batch_size,
        "single event to commit, p50 (ms)": round(p50, 1),
        "single event to commit, p99 (ms)": round(p99, 1),
        "single events measured": len(latencies),
        "peak RSS during catch-up, stand-in registry included (MB)": round(memory.peak / 2**20),
        "  peak RSS of the page reader's worker process (MB)": round(memory.children_peak / 2**20),
        "service: RSS before the registry + growth during catch-up + worker (MB)": round(service / 2**20),
    }
    goals = {"catch-up": "< 60 s", "single event p99": "<= 20 ms", "memory": "< 1024 MB"}
    met = {"catch-up": catch_up < 60, "single event p99": p99 <= 20, "memory": service < 2**30}
    return report("scoring_events", figures, goals, met)


async def maintain(db) -> None:
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection  # VACUUM: outside a transaction
        for table in ("household_views", "assessments", "current_assessments", "outbox", "processed_events"):
            await raw.execute(f"VACUUM (ANALYZE) {table}")
    await settle(db)


def main() -> dict:
    return asyncio.run(run(postgres_url()))  # it may create the database: outside the loop


if __name__ == "__main__":
    main()
