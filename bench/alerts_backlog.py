"""After a full rescore: the alerts service consumes 230,000 assessment.updated and raises what it
must within 60 s, while a township's inbox read keeps a p99 under 50 ms.

Three processes on this machine: a fake scoring feed (which is also the token issuer), the alerts
service (uvicorn, ``python -m alerts serve``) and this one, reading the inbox about 20 times a
second while the backlog drains. PostgreSQL when DATABASE_URL is set, else SQLite.
``python -m bench alerts_backlog`` (N via ALERTS_BENCH_EVENTS, default 230000).

The harness (fake scoring + issuer, the service as a subprocess) is shared with alerts_storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import report

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
TOWNSHIPS = [f"330106{n:03d}000" for n in range(1, 11)]
LEVEL_ONE_SHARE = 0.08  # of the rescored households, this share falls into level 1


# ---- the fake scoring feed and issuer (runs in a child process) ---------------------------

def fake_event(position: int, seed: int, triggers: bool) -> dict[str, Any]:
    rnd = random.Random(seed * 1_000_003 + position)
    town = TOWNSHIPS[position % len(TOWNSHIPS)]
    falls = rnd.random() < LEVEL_ONE_SHARE
    level, prev = (1, 2) if falls else (rnd.choice((2, 3)), None)
    prev = prev if prev is not None else level
    hh = str(uuid.UUID(int=(seed << 64) + position))
    return {
        "position": position, "id": str(uuid.UUID(int=(seed << 96) + position)), "type": "assessment.updated",
        "subject": hh, "occurred_at": "2026-11-28T03:00:00Z",
        "data": {
            "assessment_id": str(uuid.UUID(int=(seed << 80) + position)), "household_id": hh, "household_version": 2,
            "area_code": town[:9] + f"{1 + position % 20:03d}", "township_code": town, "district_code": "330106000000",
            "label_masked": "李*华户", "score": 55.0 if level == 1 else 75.0, "level": level, "previous_level": prev,
            "previous_score": 70.0, "cause": "household_changed" if triggers else "model_activated",
            "dimensions": {"source": 10, "structure": 12, "health": 6, "property": 9, "expenditure": 6, "employment": 8, "other": 5},
            "indicators": [{"code": "low_income", "dimension": "property", "points": -8}],
            "triggers": [{"code": "major_illness_diagnosed", "member_ref": "m1", "effective_date": "2026-11-20", "source": "health"}] if triggers else [],
            "model_version": "hz-2026.2",
            "portrait": {"difficulty": "relatively_difficult", "causes": ["illness"], "needs": ["medical"], "five_types": ["expenditure"]},
            "suggestions": {"policies": [{"code": "medical_assistance", "eligible": True, "receiving": False}], "services": []},
            "assessed_at": "2026-11-28T03:00:00Z",
        },
    }


def expected_alerts(n: int, seed: int, triggers: bool) -> int:
    return n if triggers else sum(1 for p in range(1, n + 1) if fake_event(p, seed, False)["data"]["level"] == 1)


def serve_fake(port: int, n: int, seed: int, triggers: bool, held: bool = False) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from servicekit.testing import TestIdentity

    issuer = f"http://127.0.0.1:{port}"
    identity = TestIdentity(issuer=issuer)
    released = [not held]  # the storm holds the feed back until its subscriptions exist

    async def release(_r: Request) -> Response:
        released[0] = True
        return JSONResponse({"released": True})

    async def disco(_r: Request) -> Response:
        return JSONResponse({"issuer": issuer, "jwks_uri": f"{issuer}/jwks", "token_endpoint": f"{issuer}/oauth/token"})

    async def jwks(_r: Request) -> Response:
        return JSONResponse(identity.key.jwks())

    async def token(_r: Request) -> Response:
        return JSONResponse({"access_token": identity.token("service", subject="svc-alerts"), "expires_in": 3600})

    async def bench_token(r: Request) -> Response:
        q = r.query_params
        return JSONResponse({"token": identity.token(q["role"], subject=q.get("sub", "bench"), area=q["area"])})

    async def feed(r: Request) -> Response:
        after = int(r.query_params.get("after", 0))
        limit = int(r.query_params.get("limit", 100))
        end = min(n, after + limit) if released[0] else after
        events = [json.dumps(fake_event(p, seed, triggers), separators=(",", ":")) for p in range(after + 1, end + 1)]
        if not events:
            await asyncio.sleep(min(float(r.query_params.get("wait", 0)), 1.0))
        body = '{"events":[' + ",".join(events) + f'],"next_after":{end},"head":{n}}}'
        return Response(body, media_type="application/json")

    app = Starlette(routes=[
        Route("/.well-known/openid-configuration", disco), Route("/jwks", jwks), Route("/oauth/token", token, methods=["POST"]),
        Route("/bench/token", bench_token), Route("/internal/feed", feed), Route("/bench/release", release, methods=["POST"]),
    ])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="uvloop", http="httptools")


# ---- harness ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def suite(n: int, seed: int, *, triggers: bool, held: bool = False, extra_env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The fake scoring feed and a freshly migrated alerts service; yields their addresses."""
    tmp = Path(tempfile.mkdtemp(prefix="alerts-bench-"))
    fake_port, alerts_port = free_port(), free_port()
    schema = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "PORT": str(alerts_port), "OIDC_ISSUER": f"http://127.0.0.1:{fake_port}",
        "SCORING_URL": f"http://127.0.0.1:{fake_port}", "CONFIG_DIR": str(REPO / "config"), "VAR_DIR": str(tmp),
        "LOG_LEVEL": "WARNING", "DB_SCHEMA": schema, "RUN_SWEEPER": "false", **(extra_env or {}),
    }
    pg = env.get("DATABASE_URL", "").startswith("postgres")
    with process([PY, "-m", "bench.alerts_backlog", "fake", str(fake_port), str(n), str(seed), "1" if triggers else "0", "1" if held else "0"], env, tmp / "fake.log"):
        wait_http(f"http://127.0.0.1:{fake_port}/jwks")
        subprocess.run([PY, "-m", "alerts", "migrate"], env=env, check=True, cwd=REPO, capture_output=True)
        with process([PY, "-m", "alerts", "serve"], env, tmp / "alerts.log"):
            wait_http(f"http://127.0.0.1:{alerts_port}/livez")
            try:
                yield {"fake": f"http://127.0.0.1:{fake_port}", "alerts": f"http://127.0.0.1:{alerts_port}", "env": env, "tmp": tmp}
            finally:
                if pg:
                    _drop_schema(env["DATABASE_URL"], schema)


def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()

    asyncio.run(drop())


def token(fake: str, role: str, area: str) -> str:
    return httpx.get(f"{fake}/bench/token", params={"role": role, "area": area}).json()["token"]


async def feed_head(client: httpx.AsyncClient) -> int:
    return (await client.get("/internal/feed", params={"after": 0, "limit": 1})).json()["head"]


async def scoring_cursor(env: dict[str, str]) -> int:
    """The consumer's cursor, read from the service's own database without taking its write lock."""
    url = env.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            row = await conn.fetchval(f'SELECT position FROM "{env["DB_SCHEMA"]}".consumer_cursors WHERE feed = $1', "scoring")
        finally:
            await conn.close()
        return row or 0
    import sqlite3

    path = Path(env["VAR_DIR"]) / "alerts.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
        row = conn.execute("SELECT position FROM consumer_cursors WHERE feed = 'scoring'").fetchone()
    return row[0] if row else 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def _measure(urls: dict[str, Any], n: int, seed: int) -> dict[str, Any]:
    town = TOWNSHIPS[0]
    headers = {"Authorization": f"Bearer {token(urls['fake'], 'town_worker', town)}"}
    latencies: list[float] = []
    start = time.monotonic()
    done_at = None
    async with httpx.AsyncClient(base_url=urls["alerts"], headers=headers, timeout=10) as c:
        while time.monotonic() - start < 180:
            t0 = time.perf_counter()
            r = await c.get("/api/v1/alerts", params={"limit": 20, "status": "raised"})
            latencies.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
            if len(latencies) % 20 == 0 and await scoring_cursor(urls["env"]) >= n:
                done_at = time.monotonic() - start
                break
            await asyncio.sleep(0.05)
        service_headers = {"Authorization": f"Bearer {token(urls['fake'], 'city_admin', '330100000000')}"}
        stats = (await c.get("/api/v1/alerts/statistics", params={"group_by": "district"}, headers=service_headers)).json()
    return {"seconds": done_at, "latencies": latencies, "raised": stats["total"]["raised"]}


def main() -> dict:
    n = int(os.environ.get("ALERTS_BENCH_EVENTS", "230000"))
    seed = 7
    expected = expected_alerts(n, seed, triggers=False)
    with suite(n, seed, triggers=False) as urls:
        result = asyncio.run(_measure(urls, n, seed))
    seconds = result["seconds"]
    p99 = percentile(result["latencies"], 0.99)
    db = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    figures = {
        "database": db,
        "events consumed": n,
        "seconds to consume the backlog": round(seconds, 1) if seconds else "not finished in 180 s",
        "events per second": round(n / seconds) if seconds else None,
        "alerts raised / expected": f"{result['raised']} / {expected}",
        "inbox reads during the backlog": len(result["latencies"]),
        "inbox p50 ms": round(percentile(result["latencies"], 0.5), 1),
        "inbox p99 ms": round(p99, 1),
    }
    goals = {"backlog": "consumed within 60 s", "raised": "exactly the expected alerts", "inbox": "p99 < 50 ms"}
    met = {"backlog": bool(seconds) and seconds <= 60, "raised": result["raised"] == expected, "inbox": p99 < 50}
    return report("alerts_backlog", figures, goals, met)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "fake":
        serve_fake(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6] == "1")
