"""A storm of 25,000 alerts (the brief's yearly figure) raised, dispatched to webhooks and counted
in the statistics, with no delivery lost or sent twice to a healthy endpoint.

Ten townships each subscribe an endpoint on a local receiver (allowed through the test-only
allowlist); then the fake scoring feed releases 25,000 assessments that each raise an alert.
Measured: time until every alert is raised, until every delivery has arrived, duplicates and
losses at the receiver, and the statistics' total. ``python -m bench alerts_storm``
(N via ALERTS_STORM_ALERTS, default 25000). PostgreSQL: ``DATABASE_URL``, else bench.common's default.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.alerts_backlog import TOWNSHIPS, scoring_cursor, split_mode, suite, token
from bench.common import report


class Receiver:
    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.port = _free_port()
        self.app = Starlette(routes=[Route("/{town}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        await request.body()
        self.ids[request.headers["webhook-id"]] += 1
        return Response(status_code=204)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run(urls: dict, receiver: Receiver, n: int) -> dict:
    server = uvicorn.Server(uvicorn.Config(receiver.app, host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=urls["alerts"], timeout=30) as c:
        for town in TOWNSHIPS:
            headers = {"Authorization": f"Bearer {token(urls['fake'], 'town_worker', town)}"}
            r = await c.post("/api/v1/subscriptions", json={"url": f"http://127.0.0.1:{receiver.port}/{town}", "event_types": ["alert.raised"]}, headers=headers)
            assert r.status_code == 201, r.text
        httpx.post(f"{urls['fake']}/bench/release")
        start = time.monotonic()
        raised_at = delivered_at = None
        while time.monotonic() - start < 600:
            await asyncio.sleep(0.5)
            if raised_at is None and await scoring_cursor(urls["env"]) >= n:
                raised_at = time.monotonic() - start
            if len(receiver.ids) >= n:
                delivered_at = time.monotonic() - start
                break
        await asyncio.sleep(3)  # anything sent twice would arrive now
        admin = {"Authorization": f"Bearer {token(urls['fake'], 'city_admin', '330100000000')}"}
        stats = (await c.get("/api/v1/alerts/statistics", headers=admin)).json()
    server.should_exit = True
    await serving
    return {"raised_s": raised_at, "delivered_s": delivered_at, "stats": stats}


def main() -> dict:
    n = int(os.environ.get("ALERTS_STORM_ALERTS", "25000"))
    receiver = Receiver()
    env = {"WEBHOOK_TEST_ALLOW_NETWORKS": '["127.0.0.1/32"]', "WEBHOOK_POLL_SECONDS": "0.5"}
    with suite(n, 11, triggers=True, held=True, extra_env=env) as urls:
        result = asyncio.run(_run(urls, receiver, n))
    unique = len(receiver.ids)
    duplicates = sum(c - 1 for c in receiver.ids.values())
    counted = result["stats"]["total"]["raised"]
    figures = {
        "database": "postgresql",
        "processes": "API + worker (split)" if split_mode() else "one (single)",
        "alerts": n,
        "seconds until all raised": round(result["raised_s"], 1) if result["raised_s"] else "not finished",
        "seconds until all delivered": round(result["delivered_s"], 1) if result["delivered_s"] else "not finished in 600 s",
        "deliveries received (unique)": unique,
        "deliveries lost": n - unique,
        "deliveries duplicated": duplicates,
        "alerts counted in statistics": counted,
    }
    goals = {"lost": "0 lost", "duplicated": "0 duplicated", "statistics": f"{n} counted"}
    met = {"lost": unique == n, "duplicated": duplicates == 0, "statistics": counted == n}
    return report("alerts_storm", figures, goals, met)
