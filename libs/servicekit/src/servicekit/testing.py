"""Test support shared by every service: a token issuer, migrated databases, in-process apps.

Databases are real: PostgreSQL when ``DATABASE_URL`` is set (a fresh schema per test session,
dropped afterwards), otherwise a SQLite file in a temporary folder -- built with the service's
migrations, never ``create_all``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.auth import JWTVerifier, Role
from servicekit.db import Database
from servicekit.settings import ServiceSettings
from servicekit.tokens import SigningKey, standard_claims

S = TypeVar("S", bound=ServiceSettings)

TEST_ISSUER = "http://issuer.test"
TEST_AUDIENCE = "zhongfu"

# Jurisdictions of the demo city used across tests (see config/demo-accounts.yaml).
CITY = "330100000000"
DISTRICT = "330106000000"
TOWNSHIP = "330106001000"
OTHER_TOWNSHIP = "330106002000"
VILLAGE = "330106001001"


class TestIdentity:
    """Signs tokens like the issuer would and hands services a verifier that trusts it."""

    __test__ = False  # not a test class

    def __init__(self, issuer: str = TEST_ISSUER, audience: str = TEST_AUDIENCE) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key = SigningKey.generate()

    def token(self, role: Role | str, *, subject: str | None = None, lifetime: int = 3600, **claims: Any) -> str:
        role = Role(role)
        extra = {"role": role.value, **claims}
        return self.key.sign(
            standard_claims(
                issuer=self.issuer, audience=self.audience, subject=subject or f"test-{role.value}",
                extra=extra, lifetime=lifetime,
            )
        )

    def headers(self, role: Role | str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **claims)}"}

    def verifier(self) -> JWTVerifier:
        async def fetch() -> dict[str, Any]:
            return self.key.jwks()

        return JWTVerifier(self.issuer, self.audience, fetch_jwks=fetch)

    async def token_source(self) -> str:
        return self.token(Role.service, subject="test-service")


def settings_for_tests(settings_cls: type[S], **overrides: Any) -> S:
    base = settings_cls(environment="test", oidc_issuer=TEST_ISSUER, oidc_audience=TEST_AUDIENCE)
    return base.model_copy(update=overrides)


@asynccontextmanager
async def migrated_database(settings: S, migrations_dir: Path, revision: str = "head") -> AsyncIterator[S]:
    """A fresh database for one test session, at head (or ``revision``); PostgreSQL if configured."""
    from servicekit.migrations import upgrade

    if settings.is_postgres:
        schema = f"t_{settings.service_name}_{uuid.uuid4().hex[:8]}"
        ready = settings.model_copy(update={"db_schema": schema})
        await asyncio.to_thread(upgrade, migrations_dir, ready, revision)
        try:
            yield ready
        finally:
            engine = create_async_engine(ready.effective_database_url)
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await engine.dispose()
    else:
        with tempfile.TemporaryDirectory(prefix=f"{settings.service_name}-") as tmp:
            ready = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp}/{settings.service_name}.db"})
            await asyncio.to_thread(upgrade, migrations_dir, ready, revision)
            yield ready


@dataclass
class RunningService:
    """A service app running in-process (lifespan started) with a client per role."""

    app: FastAPI
    settings: ServiceSettings
    identity: TestIdentity

    @property
    def db(self) -> Database:
        return self.app.state.db

    def client(self, role: Role | str | None = None, **claims: Any) -> httpx.AsyncClient:
        headers = self.identity.headers(role, **claims) if role is not None else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver", headers=headers
        )


@asynccontextmanager
async def running_service(
    create_app: Callable[..., FastAPI],
    settings: ServiceSettings,
    identity: TestIdentity,
    **app_kwargs: Any,
) -> AsyncIterator[RunningService]:
    app = create_app(settings, verifier=identity.verifier(), **app_kwargs)
    async with app.router.lifespan_context(app):
        yield RunningService(app=app, settings=settings, identity=identity)



class CollectingMetricExporter(MetricExporter):
    """A metric exporter that keeps what it is given, for ``setup_telemetry(metric_exporter=)``.

    The periodic reader exports on ``meter_provider.force_flush()``: ``collect`` does that.
    """

    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None

    def collect(self, meter_provider: Any) -> dict[str, Any]:
        """Every metric exported now, by name."""
        meter_provider.force_flush()
        return {
            m.name: m
            for rm in self.exported[-1].resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }


_FOREIGN_PROVIDER_SCRIPT = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
namespace = {}
exec(sys.argv[2], namespace)

async def main() -> None:
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        status = (await client.get(sys.argv[3])).status_code
    print(json.dumps([status, [s.name for s in exporter.get_finished_spans()]]))

asyncio.run(main())
"""


def spans_under_foreign_providers(make_app: str, path: str, import_dir: Path) -> tuple[int, list[str]]:
    """GET ``path`` from the ASGI app that the code ``make_app`` binds to ``app``, in a fresh
    process whose global OpenTelemetry providers something else installed (an operator's
    agent, say) before the app was made: the status and the names of the spans recorded
    there. ``import_dir`` goes on ``sys.path`` (the tests' own modules). A fresh process,
    because global providers cannot be unset."""
    done = subprocess.run(
        [sys.executable, "-c", _FOREIGN_PROVIDER_SCRIPT, str(import_dir), make_app, path],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, names = json.loads(done.stdout.strip().splitlines()[-1])
    return status, names


async def raw_http(url: str, payload: bytes, done: Callable[[bytes], bool] | None = None) -> bytes:
    """Send raw bytes to a server; return what came back once ``done(data)`` says so, or at EOF
    (``done`` None: read until the server closes). Five seconds at most for each read."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    data = b""
    try:
        while done is None or not done(data):
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            data += chunk
    finally:
        writer.close()
    return data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(app: Any, port: int | None = None, **config_options: Any) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn (httptools, or the protocol given as ``http``) in this event
    loop; yield its base URL. The server stops gracefully when the block ends."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=config_options.pop("http", "httptools"),
        lifespan=config_options.pop("lifespan", "on"),
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        **config_options,
    )
    server = uvicorn.Server(config)
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _no_signals() -> Any:
    # Tests share one process: the servers must not take SIGINT/SIGTERM from pytest.
    return contextlib.nullcontext()
