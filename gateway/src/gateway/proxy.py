"""The proxy: raw ASGI, bodies streamed both ways, upstream failures turned into problems.

No framework sits on this path: one request costs a header scan, a token-cache lookup, a
rate-limit check and one exchange on a pooled keep-alive connection (gateway.upstream). Large
uploads (department batches) and large answers are streamed chunk by chunk, never held whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from servicekit.errors import (
    BadGateway,
    BadRequest,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    TooManyRequests,
    Unauthorized,
)
from servicekit.logging import request_id_var
from servicekit.telemetry import current_traceparent

from gateway.asgi import Message, Scope, accept_request_id, send_problem, valid_traceparent
from gateway.auth import EdgeAuth, token_from_header
from gateway.ratelimit import RateLimiter
from gateway.routes import Route, RouteTable
from gateway.upstream import (
    ConnectFailed,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)

log = logging.getLogger("gateway.proxy")
access_log = logging.getLogger("gateway.access")

Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Request headers the gateway reads or sets itself rather than copying.
_OWN = frozenset(
    {
        b"authorization",
        b"content-length",
        b"host",
        b"expect",
        b"x-request-id",
        b"traceparent",
        b"tracestate",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
# Response headers not passed back: hop-by-hop, ours, and the ones uvicorn writes itself.
_RESPONSE_DROP = HOP_BY_HOP | {b"x-request-id", b"date", b"server"}
# Answers up to this size are read whole and sent in one message; larger ones are streamed.
SMALL_BODY = 64 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class _RequestBody:
    """The request body as an async iterator, counted against the route's limit."""

    __slots__ = ("receive", "first", "limit", "seen", "too_large", "client_gone", "complete")

    def __init__(self, receive: Receive, first: bytes, limit: int) -> None:
        self.receive = receive
        self.first = first
        self.limit = limit
        self.seen = len(first)
        # The upstream client wraps what the iterator raises; these flags say what really happened.
        self.too_large = False
        self.client_gone = False
        self.complete = False

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.first:
            yield self.first
        self.first = b""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                raise _ClientGone()
            chunk = message.get("body", b"")
            self.seen += len(chunk)
            if self.seen > self.limit:
                self.too_large = True
                raise _BodyTooLarge()
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.complete = True
                return


def has_dot_segment(path: str) -> bool:
    # A legitimate call never has them; refusing them rules out path confusion upstream.
    return "/./" in path or "/../" in path or path.endswith(("/.", "/.."))


class RequestHeaders:
    """One pass over a request's headers: the few the gateway acts on, and the rest to copy."""

    __slots__ = (
        "copied", "authorization", "content_length", "connection", "traceparent", "tracestate",
        "xff", "host", "request_id", "transfer_encoding", "origin",
    )

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        copied: list[tuple[bytes, bytes]] = []
        self.authorization = self.content_length = self.connection = None
        self.traceparent = self.tracestate = self.xff = self.host = self.request_id = None
        self.origin: bytes | None = None
        self.transfer_encoding = False
        for name, value in headers:
            if name in _OWN:
                if name == b"x-request-id":
                    self.request_id = value
                elif name == b"authorization":
                    self.authorization = value
                    copied.append((name, value))
                elif name == b"content-length":
                    self.content_length = value
                elif name == b"traceparent":
                    self.traceparent = value
                elif name == b"tracestate":
                    self.tracestate = value
                elif name == b"x-forwarded-for":
                    self.xff = value
                elif name == b"host":
                    self.host = value
            elif name in HOP_BY_HOP:
                if name == b"connection":
                    self.connection = value
                elif name == b"transfer-encoding":
                    self.transfer_encoding = True
            elif not name.startswith(b"proxy-"):
                if name == b"origin":
                    self.origin = value
                copied.append((name, value))
        if self.connection is not None:
            named = {t.strip().lower() for t in self.connection.split(b",")}
            copied = [h for h in copied if h[0] not in named]
        self.copied = copied

    def forwarded(
        self, request_id: bytes, client_ip: str, scheme: str, own_traceparent: str | None
    ) -> list[tuple[bytes, bytes]]:
        """The headers to send to the service: the copied ones and the gateway's own."""
        forwarded = self.copied
        ip = client_ip.encode()
        xff = self.xff
        forwarded.append((b"x-request-id", request_id))
        forwarded.append((b"x-forwarded-for", xff + b", " + ip if xff else ip))
        forwarded.append((b"x-forwarded-proto", scheme.encode()))
        if self.host is not None:
            forwarded.append((b"x-forwarded-host", self.host))
        # An invalid traceparent is dropped with its tracestate (W3C Trace Context, 3.3 and 3.4).
        # Traced, the service's parent is the gateway's span (itself the caller's child).
        traceparent = self.traceparent
        valid = traceparent is not None and valid_traceparent(traceparent)
        if own_traceparent is not None:
            forwarded.append((b"traceparent", own_traceparent.encode()))
        elif valid:
            forwarded.append((b"traceparent", traceparent))  # type: ignore[arg-type]
        if (valid or own_traceparent is not None) and self.tracestate is not None:
            forwarded.append((b"tracestate", self.tracestate))
        return forwarded


def answer_headers(
    upstream: list[tuple[bytes, bytes]], request_id: bytes
) -> list[tuple[bytes, bytes]]:
    """A service's response headers as the client gets them: hop-by-hop ones dropped."""
    headers: list[tuple[bytes, bytes]] = []
    connection: bytes | None = None
    for name, value in upstream:
        lower = name.lower()
        if lower in _RESPONSE_DROP or lower.startswith(b"proxy-"):
            if lower == b"connection":
                connection = value
            continue
        headers.append((lower, value))
    if connection is not None:
        named = {t.strip().lower() for t in connection.split(b",")}
        headers = [h for h in headers if h[0] not in named]
    headers.append((b"x-request-id", request_id))
    return headers


class Proxy:
    """Forwards /api/v1 requests to the service the route table names."""

    def __init__(
        self,
        *,
        routes: RouteTable,
        auth: EdgeAuth,
        limiter: RateLimiter | None,
        pools: dict[str, UpstreamPool],
        log_requests: bool = True,
        traced: bool = False,
    ) -> None:
        self.routes = routes
        self.traced = traced
        self.auth = auth
        self.limiter = limiter
        self.pools = pools
        self.log_requests = log_requests

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status, proxied = await self._handle(scope, receive, send)
        # What the gateway decided itself (401, 404, 413, 429, 502, 504) is logged at INFO; an
        # answer the service gave is in the service's own access log under the same request id,
        # so here it is DEBUG: the line cost a third of the gateway's CPU per proxied request.
        level = logging.DEBUG if proxied and status < 500 else logging.INFO
        if self.log_requests and access_log.isEnabledFor(level):
            # The path without its query string: queries may carry filters, paths only opaque ids.
            access_log.log(
                level,
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, bool]:
        """Answer the request; return the status and whether the service gave it."""
        head = scope["method"] == "HEAD"
        path: str = scope["path"]
        incoming = RequestHeaders(scope["headers"])
        request_id = accept_request_id(incoming.request_id)
        request_id_var.set(request_id.decode())

        route = self.routes.match(path)
        if route is None or has_dot_segment(path):
            await send_problem(send, NotFound("No such resource."), request_id, head=head)
            return 404, False
        scope["route"] = route  # its path_format names the telemetry span, without identifiers

        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        try:
            await self._admit(incoming.authorization, client_ip)
            if incoming.transfer_encoding and incoming.content_length is not None:
                # RFC 9112 section 6.1: ambiguous framing, the classic smuggling vector.
                raise BadRequest("Content-Length and Transfer-Encoding cannot be used together.")
            length = self._check_length(incoming.content_length, route)
        except ProblemError as err:
            await send_problem(send, err, request_id, head=head)
            return err.status, False

        forwarded = incoming.forwarded(
            request_id, client_ip, scope.get("scheme", "http"),
            current_traceparent() if self.traced else None,
        )

        # The body: whole when it came in one piece (most calls), streamed otherwise.
        message = await receive()
        if message["type"] == "http.disconnect":
            return 499, False
        first = message.get("body", b"")
        body: _RequestBody | None = None
        data: Any
        if message.get("more_body", False):
            body = _RequestBody(receive, first, route.max_body_bytes)
            data = body.chunks()
        else:
            if len(first) > route.max_body_bytes:
                await send_problem(send, PayloadTooLarge(_too_large(route)), request_id, head=head)
                return 413, False
            data = first or None

        qs: bytes = scope.get("query_string", b"")
        target: bytes = scope.get("raw_path") or path.encode()
        if qs:
            target += b"?" + qs
        method: str = scope["method"]

        response = None
        try:
            try:
                response = await self.pools[route.service].request(
                    method,
                    target,
                    forwarded,
                    data,
                    content_length=length,
                    retry_stale=body is None and method in IDEMPOTENT,
                )
                # A small answer is read whole before anything is sent, so a failure can still
                # be answered with a problem; past that point the status line is out.
                payload = await response.read() if _is_small(response) else None
            except (UpstreamError, OSError) as exc:
                if body is not None and body.client_gone:
                    return 499, False
                if body is not None and body.too_large:
                    err: ProblemError = PayloadTooLarge(_too_large(route))
                else:
                    err = upstream_problem(exc, route)
                await send_problem(send, err, request_id, head=head)
                return err.status, False
            await self._answer(response, payload, send, receive, request_id, body)
            return response.status, True
        finally:
            if response is not None:
                response.release()  # back to the pool if the exchange ended cleanly, else closed

    def known_subject(self, authorization: bytes | None) -> tuple[str, float] | None:
        """The subject of a bearer token checked lately and until when, without waiting; None
        when there is no such token (missing, malformed or to verify: ``_admit``'s to decide)."""
        try:
            return self.auth.cached(token_from_header(authorization))
        except Unauthorized:
            return None

    def limit_now(self, subject: str, client_ip: str) -> bool | ProblemError:
        """The subject's rate limit without waiting: True, a 429 problem, or False when the
        buckets live elsewhere (Redis) and ``_admit`` must ask."""
        if self.limiter is None:
            return True
        hit_now = getattr(self.limiter, "hit_now", None)
        if hit_now is None:
            return False
        decision = hit_now("sub:" + subject if subject else "ip:" + client_ip)
        return True if decision.allowed else too_many(decision.retry_after)

    async def _admit(self, authorization: bytes | None, client_ip: str) -> None:
        """Token check and rate limits; raises the problem to answer with."""
        subject = None
        token = None
        missing: Unauthorized | None = None
        try:
            token = token_from_header(authorization)
            subject = self.auth.cached_subject(token)
        except Unauthorized as err:
            missing = err
        if subject is None:
            # A token not seen lately costs a signature check: those are limited per address.
            if self.limiter is not None:
                decision = await self.limiter.hit("ip:" + client_ip)
                if not decision.allowed:
                    raise too_many(decision.retry_after)
            if missing is not None:
                raise missing
            assert token is not None
            subject = await self.auth.verify(token)
        if self.limiter is not None:
            decision = await self.limiter.hit("sub:" + subject if subject else "ip:" + client_ip)
            if not decision.allowed:
                raise too_many(decision.retry_after)

    @staticmethod
    def _check_length(content_length: bytes | None, route: Route) -> int | None:
        if content_length is None:
            return None
        try:
            length = int(content_length)
        except ValueError:
            raise BadRequest("The Content-Length header is not a number.") from None
        if length < 0:
            raise BadRequest("The Content-Length header is not a number.")
        if length > route.max_body_bytes:
            raise PayloadTooLarge(_too_large(route))
        return length

    async def _answer(
        self,
        response: UpstreamResponse,
        payload: bytes | None,
        send: Send,
        receive: Receive,
        request_id: bytes,
        body: _RequestBody | None,
    ) -> None:
        headers = answer_headers(response.headers, request_id)

        if payload is not None:
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": payload})
            return

        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        # Stop reading from the service if the client goes away mid-answer; receive() may only
        # be watched once the request body has been consumed.
        gone = asyncio.ensure_future(receive()) if body is None or body.complete else None
        try:
            async for chunk in response.iter_chunks():
                if gone is not None and gone.done():
                    response.close()
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            # Too late for a problem: the status line is out. Abort so the client sees a cut answer.
            log.warning("upstream answer broke off", extra={"error": type(exc).__name__})
            raise
        finally:
            if gone is not None and not gone.done():
                gone.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _is_small(response: UpstreamResponse) -> bool:
    length = response.content_length
    return length is not None and length <= SMALL_BODY


def too_many(retry_after: float) -> TooManyRequests:
    seconds = max(1, int(retry_after + 0.999))
    return TooManyRequests(
        "Too many requests from this client; slow down.", headers={"Retry-After": str(seconds)}
    )


def _too_large(route: Route) -> str:
    return (
        f"The request body is larger than the {route.max_body_bytes} bytes this resource accepts."
    )


def upstream_problem(exc: BaseException, route: Route) -> ProblemError:
    service = route.service
    if isinstance(exc, UpstreamTimeout):
        return GatewayTimeout(f"The {service} service did not answer in time.", service=service)
    if isinstance(exc, ConnectFailed):
        return BadGateway(f"The {service} service is not reachable.", service=service)
    log.warning("upstream call failed", extra={"service": service, "error": type(exc).__name__})
    return BadGateway(f"The {service} service broke off the exchange.", service=service)
