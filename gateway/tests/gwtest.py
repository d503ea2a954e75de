"""Test helpers: fake services and gateways on real 127.0.0.1 sockets, tokens of every kind."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from gateway.app import Gateway, create_app
from gateway.settings import GatewaySettings
from servicekit.testing import free_port, serving
from servicekit.tokens import SigningKey, standard_claims

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("registry", "scoring", "alerts", "matching")


@dataclass
class Upstream:
    """A fake service: records what reached it and answers the way a test asks."""

    name: str
    ready: bool = True
    openapi: dict[str, Any] | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)
    upload_started: asyncio.Event = field(default_factory=asyncio.Event)
    download_go_on: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None)

        @app.get("/readyz")
        async def readyz() -> Response:
            return JSONResponse(
                {"status": "ready" if self.ready else "not_ready"},
                status_code=200 if self.ready else 503,
            )

        @app.get("/openapi.json")
        async def openapi() -> Response:
            if self.openapi is None:
                return JSONResponse({"detail": "none"}, status_code=404)
            return JSONResponse(self.openapi)

        @app.post("/api/v1/feeds/upload")
        async def upload(request: Request) -> dict[str, Any]:
            digest = hashlib.sha256()
            size = chunks = 0
            async for chunk in request.stream():
                if chunk:
                    chunks += 1
                    size += len(chunk)
                    digest.update(chunk)
                    self.upload_started.set()
            return {"size": size, "sha256": digest.hexdigest(), "chunks": chunks}

        @app.get("/api/v1/feeds/download")
        async def download(size: int, gate: bool = False) -> StreamingResponse:
            async def body() -> AsyncIterator[bytes]:
                block = b"x" * 65536
                sent = 0
                first = True
                while sent < size:
                    piece = block[: min(len(block), size - sent)]
                    sent += len(piece)
                    yield piece
                    if first and gate:
                        # Wait for the client to get the first chunk: only a streaming
                        # proxy lets it through.
                        first = False
                        await asyncio.wait_for(self.download_go_on.wait(), 10)

            return StreamingResponse(body(), media_type="application/octet-stream")

        @app.get("/api/v1/households/slow")
        async def slow(seconds: float = 2.0) -> dict[str, str]:
            await asyncio.sleep(seconds)
            return {"status": "late"}

        @app.get("/api/v1/households/hop")
        async def hop() -> Response:
            return Response(
                b"{}",
                media_type="application/json",
                headers={
                    "Connection": "X-Named-Hop",
                    "X-Named-Hop": "1",
                    "Keep-Alive": "timeout=5",
                    "Proxy-Authenticate": "Basic",
                    "Trailer": "X-Checksum",
                    "Upgrade": "h2c",
                    "X-Kept": "yes",
                    "X-Request-Id": "from-upstream-0001",
                },
            )

        @app.api_route("/api/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def echo(request: Request, rest: str) -> dict[str, Any]:
            body = await request.body()
            record = {
                "service": self.name,
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
                "query": request.url.query,
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]
                ],
                "body_size": len(body),
                "client_port": request.client.port if request.client else None,
            }
            self.seen.append(record)
            return record

        return app


def header_values(record: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in record["headers"] if k == name.lower()]


class Tokens:
    """Tokens signed with the gateway's development key, good and bad."""

    def __init__(self, gateway: Gateway) -> None:
        assert gateway.issuer is not None
        self.key: SigningKey = gateway.issuer.key
        self.issuer = gateway.settings.issuer
        self.audience = gateway.settings.oidc_audience

    def make(
        self, subject: str = "town-worker", *, key: SigningKey | None = None, **overrides: Any
    ) -> str:
        claims = standard_claims(
            issuer=overrides.pop("issuer", self.issuer),
            audience=overrides.pop("audience", self.audience),
            subject=subject,
            extra={"role": "town_worker", "area": "330106001000", "client_id": subject},
            now=overrides.pop("now", None),
        )
        claims.update(overrides)
        return (key or self.key).sign(claims)


def gateway_settings(tmp: Path, upstreams: dict[str, str], **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "var_dir": tmp,
        "demo_accounts_file": REPO / "config" / "demo-accounts.yaml",
        "route_table_file": REPO / "config" / "routes.yaml",
        "registry_url": upstreams.get("registry", "http://127.0.0.1:9"),
        "scoring_url": upstreams.get("scoring", "http://127.0.0.1:9"),
        "alerts_url": upstreams.get("alerts", "http://127.0.0.1:9"),
        "matching_url": upstreams.get("matching", "http://127.0.0.1:9"),
        "upstream_read_timeout": 1.0,
        "probe_timeout": 0.5,
        "max_body_bytes": 64 * 1024,
        "rate_limit_enabled": False,
        "access_log": False,
        "redis_url": None,
        "oidc_issuer": None,
        "environment": "test",
    }
    values.update(overrides)
    return GatewaySettings(**values)


@dataclass
class RunningGateway:
    url: str
    app: Gateway
    tokens: Tokens | None
    client: httpx.AsyncClient

    issued: dict[str, str] = field(default_factory=dict)

    def auth(self, subject: str = "town-worker", **kw: Any) -> dict[str, str]:
        """A bearer header; without overrides the subject's token is reused, as clients do."""
        assert self.tokens is not None
        if kw:
            return {"Authorization": f"Bearer {self.tokens.make(subject, **kw)}"}
        if subject not in self.issued:
            self.issued[subject] = self.tokens.make(subject)
        return {"Authorization": f"Bearer {self.issued[subject]}"}


@asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[RunningGateway]:
    app = create_app(settings)
    # Served as in production: with the gateway's own protocol (its fast path included).
    async with (
        serving(app, http=app.http_protocol) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield RunningGateway(url, app, Tokens(app) if app.issuer else None, client)


def assert_problem(
    response: httpx.Response, status: int, *, not_echoing: tuple[str, ...] = ()
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:zhongfu:problem:")
    assert body["title"] and body["detail"]
    for marker in not_echoing:
        assert marker not in response.text
    return body
