"""The one convention every benchmark follows: print the figures, write bench/results/NAME.json."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/zhongfu_dev"


def postgres_url() -> str:
    """The PostgreSQL database benchmarks use: ``DATABASE_URL``, else the local ``zhongfu_dev``.

    The default database is created when it does not exist yet, so that ``make bench`` works on a
    fresh machine with only the local server running.
    """
    import os

    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        return url
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'zhongfu_dev'") is None:
                await conn.execute("CREATE DATABASE zhongfu_dev")
        finally:
            await conn.close()

    asyncio.run(create())
    return DEFAULT_URL


def report(name: str, figures: dict[str, Any], goals: dict[str, str], met: dict[str, bool]) -> dict:
    """Print and save one benchmark's outcome.

    ``figures`` are what was measured, ``goals`` the target each was held to (in words, e.g.
    ``"ratio >= 0.5"``), ``met`` whether each goal was reached.
    """
    result = {
        "name": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "figures": figures,
        "goals": goals,
        "met": met,
        "all_met": all(met.values()) if met else False,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"== {name}")
    for key, value in figures.items():
        print(f"   {key:<40} {value}")
    for key, goal in goals.items():
        print(f"   goal {key:<35} {goal:<30} {'MET' if met.get(key) else 'NOT MET'}")
    return result


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
