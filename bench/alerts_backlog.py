"""After a full rescore: the alerts service consumes 230,000 assessment.updated and raises what it
must within 60 s, while a township's inbox read keeps a p99 under 50 ms.

Processes on this machine: a fake scoring feed (which is also the token issuer), the alerts
service (``python -m alerts serve``: by default an API process and a worker process that consumes
the feed, ``ALERTS_BENCH_MODE=single`` for one process doing both) and this one, reading the
inbox about 20 times a second while the backlog drains. PostgreSQL: ``DATABASE_URL``, else bench.common's default.
``python -m bench alerts_backlog`` (N via ALERTS_BENCH_EVENTS, default 230000).

The harness (fake scoring + issuer, the service as a subprocess) is shared with alerts_storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import drop_schema, postgres_url, report

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
TOWNSHIPS = [f"330106{n:03d}000" for n in range(1, 11)]
LEVEL_ONE_SHARE = 0.08  # of the rescored households, this share falls into level 1


# ---- the fake scoring feed and issuer (runs in a child process) ---------------------------

def fake_level(position: int, seed: int) -> int:
    """The event's level, drawn deterministically (a mixed hash: seeding a Random per event cost
    more than the rest of the event)."""
    x = (position * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 31)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 29
    return 1 if (x & 0xFFFFFFFF) / 2**32 < LEVEL_ONE_SHARE else 2 + (x >> 63)


def fake_event(position: int, seed: int, triggers: bool) -> dict[str, Any]:
    town = TOWNSHIPS[position % len(TOWNSHIPS)]
    level = fake_level(position, seed)
    prev = 2 if level == 1 else level
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


_TEMPLATES: dict[tuple[int, int, int, bool, int], str] = {}
_MARK = "\u0000"


def fake_event_json(position: int, seed: int, triggers: bool) -> str:
    """``fake_event`` as compact JSON, filled into a template cached per shape: the fake feed must
    cost little, or it takes the CPU the service under test should have (building each event
    afresh cost about as much as consuming it)."""
    key = (position % len(TOWNSHIPS), position % 20, fake_level(position, seed), triggers, seed)
    template = _TEMPLATES.get(key)
    if template is None:
        sample = fake_event(position, seed, triggers)
        text = json.dumps(sample, separators=(",", ":"))
        for name, value in (("event", sample["id"]), ("household", sample["data"]["household_id"]),
                            ("assessment", sample["data"]["assessment_id"]), ("position", f'"position":{position},')):
            text = text.replace(value, _MARK + name + _MARK if name != "position" else f'"position":{_MARK}position{_MARK},')
        template = _TEMPLATES[key] = text
    return (
        template.replace(f"{_MARK}position{_MARK}", str(position))
        .replace(f"{_MARK}event{_MARK}", str(uuid.UUID(int=(seed << 96) + position)))
        .replace(f"{_MARK}household{_MARK}", str(uuid.UUID(int=(seed << 64) + position)))
        .replace(f"{_MARK}assessment{_MARK}", str(uuid.UUID(int=(seed << 80) + position)))
    )


def expected_alerts(n: int, seed: int, triggers: bool) -> int:
    return n if triggers else sum(1 for p in range(1, n + 1) if fake_level(p, seed) == 1)


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
        events = [fake_event_json(p, seed, triggers) for p in range(after + 1, end + 1)]
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


def split_mode() -> bool:
    """``ALERTS_BENCH_MODE=split`` (the default): the API in one process, the consumer of scoring's
    feed and the background work in another (docs/alerts.md, "Processes"); ``single``: one
    process does everything, as in the embedded default."""
    mode = os.environ.get("ALERTS_BENCH_MODE", "split")
    if mode not in ("split", "single"):
        raise SystemExit("ALERTS_BENCH_MODE is split or single")
    return mode == "split"


@contextlib.contextmanager
def suite(n: int, seed: int, *, triggers: bool, held: bool = False, extra_env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The fake scoring feed and a freshly migrated alerts service; yields their addresses."""
    tmp = Path(tempfile.mkdtemp(prefix="alerts-bench-"))
    fake_port, alerts_port, worker_port = free_port(), free_port(), free_port()
    schema = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "DATABASE_URL": postgres_url(), "PORT": str(alerts_port), "OIDC_ISSUER": f"http://127.0.0.1:{fake_port}",
        "SCORING_URL": f"http://127.0.0.1:{fake_port}", "CONFIG_DIR": str(REPO / "config"), "VAR_DIR": str(tmp),
        "LOG_LEVEL": "WARNING", "DB_SCHEMA": schema, "RUN_SWEEPER": "false", **(extra_env or {}),
    }
    try:
        with process([PY, "-m", "bench.alerts_backlog", "fake", str(fake_port), str(n), str(seed), "1" if triggers else "0", "1" if held else "0"], env, tmp / "fake.log"):
            wait_http(f"http://127.0.0.1:{fake_port}/jwks")
            subprocess.run([PY, "-m", "alerts", "migrate"], env=env, check=True, cwd=REPO, capture_output=True)
            with contextlib.ExitStack() as stack:
                if split_mode():
                    worker = {**env, "PORT": str(worker_port)}
                    # The worker yields the CPU to the API (its own pod with its own CPU in a cluster).
                    nice = ["nice", "-n", os.environ.get("ALERTS_BENCH_WORKER_NICE", "10")]
                    stack.enter_context(process([*nice, PY, "-m", "alerts", "serve"], worker, tmp / "worker.log"))
                    wait_http(f"http://127.0.0.1:{worker_port}/livez")
                    api = {**env, "CONSUME_SCORING": "false", "RUN_DISPATCHER": "false"}
                else:
                    api = env
                stack.enter_context(process([PY, "-m", "alerts", "serve"], api, tmp / "alerts.log"))
                wait_http(f"http://127.0.0.1:{alerts_port}/livez")
                yield {"fake": f"http://127.0.0.1:{fake_port}", "alerts": f"http://127.0.0.1:{alerts_port}", "env": env, "tmp": tmp}
    finally:
        # Only once the service has stopped: dropping a schema it still writes to deadlocks.
        asyncio.run(drop_schema(env["DATABASE_URL"], schema))




def token(fake: str, role: str, area: str) -> str:
    return httpx.get(f"{fake}/bench/token", params={"role": role, "area": area}).json()["token"]


async def feed_head(client: httpx.AsyncClient) -> int:
    return (await client.get("/internal/feed", params={"after": 0, "limit": 1})).json()["head"]


async def scoring_cursor(env: dict[str, str]) -> int:
    """The consumer's cursor, read from the service's own database without taking its write lock."""
    import asyncpg

    conn = await asyncpg.connect(env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchval(f'SELECT position FROM "{env["DB_SCHEMA"]}".consumer_cursors WHERE feed = $1', "scoring")
    finally:
        await conn.close()
    return row or 0


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
        consumed = n if done_at else await scoring_cursor(urls["env"])
        elapsed = done_at or time.monotonic() - start
        service_headers = {"Authorization": f"Bearer {token(urls['fake'], 'city_admin', '330100000000')}"}
        stats = (await c.get("/api/v1/alerts/statistics", params={"group_by": "district"}, headers=service_headers)).json()
    return {"seconds": done_at, "rate": consumed / elapsed, "latencies": latencies, "raised": stats["total"]["raised"]}


def main() -> dict:
    n = int(os.environ.get("ALERTS_BENCH_EVENTS", "230000"))
    seed = 7
    expected = expected_alerts(n, seed, triggers=False)
    with suite(n, seed, triggers=False) as urls:
        result = asyncio.run(_measure(urls, n, seed))
    seconds = result["seconds"]
    p99 = percentile(result["latencies"], 0.99)
    figures = {
        "database": "postgresql",
        "processes": "API + worker (split)" if split_mode() else "one (single)",
        "events consumed": n,
        "seconds to consume the backlog": round(seconds, 1) if seconds else "not finished in 180 s",
        "events per second": round(result["rate"]),
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
