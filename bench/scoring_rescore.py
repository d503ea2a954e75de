"""Rescoring a whole city on PostgreSQL, end to end, against COPY of the same rows; simulating a
draft; memory. ``python -m bench scoring_rescore`` (DATABASE_URL, default the local zhongfu_dev).

A fresh schema is migrated and filled with 230,000 synthetic household views (not timed). Then:
  - first rescore: every household assessed for the first time (so every one gets an event):
    read the views, score, write 230k assessments and current rows, emit 230k events, commit;
  - activation of a changed model (medical costs weigh double), as the API runs it: same work,
    events only for the households whose assessment changed, plus the model switch;
  - the COPY baseline: the same feature rows copied out, the same assessment rows copied in
    (into a table like ``assessments``, with its indexes);
  - simulation of a draft (both models over the whole population, nothing written);
  - the peak resident memory of the process during those runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import hashlib
import io
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import drop_schema, postgres_url, report

HOUSEHOLDS = int(os.environ.get("SCORING_BENCH_HOUSEHOLDS", "230000"))  # smaller for a quick look
# 0: the rescore built in a thread of this process, as without the worker process (to compare)
WORKER_PROCESS = os.environ.get("SCORING_BENCH_WORKER_PROCESS", "1") != "0"
CONFIG = Path(__file__).resolve().parent.parent / "config"


class PeakMemory:
    """Samples the resident set size of this process and of the rescore's worker process (when
    there is one) every 50 ms: the peak of each, and of the two together; with ``children``, also
    the peak of all this process's children together (a worker started meanwhile) and the CPU
    each used (as last seen, within 50 ms of its end)."""

    def __init__(self, worker_pid: int | None = None, *, children: bool = False) -> None:
        import psutil

        self.process = psutil.Process()
        self.worker = psutil.Process(worker_pid) if worker_pid is not None else None
        self.children = children
        self.children_cpu: dict[int, float] = {}
        self.peak = self.worker_peak = self.total_peak = self.children_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        own = self.process.memory_info().rss
        other = _rss(self.worker) if self.worker is not None else 0  # 0: ended (a failed rescore restarts it)
        self.peak, self.worker_peak = max(self.peak, own), max(self.worker_peak, other)
        self.total_peak = max(self.total_peak, own + other)
        if self.children:
            children = self.process.children(recursive=True)
            self.children_peak = max(self.children_peak, sum(_rss(c) for c in children))
            for c in children:  # the last reading of each, so that one gone by the end still counts
                with contextlib.suppress(Exception):
                    self.children_cpu[c.pid] = sum(c.cpu_times()[:2])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _rss(process) -> int:
    try:
        return process.memory_info().rss
    except Exception:  # noqa: BLE001 -- it ended meanwhile
        return 0


def load_in_child(url: str, schema: str, n: int, seed: int) -> None:
    """Set-up in a child process, so that its memory is not counted as the service's."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=_load_views_process, args=(url, schema, n, seed))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError("loading the synthetic views failed")


def _load_views_process(url: str, schema: str, n: int, seed: int) -> None:
    from servicekit.db import Database
    from scoring.rules.loader import load_context

    async def go() -> None:
        db = Database(url, schema=schema, pool_size=1)
        try:
            await load_views(db, load_context(CONFIG), n, seed)
        finally:
            await db.dispose()

    asyncio.run(go())


async def load_views(db, ctx, n: int, seed: int) -> None:
    """Fill household_views with n synthetic households by COPY, then ANALYZE (as autovacuum
    would after a load): set-up, not timed."""
    from scoring.synthetic import DISTRICT_WEIGHTS, generate, to_views

    matrix, missing = generate(ctx.view, n, seed=seed, unknown_rate=0.005)
    views = to_views(ctx.view, matrix, missing)
    rows = matrix.T.copy()
    districts = list(DISTRICT_WEIGHTS)
    now = datetime.now(UTC)
    records = []
    for i, (view, said) in enumerate(views):
        district = view["district_code"] or districts[0]
        area = district[:6] + f"{1 + i % 20:03d}{1 + i % 15:03d}"
        features = rows[i].tobytes()
        records.append((
            f"{uuid.UUID(int=i + 1)}", 1, area, area[:9] + "000", district, "张*明户", True, False, json.dumps(view),
            json.dumps(said), json.dumps({"missing": said, "invalid": [], "clamped": []}), features, ctx.view.layout,
            hashlib.blake2b(features, digest_size=32).hexdigest(), now,
        ))
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.copy_records_to_table("household_views", records=records, columns=[
            "household_id", "version", "area_code", "township_code", "district_code", "label_masked", "synthetic",
            "closed", "view", "missing", "facts", "features", "layout", "input_hash",
            "updated_at"])
        await conn.commit()
        await raw.execute("ANALYZE household_views")


async def copy_baseline(db) -> tuple[float, float, int]:
    """COPY the feature rows out and the same assessment rows in; (seconds out, seconds in, rows)."""
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        records = await raw.fetch("SELECT * FROM assessments WHERE cause = 'household_changed' OR number = 1")
        columns = list(records[0].keys())
        await raw.execute("DROP TABLE IF EXISTS copy_in; CREATE TABLE copy_in (LIKE assessments INCLUDING ALL)")
        tuples = [tuple(r) for r in records]
        del records
        sink = io.BytesIO()

        async def write(chunk: bytes) -> None:
            sink.write(chunk)

        start = time.perf_counter()
        await raw.copy_from_query("SELECT household_id, features FROM household_views", output=write, format="binary")
        out = time.perf_counter() - start
        start = time.perf_counter()
        async with raw.transaction():
            await raw.copy_records_to_table("copy_in", records=tuples, columns=columns)
        into = time.perf_counter() - start
        await raw.execute("DROP TABLE copy_in")
        await conn.commit()
    return out, into, len(tuples)


async def run(url: str) -> dict:
    from servicekit.db import Database, unit_of_work
    from servicekit.migrations import upgrade
    from servicekit.settings import ServiceSettings  # noqa: F401
    from scoring.app import MIGRATIONS
    from scoring.assessments.service import rescore_all
    from scoring.deps import ScoringEngine
    from scoring.engine.runtimes import Runtimes
    from scoring.models import service as models
    from scoring.models.schemas import ModelCreate
    from scoring.profile import load_profile
    from scoring.settings import ScoringSettings
    from servicekit.auth import Caller, Role

    load_start = os.getloadavg()[0]
    schema = f"bench_scoring_{uuid.uuid4().hex[:8]}"
    settings = ScoringSettings(database_url=url, db_schema=schema, config_dir=CONFIG, consume_registry=False,
                               rescore_worker_process=WORKER_PROCESS)
    await asyncio.to_thread(upgrade, MIGRATIONS, settings)
    db = Database.from_settings(settings)
    profile = load_profile(CONFIG)
    engine = ScoringEngine(settings=settings, profile=profile, runtimes=Runtimes(profile.ctx), db=db, wake=lambda _: None)
    try:
        started = time.perf_counter()
        await asyncio.to_thread(load_in_child, settings.effective_database_url, schema, HOUSEHOLDS, 20261128)
        loaded = time.perf_counter() - started
        say(f"loaded {HOUSEHOLDS} views in {loaded:.1f}s")
        await models.bootstrap(engine)
        # As the service does at start-up (not timed with the rescore, reported beside it).
        started = time.perf_counter()
        engine.start_rescore_worker()
        worker = engine.rescore_worker
        if worker is not None:
            await worker.ready()
        worker_start = time.perf_counter() - started
        await settle(db)
        gc.collect()
        async with unit_of_work(db) as session:
            rt = await engine.runtimes.active(session)
        with PeakMemory(worker.pid if worker is not None else None) as memory:
            start, cpu = time.perf_counter(), time.process_time()
            async with unit_of_work(db) as session:
                backend = await backend_cpu(session)
                first = await rescore_all(session, rt, settings, worker=worker)
                first_backend = None if backend is None else await backend_cpu(session, since=backend)
            first_time, first_cpu = time.perf_counter() - start, time.process_time() - cpu
            first_worker = worker.last.cpu_seconds if worker is not None else 0.0
            say(f"first rescore {first_time:.2f}s")

            admin = Caller(subject="bench", role=Role.city_admin, area="330100000000")
            doc = copy.deepcopy(profile.default_model.document)
            doc["version"] = "hz-bench.2"
            medical = next(i for i in doc["indicators"] if i["code"] == "medical_burden")
            for tier in medical["tiers"]:
                tier["points"] = max(tier["points"] * 2, -15)
            async with unit_of_work(db) as session:
                await models.create_draft(session, engine, admin, ModelCreate(document=doc))
            start = time.perf_counter()
            async with unit_of_work(db) as session:
                simulation = await models.simulate(session, engine, "hz-bench.2")
            simulate_time = time.perf_counter() - start
            say(f"simulation {simulate_time:.2f}s")

            async with unit_of_work(db) as session:
                activation = await models.request_activation(session, engine, admin, "hz-bench.2")
            await settle(db)
            start, cpu = time.perf_counter(), time.process_time()
            await models.run_activation(engine, activation.id)
            activate_time, activate_cpu = time.perf_counter() - start, time.process_time() - cpu
            activate_worker = worker.last.cpu_seconds if worker is not None else 0.0
            say(f"activation {activate_time:.2f}s")
        async with unit_of_work(db) as session:
            from scoring.models import repository as models_repo

            done = await models_repo.activation(session, activation.id)
            assert done is not None and done.status == "succeeded", done
        await settle(db)
        copy_out, copy_in, copied = await copy_baseline(db)
    finally:
        await engine.stop_jobs()  # the worker process goes with the service
        await db.dispose()
        await drop_schema(settings.effective_database_url, schema)

    copy_time = copy_out + copy_in
    figures = {
        "households": HOUSEHOLDS,
        "load views, set-up (s)": round(loaded, 1),
        "first rescore, every household new (s)": round(first_time, 2),
        "  first rescore: assessments / events": f"{first.assessed} / {first.events}",
        "  first rescore: CPU of this process / its worker process / its PostgreSQL backend (s)":
            f"{first_cpu:.1f} / {first_worker:.1f} / {'?' if first_backend is None else f'{first_backend:.1f}'}",
        "activation of a changed model (s)": round(activate_time, 2),
        "  activation: CPU of this process / its worker process (s)": f"{activate_cpu:.1f} / {activate_worker:.1f}",
        "  activation: assessments / events": f"{done.households} / {done.events}",
        "COPY features out (s)": round(copy_out, 2),
        "COPY assessment rows in (s)": round(copy_in, 2),
        "COPY out + in (s)": round(copy_time, 2),
        "first rescore / COPY": round(first_time / copy_time, 2),
        "activation / COPY": round(activate_time / copy_time, 2),
        "simulation, both models over everyone (s)": round(simulate_time, 2),
        "simulation own timing (s)": simulation.seconds,
        "levels (first rescore)": dict(sorted(first.levels.items())),
        "rescore worker process": f"started in {worker_start:.2f} s (with the service, not timed)" if worker else "none",
        "peak RSS during the runs (MB)": round(memory.peak / 2**20),
        "  peak RSS of the worker process / of both together (MB)":
            f"{round(memory.worker_peak / 2**20)} / {round(memory.total_peak / 2**20)}",
        "rescore chunk (households)": settings.rescore_chunk_size,
        "load average (1 min) at the start / at the end": f"{load_start:.1f} / {os.getloadavg()[0]:.1f}",
    }
    goals = {
        "first rescore": "< 10 s and <= 3x COPY",
        "activation": "< 10 s and <= 3x COPY",
        "simulation": "< 5 s",
        "memory": "< 1024 MB",
    }
    met = {
        "first rescore": first_time < 10 and first_time <= 3 * copy_time,
        "activation": activate_time < 10 and activate_time <= 3 * copy_time,
        "simulation": simulate_time < 5,
        "memory": memory.total_peak < 2**30,
    }
    assert copied == first.assessed
    return report("scoring_rescore", figures, goals, met)


async def settle(db) -> None:
    """A checkpoint before each timed write (set-up, not timed): the 600 MB of views just loaded,
    or the rows of the rescore before, are then on disk rather than flushed by the checkpointer
    while the step runs. Skipped where the role may not checkpoint."""
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        try:
            await raw.execute("CHECKPOINT")
        except Exception as exc:  # noqa: BLE001 -- insufficient privilege: measure without
            say(f"no checkpoint before the step ({type(exc).__name__})")


async def backend_cpu(session, since: float | None = None) -> float | None:
    """CPU seconds (user + system) of the session's PostgreSQL backend so far, or since
    ``since``; None when the server's processes cannot be read (not on this machine). Beside
    the wall time, this is what other work on the machine does not change."""
    from sqlalchemy import text

    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used if since is None else used - since


def say(message: str) -> None:
    print(f"   .. {message}", flush=True)


def main() -> dict:
    return asyncio.run(run(postgres_url()))  # it may create the database: outside the loop


if __name__ == "__main__":
    main()
