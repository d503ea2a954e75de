"""The app factory every service uses, so that knowing one service means knowing all.

It wires the same things in the same order: JSON logs, problem errors, request ids and body
limits, the token verifier, the database, probes, the feed, telemetry, and the service's
consumers, with a graceful shutdown (readiness fails first, consumers finish their batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import JWTVerifier
from servicekit.collector import freeze_startup
from servicekit.db import Database
from servicekit.errors import (
    PROBLEM_JSON, BadRequest, PayloadTooLarge, Problem, UnsupportedMediaType, dumps_problem, install_error_handlers,
)
from servicekit.events.consumer import FeedConsumer
from servicekit.events.feed import FeedNotifier, feed_router
from servicekit.fastread import FastRead, protocol_for
from servicekit.idempotency import HEADER as KEY_HEADER
from servicekit.idempotency import KEY_REQUIRED_MARK
from servicekit.jobs import feed_pruning_job
from servicekit.logging import AccessLogMiddleware, accept_request_id, configure_logging, request_id_var
from servicekit.telemetry import native_telemetry_off, setup_telemetry
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

PROBE_PATHS = frozenset({"/livez", "/readyz"})
JSON_TYPES = ("application/json", "application/merge-patch+json", "application/problem+json")

ConsumerFactory = Callable[[FastAPI], Sequence[FeedConsumer]]
Hook = Callable[[FastAPI], Awaitable[None]]


@dataclass
class ServiceSpec:
    """What a service tells the factory about itself."""

    title: str
    description: str
    version: str = "0.1.0"
    routers: Sequence[APIRouter] = ()
    migrations_dir: Path | None = None
    consumers: ConsumerFactory | None = None
    # Leased periodic jobs (sweepers ...): see servicekit.jobs.PeriodicJob.
    jobs: Callable[[FastAPI], Sequence[Any]] | None = None
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    # Path prefixes that accept bodies other than JSON (department batches: CSV, JSON Lines).
    raw_body_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Path prefixes allowed bodies larger than settings.max_body_bytes (streamed batches).
    large_body_paths: tuple[str, ...] = ()
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    # Hot GET routes answered from uvicorn's protocol, before ASGI (servicekit.fastread): each
    # answers only what it is sure of and leaves everything else to the app.
    fast_reads: Sequence[FastRead] = ()


class RequestGuard:
    """Pure ASGI: request ids, content type (415) and body size (413) before any parsing."""

    def __init__(self, app: ASGIApp, *, max_body: int, spec: ServiceSpec) -> None:
        self.app = app
        self.max_body = max_body
        self.spec = spec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = accept_request_id(headers.get("x-request-id", ""))
        token = _set_request_id(rid)
        path: str = scope["path"]
        method: str = scope["method"]
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        large = bool(self.spec.large_body_paths) and path.startswith(self.spec.large_body_paths)
        try:
            problem = self._check(method, path, headers, ctype, large)
            if problem is None and ("\x00" in path or b"%00" in scope.get("query_string", b"")):
                # PostgreSQL stores no NUL character in text: refused here, not a 500 from the database
                problem = BadRequest("The address holds a NUL character (%00), which no path or parameter accepts.")
            if problem is not None:
                await _send_problem(send, problem, path, rid)
                return
            if not large:
                # JSON bodies are screened where their size is bounded (the screen keeps the body
                # until it is whole); the large-body paths take streams of other types
                receive = _screened(receive, self.max_body, ctype in JSON_TYPES and method in _BODY_METHODS)
            await self.app(scope, receive, _with_request_id(send, rid))
        except _BodyTooLarge:
            await _send_problem(send, PayloadTooLarge(f"The body is larger than {self.max_body} bytes."), path, rid)
        finally:
            _reset_request_id(token)

    def _check(self, method: str, path: str, headers: dict[str, str], ctype: str, large: bool) -> Exception | None:
        if method not in _BODY_METHODS:
            return None
        length = headers.get("content-length")
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        if not has_body:
            return None
        if length is not None and length.isdigit() and int(length) > self.max_body and not large:
            return PayloadTooLarge(f"The body is larger than {self.max_body} bytes.")
        allowed = JSON_TYPES
        for prefix, types in self.spec.raw_body_paths.items():
            if path.startswith(prefix):
                allowed = allowed + types
        if path.startswith("/oauth/") or ctype in allowed:
            return None
        return UnsupportedMediaType(f"Send the body as one of: {', '.join(allowed)}.")


_BODY_METHODS = ("POST", "PUT", "PATCH")


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, because FastAPI turns any other error while reading a body into a 400.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body is larger than {limit} bytes.")


class _NulInBody(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(422, "Text in the body holds a NUL character (\\u0000), which no field accepts.")


class _NotJson(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(400, "The body is not JSON: NaN and Infinity are not JSON numbers.")


def _refuse_constant(name: str) -> Any:
    raise _NotJson()


def holds_non_json_number(body: bytes) -> bool:
    """Whether JSON text holds NaN, Infinity or -Infinity, which Python's parser (FastAPI's) reads
    although JSON has none: a NaN number would pass any unbounded float field (a scoring model's
    standard) and PostgreSQL's json refuses it (a 500). Parsed again only when the words occur."""
    if b"NaN" not in body and b"Infinity" not in body:
        return False
    try:
        json.loads(body, parse_constant=_refuse_constant)
    except _NotJson:
        return True
    except ValueError:  # not JSON at all: FastAPI says so itself
        return False
    return False


# The JSON escape of a NUL character, \u0000, where its backslash is not itself escaped ("\\u0000"
# is a backslash and the text u0000).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def holds_nul(body: bytes) -> bool:
    """Whether JSON text holds a NUL character, which PostgreSQL stores in no text (a 500)."""
    return b"u0000" in body and _NUL_ESCAPE.search(body) is not None


def _screened(receive: Receive, limit: int, json_body: bool) -> Receive:
    """The body as it comes: no more than ``limit`` bytes (413), and for JSON, once it is whole, no
    NUL character (422: PostgreSQL stores none in text, so it would otherwise fail the request with
    a 500) and no NaN or Infinity (400: not JSON)."""
    seen = 0
    pieces: list[bytes] = []

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            seen += len(body)
            if seen > limit:
                raise _BodyTooLarge(limit)
            if json_body:
                if body:
                    pieces.append(body)
                if not message.get("more_body", False) and pieces:
                    whole = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                    pieces.clear()
                    if holds_nul(whole):
                        raise _NulInBody()
                    if holds_non_json_number(whole):
                        raise _NotJson()
        return message

    return wrapped


def _with_request_id(send: Send, rid: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
        await send(message)

    return wrapped


async def _send_problem(send: Send, err: Any, path: str, rid: str) -> None:
    body = dumps_problem(err, instance=path)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _set_request_id(rid: str) -> Any:
    return request_id_var.set(rid)


def _reset_request_id(token: Any) -> None:
    request_id_var.reset(token)


def make_verifier(settings: ServiceSettings) -> JWTVerifier:
    return JWTVerifier(settings.issuer, settings.oidc_audience, cooldown_seconds=settings.jwks_cooldown_seconds)


def create_service_app(
    settings: ServiceSettings,
    spec: ServiceSpec,
    *,
    db: Database | None = None,
    verifier: JWTVerifier | None = None,
    start_consumers: bool = True,
) -> FastAPI:
    """Build a service. ``db`` and ``verifier`` may be given by tests; otherwise from settings."""
    _configure_logging(settings)
    database = db or Database.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for note in settings.describe_defaults():
            log.info(note)
        await app.state.feed_notifier.start()
        for hook in spec.on_startup:
            await hook(app)
        freeze_startup()
        tasks: list[asyncio.Task[None]] = []
        consumers = list(spec.consumers(app)) if (spec.consumers and start_consumers) else []
        app.state.consumers = consumers
        # Background work that stops between steps: feed consumers, the service's own jobs,
        # and the pruning of its feed past the retention (every service has one).
        workers: list[Any] = list(consumers)
        if start_consumers:
            workers += list(spec.jobs(app)) if spec.jobs else []
            workers.append(feed_pruning_job(database, settings.feed_retention_days))
        app.state.workers = workers
        for worker in workers:
            tasks.append(asyncio.create_task(worker.run(), name=f"worker:{worker.name}"))
        log.info("%s ready on %s:%s", settings.service_name, settings.host, settings.port)
        try:
            yield
        finally:
            app.state.shutting_down = True
            for worker in workers:
                worker.stop()  # each finishes the batch or run it is in
            if tasks:
                _done, pending = await asyncio.wait(tasks, timeout=20.0)
                for task in pending:
                    task.cancel()
            for hook in spec.on_shutdown:
                with contextlib.suppress(Exception):
                    await hook(app)
            await app.state.feed_notifier.stop()
            if app.state.telemetry is not None:
                app.state.telemetry.shutdown()
            if db is None:
                await database.dispose()
            log.info("%s stopped", settings.service_name)

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags or None,
    )
    native_telemetry_off(app)
    app.state.settings = settings
    app.state.db = database
    app.state.verifier = verifier or make_verifier(settings)
    app.state.shutting_down = False
    app.state.consumers = []
    app.state.feed_notifier = FeedNotifier(f"zhongfu:feed:{settings.effective_db_schema}", settings.redis_url)
    app.state.migrations_dir = spec.migrations_dir
    install_error_handlers(app)
    _add_probes(app, settings, spec)
    app.include_router(feed_router())
    for router in spec.routers:
        app.include_router(router)
    # The only access log (uvicorn's prints query strings): inside the guard, so it has the
    # request id, and inside telemetry, so it has the trace id.
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestGuard, max_body=settings.max_body_bytes, spec=spec)
    app.state.telemetry = _setup_telemetry(app, settings, database)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if spec.fast_reads:
        app.http_protocol = protocol_for(app, spec.fast_reads)  # type: ignore[attr-defined]  # servicekit.runner
    return app


def _configure_logging(settings: ServiceSettings) -> None:
    configure_logging(settings.service_name, settings.log_level)


def _setup_telemetry(app: FastAPI, settings: ServiceSettings, db: Database) -> Any:
    return setup_telemetry(app, settings, engine=db.engine)


def _add_probes(app: FastAPI, settings: ServiceSettings, spec: ServiceSpec) -> None:
    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await readiness(app, settings, spec)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)


async def readiness(app: FastAPI, settings: ServiceSettings, spec: ServiceSpec) -> dict[str, str]:
    checks: dict[str, str] = {}
    if app.state.shutting_down:
        checks["shutdown"] = "shutting down"
    db: Database = app.state.db
    try:
        async with asyncio.timeout(2.0):
            async with db.reading() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            if spec.migrations_dir is not None:
                from servicekit.migrations import migration_state

                state = await migration_state(db, spec.migrations_dir)
                # a newer release's schema is fine for this one (expand-then-contract migrations)
                checks["migrations"] = "ok" if state in ("ok", "ahead") else "behind: run migrate"
    except Exception as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
    if settings.redis_url:
        try:
            import redis.asyncio as aioredis

            client = aioredis.from_url(settings.redis_url, socket_timeout=1.0)
            try:
                await client.ping()
                checks["redis"] = "ok"
            finally:
                await client.aclose()
        except Exception as exc:
            checks["redis"] = f"unavailable ({type(exc).__name__})"
    return checks


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _declare_kit_answers(op: dict[str, Any]) -> None:
    """What the kit answers on an operation before or around its route, declared unless the
    route did: on any, 400 (a NUL character in the address; for a paged list, a cursor this API
    did not hand out); for a body, also 400 (not JSON), 413 (too large) and 415 (another type)."""
    responses = op.setdefault("responses", {})
    responses.setdefault("400", _problem_response(
        "The request is malformed: a NUL character in the address, a body that is not JSON, "
        "or a cursor this API did not hand out"))
    if "requestBody" in op:
        responses.setdefault("413", _problem_response(PayloadTooLarge.title))
        responses.setdefault("415", _problem_response(UnsupportedMediaType.title))


IF_MATCH = {
    "name": "If-Match", "in": "header", "schema": {"type": "string", "examples": ['"v3"']},
    "description": "The ETag of the resource as you last read it. A change over a newer version is refused "
                   "(412), so no one's change is lost.",
}


def _header(op: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The operation's declared header parameter of that name (any case), if any."""
    name = name.lower()
    return next((p for p in op.get("parameters", []) if p.get("in") == "header" and p.get("name", "").lower() == name),
                None)


def _required_keys(op: dict[str, Any]) -> None:
    """``Idempotency-Key`` declared required where the route says its dependency refuses a
    request without one (``openapi_extra=servicekit.idempotency.KEY_REQUIRED``)."""
    if op.pop(KEY_REQUIRED_MARK, False) and (key := _header(op, KEY_HEADER)) is not None:
        key["required"] = True


def _headers_are_text(op: dict[str, Any]) -> None:
    """An optional header is absent or text, never null (FastAPI writes ``str | None`` as a choice)."""
    for parameter in op.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter.get("in") == "header" and "anyOf" in schema:
            choices = [c for c in schema["anyOf"] if c.get("type") != "null"]
            if len(choices) == 1:
                parameter["schema"] = {k: v for k, v in schema.items() if k not in ("anyOf", "description")} | choices[0]


def _declare_if_match(op: dict[str, Any]) -> None:
    """The ``If-Match`` header on the operations that read it (``servicekit.concurrency``): those
    that answer 412 (a stale tag), where it is required when they answer 428 without it."""
    responses = op.get("responses", {})
    if "412" not in responses:
        return
    if _header(op, "If-Match") is None:
        op.setdefault("parameters", []).append(IF_MATCH | {"required": "428" in responses})


ETAG = {"description": "The resource's version, to send back as If-Match with a change to it.",
        "schema": {"type": "string", "examples": ['"v3"']}}


def _declare_etags(paths: dict[str, Any]) -> None:
    """The ``ETag`` header on the read of every resource that a change with ``If-Match`` names:
    the operation's own path, or for an action (``.../{id}/close``) the path above it."""
    for path, ops in paths.items():
        for op in ops.values():
            if not isinstance(op, dict) or _header(op, "If-Match") is None:
                continue
            resource = path if "get" in ops else path.rsplit("/", 1)[0]
            read = paths.get(resource, {}).get("get")
            if read is not None and "200" in read.get("responses", {}):
                read["responses"]["200"].setdefault("headers", {}).setdefault("ETag", ETAG)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in list(components["schemas"]["Problem"].pop("$defs", {}).items()):
        components["schemas"].setdefault(name, sub)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    for path, ops in schema.get("paths", {}).items():
        for op in ops.values():
            if isinstance(op, dict):
                op.setdefault("security", [{"bearer": []}])
                # FastAPI documents its own 422 shape; ours is a problem document.
                if "422" in op.get("responses", {}):
                    op["responses"]["422"] = _problem_response("The request is not valid")
                _declare_kit_answers(op)
                _declare_if_match(op)
                _required_keys(op)
                _headers_are_text(op)
    _declare_etags(schema.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(name, None)
    app.openapi_schema = schema
    return schema
