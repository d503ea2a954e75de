"""The gateway as one ASGI app: the raw proxy for /api/v1, a small FastAPI app for everything else.

/api/v1 never goes through FastAPI or Starlette middleware: that path is the hot one. Probes,
the merged OpenAPI document, the docs and the development issuer are ordinary FastAPI routes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import aiohttp
import httpx
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from servicekit.auth import JWTVerifier
from servicekit.collector import freeze_startup
from servicekit.errors import NotFound, ServiceUnavailable, install_error_handlers, problem_response
from servicekit.logging import request_id_var
from servicekit.telemetry import native_telemetry_off, setup_telemetry
from servicekit.tokens import SigningKey
from starlette.middleware.cors import CORSMiddleware

from gateway.asgi import Message, Scope, accept_request_id, send_problem
from gateway.auth import EdgeAuth
from gateway.fastpath import FastPath, GatewayProtocol
from gateway.issuer import DevIssuer, issuer_router, load_demo_accounts
from gateway.openapi import MergedOpenAPI
from gateway.proxy import Proxy, Receive, Send, too_many
from gateway.ratelimit import RateLimiter, make_rate_limiter
from gateway.readiness import Readiness
from gateway.routes import RouteTable, RouteTableError
from gateway.settings import GatewaySettings
from gateway.upstream import UpstreamPool

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("gateway")
access_log = logging.getLogger("gateway.access")

PRODUCT_INFO = {
    "title": "Zhongfu platform API (弱有众扶)",
    "version": version("gateway"),
    "description": (
        "Monitoring and assistance of low-income households: the population registry, scoring, "
        "alerts and the matching of needs to partner offers, behind one gateway. Every /api/v1 "
        "call needs a bearer token; errors are RFC 9457 problem documents."
    ),
}
_PROBES = frozenset({"/livez", "/readyz"})


class Gateway:
    """The ASGI app uvicorn runs; its resources live between lifespan startup and shutdown."""

    # servicekit.runner serves the app with this protocol: plain proxied reads skip ASGI.
    http_protocol = GatewayProtocol

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        span_exporter: SpanExporter | None = None,
        metric_exporter: MetricExporter | None = None,
    ) -> None:
        self.settings = settings
        self.upstreams = settings.upstream_urls()
        # Configuration errors surface here, before the server binds its port.
        self.routes = RouteTable.load(
            settings.route_table_file,
            self.upstreams,
            max_body_bytes=settings.max_body_bytes,
            max_batch_body_bytes=settings.max_batch_body_bytes,
        )
        self._addresses = {name: _host_port(url) for name, url in self.upstreams.items()}
        self.issuer: DevIssuer | None = None
        if settings.dev_issuer_enabled:
            accounts = load_demo_accounts(settings.demo_accounts_file)
            key = SigningKey.load_or_create(settings.var_dir / "dev-issuer-key.pem")
            self.issuer = DevIssuer(settings.issuer, settings.oidc_audience, key, accounts)

        self.session: aiohttp.ClientSession | None = None  # probes and OpenAPI documents
        self.pools: dict[str, UpstreamPool] = {}  # the proxied traffic
        self.limiter: RateLimiter | None = None
        self.verifier: JWTVerifier | None = None
        self.proxy: Proxy | None = None
        self.fast_path: FastPath | None = None  # read by GatewayProtocol
        self.readiness: Readiness | None = None
        self.openapi: MergedOpenAPI | None = None
        self._oidc_http: httpx.AsyncClient | None = None

        self._issuer_routes = issuer_router(self.issuer).routes if self.issuer is not None else []
        self.control = self._control_app()
        # servicekit.runner sets `app.state.shutting_down` on SIGTERM; the gateway reads that flag.
        self.state = self.control.state
        self.state.shutting_down = False
        self._control_paths = {"/livez", "/readyz", "/openapi.json", "/docs"} | {
            r.path
            for r in self._issuer_routes  # type: ignore[attr-defined]
        }
        self._api_prefix = self.routes.prefix + "/"
        self._entry: Any = self._dispatch
        # Traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (or a test passes an exporter): a server
        # span around every sampled request but the probes, the service's span its child, and
        # the request-duration metric. Off: no cost. The fast path does the same for the
        # requests it takes (gateway.fastpath), which are never sampled ones.
        self.telemetry = setup_telemetry(
            None, settings, exporter=span_exporter, metric_exporter=metric_exporter
        )
        if self.telemetry.enabled:
            self._entry = self.telemetry.server_middleware(self._entry, tracer_name="gateway")
        if settings.cors_origins:
            self._entry = CORSMiddleware(
                self._entry,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=[
                    "authorization",
                    "content-type",
                    "if-match",
                    "if-none-match",
                    "idempotency-key",
                    "x-request-id",
                    "traceparent",
                    "tracestate",
                ],
                expose_headers=["x-request-id", "etag", "location", "retry-after"],
                max_age=600,
            )

    # -- lifecycle ---------------------------------------------------------------------------

    async def startup(self) -> None:
        s = self.settings
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0,
                limit_per_host=s.upstream_pool_per_host,
                keepalive_timeout=s.upstream_keepalive_seconds,
                ttl_dns_cache=300,
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=s.upstream_connect_timeout,
                sock_read=s.upstream_read_timeout,
            ),
            # A proxy passes bodies and headers as they are: no decompression, no cookies kept
            # between clients, no headers of its own invented.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            trust_env=False,
        )
        if s.rate_limit_enabled:
            self.limiter = make_rate_limiter(
                s.redis_url,
                s.rate_limit_per_second,
                s.rate_limit_burst,
                prefix=s.rate_limit_key_prefix,
            )
        if self.issuer is not None:
            key = self.issuer.key

            async def local_jwks() -> dict[str, Any]:
                return key.jwks()

            self.verifier = JWTVerifier(
                s.issuer,
                s.oidc_audience,
                fetch_jwks=local_jwks,
                cooldown_seconds=s.jwks_cooldown_seconds,
            )
        else:
            self._oidc_http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
            self.verifier = JWTVerifier(
                s.issuer,
                s.oidc_audience,
                http=self._oidc_http,
                cooldown_seconds=s.jwks_cooldown_seconds,
            )
        auth = EdgeAuth(
            self.verifier, cache_seconds=s.token_cache_seconds, cache_size=s.token_cache_size
        )
        self.pools = {
            name: UpstreamPool(
                host,
                port,
                limit=s.upstream_pool_per_host,
                keepalive=s.upstream_keepalive_seconds,
                connect_timeout=s.upstream_connect_timeout,
                read_timeout=s.upstream_read_timeout,
            )
            for name, (host, port) in self._addresses.items()
        }
        self.proxy = Proxy(
            routes=self.routes,
            auth=auth,
            limiter=self.limiter,
            pools=self.pools,
            log_requests=s.access_log,
            traced=self.telemetry.enabled,
        )
        if s.fast_path_enabled:
            self.fast_path = FastPath(
                self.proxy, self.routes.prefix, self.telemetry if self.telemetry.enabled else None
            )
        self.readiness = Readiness(self.session, self.upstreams, s.probe_timeout)
        self.openapi = MergedOpenAPI(
            self.session,
            self.upstreams,
            self.routes,
            gateway_paths=self._own_document,
            info=PRODUCT_INFO,
            dev_issuer=self.issuer is not None,
            ttl=s.openapi_ttl_seconds,
            retry=s.openapi_retry_seconds,
        )
        freeze_startup()  # what the gateway keeps for its life is built (~110,000 objects)
        for note in s.describe_defaults():
            if not note.startswith("DATABASE_URL"):  # the gateway has no database
                log.info(note)
        log.info(
            "gateway routing %d resources under %s",
            len(self.routes.routes),
            self.routes.prefix,
            extra={"upstreams": self.upstreams},
        )

    async def shutdown(self) -> None:
        self.state.shutting_down = True
        self.fast_path = None
        for pool in self.pools.values():
            await pool.close()
        if self.session is not None:
            await self.session.close()
        if self.limiter is not None:
            await self.limiter.close()
        if self._oidc_http is not None:
            await self._oidc_http.aclose()
        self.telemetry.shutdown()

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.control(scope, receive, send)  # lifespan; websockets are refused there
            return
        path: str = scope["path"]
        if path.startswith(self._api_prefix):
            assert self.proxy is not None, "the lifespan has not run"
            await self.proxy.handle(scope, receive, send)
            return

        request_id = accept_request_id(_header(scope, b"x-request-id"))
        request_id_var.set(request_id.decode())
        head = scope["method"] == "HEAD"
        if path not in self._control_paths:
            await send_problem(send, NotFound("No such resource."), request_id, head=head)
            return
        if path == "/oauth/token" and self.limiter is not None:
            # Guessing client secrets is limited per address.
            client = scope.get("client")
            decision = await self.limiter.hit("ip:" + (client[0] if client else "unknown"))
            if not decision.allowed:
                await send_problem(send, too_many(decision.retry_after), request_id, head=head)
                return

        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.control(scope, receive, send_with_id)
        finally:
            if self.settings.access_log:
                access_log.log(
                    logging.DEBUG if path in _PROBES else logging.INFO,
                    "%s %s %s",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    },
                )

    # -- the FastAPI part ------------------------------------------------------------------------

    def _own_document(self) -> dict[str, Any] | None:
        """The gateway's own public paths (the issuer) for the merged document."""
        if not self._issuer_routes:
            return None
        return get_openapi(
            title="gateway", version=PRODUCT_INFO["version"], routes=self._issuer_routes
        )

    def _control_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.startup()
            try:
                yield
            finally:
                await self.shutdown()

        app = FastAPI(
            title="gateway", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan
        )
        native_telemetry_off(app)
        install_error_handlers(app)

        @app.get("/livez", include_in_schema=False)
        async def livez() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz", include_in_schema=False)
        async def readyz(require: Literal["gateway", "all"] = "gateway") -> Response:
            """Ready to take traffic, with every service's readiness reported.

            The gateway's own readiness does not hang on the services': one service down must
            not take every route out of the load balancer (its calls get a 502 naming it).
            ``?require=all`` answers 503 unless every service is ready too, for scripts that
            wait for the whole suite (``make run``, CI's smoke test).
            """
            if self.state.shutting_down:
                # Fails first on shutdown so the load balancer stops sending before we stop.
                return problem_response(ServiceUnavailable("The gateway is shutting down."))
            assert self.readiness is not None
            ready, services = await self.readiness.check()
            if ready or require == "gateway":
                return JSONResponse({"status": "ready" if ready else "degraded", "services": services})
            down = ", ".join(
                sorted(name for name, result in services.items() if result["status"] != "ready")
            )
            return problem_response(
                ServiceUnavailable(f"Not every service is ready: {down}.", services=services)
            )

        @app.get("/openapi.json", include_in_schema=False)
        async def openapi() -> Response:
            assert self.openapi is not None
            return Response(await self.openapi.document(), media_type="application/json")

        @app.get("/docs", include_in_schema=False)
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=PRODUCT_INFO["title"])

        app.router.routes.extend(self._issuer_routes)
        return app


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        # In-cluster hops are plain HTTP to a service name; TLS belongs to the mesh or ingress.
        raise RouteTableError(f"upstream URL {url!r} must be http://HOST[:PORT]")
    return parts.hostname, parts.port or 80


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def create_app(
    settings: GatewaySettings | None = None,
    *,
    span_exporter: SpanExporter | None = None,
    metric_exporter: MetricExporter | None = None,
) -> Gateway:
    return Gateway(
        settings or GatewaySettings(), span_exporter=span_exporter, metric_exporter=metric_exporter
    )
