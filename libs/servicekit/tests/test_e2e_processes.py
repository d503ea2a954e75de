"""The event plumbing across real processes: a change committed in one service reaches a
consumer in another exactly once, through a consumer killed mid-batch and a producer restart."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from kitapp.app import MIGRATIONS, KitSettings, Note
from servicekit.db import Database
from servicekit.testing import migrated_database, settings_for_tests

HERE = Path(__file__).resolve().parent
AREA = "330106001001"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.p: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self.p = subprocess.Popen([sys.executable, *self.args], env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        return self

    def signal(self, sig: int) -> None:
        if self.p and self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait(timeout=30)


async def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            try:
                if (await c.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} not ready")


def service_env(settings: KitSettings, port: int, issuer: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_SCHEMA", "REDIS_URL")}
    env.update(
        PYTHONPATH=str(HERE), ENVIRONMENT="test", HOST="127.0.0.1", PORT=str(port), OIDC_ISSUER=issuer,
        DATABASE_URL=settings.effective_database_url, DB_SCHEMA=settings.effective_db_schema,
        SERVICE_CLIENT_ID="svc-test", SERVICE_CLIENT_SECRET="not-checked-by-the-test-issuer",
        LOG_LEVEL="WARNING", **extra,
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env


async def copies(db: Database) -> tuple[int, int]:
    # A reading connection: on SQLite it never queues for the write lock the consumer holds.
    async with db.reading() as conn:
        total = (await conn.execute(select(func.count()).select_from(Note))).scalar_one()
        distinct = (await conn.execute(select(func.count(func.distinct(Note.text))))).scalar_one()
    return total, distinct


async def test_exactly_once_through_kills_and_restarts(tmp_path):
    async with migrated_database(settings_for_tests(KitSettings), MIGRATIONS) as producer_settings, \
            migrated_database(settings_for_tests(KitSettings), MIGRATIONS) as consumer_settings:
        issuer_port, producer_port, consumer_port = free_port(), free_port(), free_port()
        issuer = f"http://127.0.0.1:{issuer_port}"
        producer_url = f"http://127.0.0.1:{producer_port}"
        procs: list[Proc] = []
        consumer_db = Database.from_settings(consumer_settings)
        try:
            procs.append(Proc([str(HERE / "kitapp" / "issuer.py"), str(issuer_port), str(tmp_path / "key.pem")],
                              dict(os.environ), tmp_path / "issuer.log").start())
            producer = Proc([str(HERE / "kitapp" / "serve.py")], service_env(producer_settings, producer_port, issuer),
                            tmp_path / "producer.log").start()
            procs.append(producer)
            await wait_ready(f"{issuer}/jwks")
            await wait_ready(f"{producer_url}/readyz")
            async with httpx.AsyncClient(timeout=30) as c:
                token = (await c.post(f"{issuer}/token", params={"role": "city_admin"})).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}

                async def produce(n: int, tag: str) -> None:
                    for i in range(n):
                        r = await c.post(f"{producer_url}/api/v1/notes", json={"area_code": AREA, "text": f"{tag}{i}"}, headers=auth)
                        assert r.status_code == 201, r.text

                await produce(300, "a")
                consumer_env = service_env(consumer_settings, consumer_port, issuer, KIT_PRODUCER_URL=producer_url, KIT_SLOW_MS="40")
                consumer = Proc([str(HERE / "kitapp" / "serve.py")], consumer_env, tmp_path / "consumer.log").start()
                procs.append(consumer)
                await wait_ready(f"http://127.0.0.1:{consumer_port}/readyz")
                # Let it get into a batch (50 events x 40 ms: the 300 take 12 s, so a test process
                # starved for seconds on a busy machine still kills it half-way), then kill it
                # without warning.
                deadline = time.monotonic() + 30
                while (await copies(consumer_db))[0] < 50 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.25)
                consumer.signal(signal.SIGKILL)
                killed_at = (await copies(consumer_db))[0]
                assert 50 <= killed_at < 300, killed_at

                # The producer restarts while the consumer is down and comes back.
                producer.signal(signal.SIGTERM)
                # uvicorn re-raises the signal once its graceful shutdown is complete
                assert producer.p.returncode in (0, -signal.SIGTERM)
                assert "Traceback" not in (tmp_path / "producer.log").read_text()
                producer.start()
                await wait_ready(f"{producer_url}/readyz")
                consumer.start()
                await produce(100, "b")

                deadline = time.monotonic() + 90
                while (await copies(consumer_db))[0] < 400 and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                # a graceful stop finishes the batch in hand, and loses nothing
                consumer.signal(signal.SIGTERM)
                total, distinct = await copies(consumer_db)
                assert (total, distinct) == (400, 400)
                feed = (await c.get(f"{producer_url}/internal/feed", params={"limit": 1000},
                                    headers={"Authorization": f"Bearer {(await c.post(f'{issuer}/token')).json()['access_token']}"})).json()
                assert feed["head"] == 400
            async with consumer_db.sessionmaker() as s:
                copied = set((await s.execute(select(Note.text))).scalars())
            assert copied == {e["id"] for e in feed["events"]}
        finally:
            for proc in reversed(procs):
                proc.signal(signal.SIGTERM)
            await consumer_db.dispose()
