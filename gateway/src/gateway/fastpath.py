"""The gateway's hot path without ASGI: plain proxied reads handled in protocol callbacks.

uvicorn runs every request as an ASGI task: a scope, a task, messages for the head and the body,
futures between the proxy and its upstream connection. For the commonest call -- a GET under
/api/v1 with a token the gateway checked a moment ago, for a service with an idle keep-alive
connection -- that machinery cost more CPU than the hop itself (bench/gateway_hop.py; numbers in
docs/gateway.md). ``GatewayProtocol`` takes exactly that case inside the parser's callbacks: the
request goes out on the idle connection from ``on_message_complete``, and the answer goes back to
the client from the upstream connection's callbacks, with no task and no future.

Everything else goes the ASGI way, unchanged: other methods, any body, ``Expect``, an ``Origin``
(CORS), a token to verify, rate limits kept in Redis, debug access logs, a percent-encoded path,
no idle connection to the service. The choice is made when the request is complete and before
anything goes upstream, so declining costs nothing but the checks.

With telemetry on, the sampling decision is taken here, by the tracer provider's rule
(``servicekit.telemetry.Sampling``): a sampled request gets the span the ASGI way would make
(``TelemetryHandle.span_starter``; on the trace id decided here when it came without a parent),
forwarded as its ``traceparent`` and ended here with the answer's status; an unsampled one --
nine in ten in production -- is forwarded with the ``traceparent`` its span would have had (its
trace id, a new span id, the sampled flag clear), so the service follows the decision. Both are
measured in ``http.server.request.duration`` and ``http.server.active_requests`` as the ASGI way
measures them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httptools
from opentelemetry import context as otel_context
from opentelemetry import trace
from servicekit.errors import ProblemError
from servicekit.fastread import NO_EVENT
from servicekit.logging import request_id_var
from servicekit.telemetry import (
    STARTED_SPAN,
    TelemetryHandle,
    end_server_span,
    format_traceparent,
    request_key,
    traceparent_header,
)
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.asgi import accept_request_id, problem_parts
from gateway.proxy import (
    SMALL_BODY,
    Proxy,
    RequestHeaders,
    answer_headers,
    has_dot_segment,
    upstream_problem,
)
from gateway.routes import Route
from gateway.upstream import Disconnected, UpstreamError, UpstreamPool, UpstreamTimeout, _Connection

access_log = logging.getLogger("gateway.access")

# Stop reading from the service while this much of its answer waits for a slow client.
_HIGH_WATER = 256 * 1024


class FastPath:
    """What the protocol needs from the gateway; the gateway sets one up at startup."""

    def __init__(self, proxy: Proxy, prefix: str, telemetry: TelemetryHandle | None = None) -> None:
        self.proxy = proxy
        self.prefix = prefix.encode() + b"/"
        self.served = 0  # requests answered here; tests and debugging read it
        # With telemetry on: who is sampled, how a sampled request's span is started, and the
        # request durations (when metrics are on).
        self.sampling = telemetry.sampling if telemetry is not None else None
        self.spans = (telemetry.span_starter()
                      if telemetry is not None and telemetry.tracer_provider is not None else None)
        self.durations = telemetry.durations if telemetry is not None else None


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with plain proxied reads taken in its callbacks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred = False
        self._exchange: _Exchange | None = None
        # A keep-alive client sends the same token each time: its check is remembered for
        # the connection, as long as the gateway-wide cache would have (never past `exp`).
        self._known: tuple[bytes, str, float] | None = None

    # -- parser callbacks ------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        fast: FastPath | None = getattr(self.app, "fast_path", None)
        if (
            fast is not None
            and self.url.startswith(fast.prefix)
            and (self.cycle is None or self.cycle.response_complete)
            and not self.expect_100_continue
            and self.parser.get_method() == b"GET"
            and not self.parser.should_upgrade()
        ):
            # Decided once the request is complete: a GET may still bring a body.
            self._deferred = True
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._deferred:
            self._deferred = False
            super().on_headers_complete()
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._deferred:
            self._deferred = False
            if self._start_exchange():
                return
            super().on_headers_complete()
        super().on_message_complete()

    # -- transport callbacks -----------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        if self._exchange is not None:
            self._exchange.client_gone()
        super().connection_lost(exc)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._exchange is not None:
            self._exchange.client_drained()

    # -- the fast exchange -------------------------------------------------------------------------

    def _start_exchange(self) -> bool:
        """Send the request upstream from here and return True, or False to go the ASGI way."""
        fast: FastPath = self.app.fast_path
        proxy = fast.proxy
        if proxy.log_requests and access_log.isEnabledFor(logging.DEBUG):
            return False  # every proxied answer is to be logged: the ASGI path does that
        try:
            parsed = httptools.parse_url(self.url)
            raw_path: bytes = parsed.path
            path = raw_path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return False
        if "%" in path or has_dot_segment(path):
            return False
        route = proxy.routes.match(path)
        if route is None:
            return False
        incoming = RequestHeaders(self.headers)
        if (
            incoming.content_length is not None
            or incoming.transfer_encoding
            or incoming.origin is not None
        ):
            return False
        pool = proxy.pools[route.service]
        keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() == "1.1"
        exchange = _Exchange(self, fast, route, pool, keep_alive, path)
        conn = pool.take_idle(exchange)
        if conn is None:
            return False
        client_ip = self.client[0] if self.client else "unknown"
        authorization = incoming.authorization
        known = self._known
        if known is None or known[0] != authorization or known[2] <= time.time():
            found = proxy.known_subject(authorization)
            if found is None:
                pool.release(conn, reusable=True)
                return False
            known = self._known = (authorization, *found)  # type: ignore[assignment]
        sampling = fast.sampling
        if sampling is not None:
            # Before the rate limit, which the ASGI way would count a second time.
            trace_id, flags, root = sampling.decide(traceparent_header(self.headers))
            if flags & 1:
                if fast.spans is None:
                    pool.release(conn, reusable=True)
                    return False
                # Sampled: the span the ASGI way would make, started here, ended with the answer.
                exchange.span = fast.spans.start_get(
                    path, self.scheme or "http", self.parser.get_http_version(), self.headers, trace_id, root)
                exchange.recording = exchange.span.is_recording()
            else:
                exchange.span = sampling.unsampled_span(trace_id, flags)
        admitted = proxy.limit_now(known[1], client_ip)
        if admitted is False:
            pool.release(conn, reusable=True)
            if exchange.recording:  # the ASGI way's telemetry takes the span over and ends it
                self.scope[STARTED_SPAN] = exchange.span  # type: ignore[literal-required]
            return False
        exchange.request_id = accept_request_id(incoming.request_id)
        if fast.durations is not None:
            fast.durations.active += 1
            exchange.measured = True
        self.cycle = exchange  # type: ignore[assignment]  # what uvicorn consults between requests
        self._exchange = exchange
        if admitted is not True:
            pool.release(conn, reusable=True)
            exchange.answer_problem(admitted)
            return True
        target = raw_path + b"?" + parsed.query if parsed.query else raw_path
        span = exchange.span
        forwarded = incoming.forwarded(
            exchange.request_id,
            client_ip,
            self.scheme or "http",
            format_traceparent(span.get_span_context()) if span is not None else None,
        )
        head = pool.request_head(b"GET", target, forwarded)
        head.append(b"\r\n")
        exchange.send(conn, b"".join(head))
        fast.served += 1
        return True


class _Exchange:
    """One fast request; stands in for uvicorn's request cycle until its answer is out."""

    __slots__ = (
        "protocol", "transport", "fast", "route", "pool", "keep_alive", "path", "request_id",
        "response_complete", "disconnected", "message_event", "conn", "request", "timer",
        "head_sent", "buffer", "small", "chunked", "retried", "paused", "status", "decided",
        "started", "span", "recording", "measured",
    )

    def __init__(
        self,
        protocol: GatewayProtocol,
        fast: FastPath,
        route: Route,
        pool: UpstreamPool,
        keep_alive: bool,
        path: str,
    ) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.fast = fast
        self.route = route
        self.pool = pool
        self.keep_alive = keep_alive  # uvicorn's shutdown() sets it to False on a busy connection
        self.path = path
        self.request_id = b""
        # Read by uvicorn as the connection's current cycle.
        self.response_complete = False
        self.disconnected = False
        self.message_event = NO_EVENT
        self.conn: _Connection | None = None
        self.request = b""
        self.timer: asyncio.TimerHandle | None = None
        self.head_sent = False
        self.buffer: list[bytes] = []
        self.small = False
        self.chunked = False
        self.retried = False
        self.paused = False
        self.status = 0
        self.decided = False  # the gateway answered itself (a problem), not the service
        self.started = time.perf_counter()
        self.span: trace.Span | None = None  # with telemetry on: the request's span
        self.recording = False  # the span is a sampled one, to be ended here
        self.measured = False  # counted in http.server.active_requests, to be recorded

    # -- the request -------------------------------------------------------------------------------

    def send(self, conn: _Connection, request: bytes) -> None:
        self.conn = conn
        self.request = request
        assert conn.transport is not None
        conn.transport.write(request)
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.protocol.loop.call_later(self.pool.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- the answer, from the upstream connection's callbacks --------------------------------------

    def upstream_head(self, conn: _Connection) -> None:
        status = self.status = conn.status
        headers = answer_headers(conn.headers, self.request_id)
        length: int | None = None
        for name, value in headers:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
        parts = [STATUS_LINE.get(status) or b"HTTP/1.1 %d \r\n" % status]
        for name, value in self.protocol.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if length is None and status >= 200 and status not in (204, 304):
            parts.append(b"transfer-encoding: chunked\r\n")
            self.chunked = True
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        self.buffer = parts
        # A small answer goes out in one write once complete, so a failure can still be a
        # problem; a large one is streamed from here on.
        self.small = length is not None and length <= SMALL_BODY
        if not self.small and not self.disconnected:
            self.transport.write(b"".join(parts))
            self.buffer = []
            self.head_sent = True

    def upstream_body(self, conn: _Connection, chunk: bytes) -> None:
        if self.disconnected:
            return
        piece = b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.chunked else chunk
        if self.small:
            self.buffer.append(piece)
            return
        self.transport.write(piece)
        self._arm()  # the service is still answering
        if not self.paused and self.transport.get_write_buffer_size() > _HIGH_WATER:
            self.paused = True
            if conn.transport is not None:
                conn.transport.pause_reading()

    def upstream_complete(self, conn: _Connection) -> None:
        self._disarm()
        if not self.disconnected:
            if self.chunked:
                self.buffer.append(b"0\r\n\r\n")
            if self.buffer:
                self.transport.write(b"".join(self.buffer))
            self.buffer = []
            self.head_sent = True
        self._give_back(reusable=conn.keep_alive)
        self._finish()

    def upstream_failed(self, conn: _Connection, exc: BaseException) -> None:
        self._give_back(reusable=False)
        if self.disconnected or self.response_complete:
            return
        if self.head_sent:
            # Too late for a problem: the status line is out. Cut the answer off.
            self.transport.close()
            self._finish()
            return
        if isinstance(exc, Disconnected) and conn.reused and conn.status == 0 and not self.retried:
            # A pooled connection the service closed just as it was reused: nothing was
            # processed, so the GET goes again on a fresh one.
            self.retried = True
            asyncio.ensure_future(self._retry())
            return
        self.answer_problem(upstream_problem(exc, self.route))

    async def _retry(self) -> None:
        try:
            conn = await self.pool.acquire(self)
        except (UpstreamError, OSError) as exc:
            if not self.disconnected:
                self.answer_problem(upstream_problem(exc, self.route))
            return
        if self.disconnected:
            self.pool.release(conn, reusable=True)
            return
        self.send(conn, self.request)

    def _expired(self) -> None:
        self.timer = None
        self._give_back(reusable=False)
        if self.head_sent:
            self.transport.close()
            self._finish()
            return
        self.answer_problem(
            upstream_problem(UpstreamTimeout("the service did not answer in time"), self.route)
        )

    def _give_back(self, *, reusable: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if self.paused and conn.transport is not None and reusable:
            conn.transport.resume_reading()
        self.pool.release(conn, reusable=reusable)

    # -- the client side ---------------------------------------------------------------------------

    def client_drained(self) -> None:
        if self.paused:
            self.paused = False
            conn = self.conn
            if conn is not None and conn.transport is not None:
                conn.transport.resume_reading()

    def client_gone(self) -> None:
        self.disconnected = True
        self._disarm()
        self._give_back(reusable=False)
        self.response_complete = True
        self.protocol._exchange = None
        self._measure()

    def answer_problem(self, err: ProblemError) -> None:
        self._disarm()
        self.status = err.status
        self.decided = True
        token = self._attach_span()  # the problem quotes the trace id, as the ASGI way's does
        try:
            headers, body = problem_parts(err, self.request_id)
        finally:
            if token is not None:
                otel_context.detach(token)
        parts = [STATUS_LINE[err.status]]
        for name, value in self.protocol.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))
        self.head_sent = True
        self._finish()

    def _finish(self) -> None:
        if self.response_complete:
            return
        self.response_complete = True
        self._disarm()
        protocol = self.protocol
        protocol._exchange = None
        self._measure()
        self._log()
        if not self.keep_alive:
            self.transport.close()
        protocol.on_response_complete()

    def _log(self) -> None:
        # As Proxy.handle: what the gateway decided, and server errors, at INFO.
        proxy = self.fast.proxy
        if not proxy.log_requests or not (self.decided or self.status >= 500):
            return
        if access_log.isEnabledFor(logging.INFO):
            request_id_var.set(self.request_id.decode())
            token = self._attach_span()  # the line carries the trace id, as the ASGI way's does
            try:
                access_log.info(
                    "%s %s %s",
                    "GET",
                    self.path,
                    self.status,
                    extra={
                        "status": self.status,
                        "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
                    },
                )
            finally:
                if token is not None:
                    otel_context.detach(token)

    def _attach_span(self) -> object | None:
        if self.span is None:
            return None
        return otel_context.attach(trace.set_span_in_context(self.span))

    def _measure(self) -> None:
        # As ServerTelemetryMiddleware records the ASGI way's requests, under the same key.
        if not (self.recording or self.measured):
            return
        key = request_key("GET", self.protocol.scheme or "http", self.status, self.route.path_format)
        sampled = self.span.get_span_context() if self.recording and self.span is not None else None
        if self.recording:
            self.recording = False
            assert self.span is not None
            end_server_span(self.span, key)
        if not self.measured:
            return
        self.measured = False
        durations = self.fast.durations
        assert durations is not None
        durations.active -= 1
        durations.record(time.perf_counter() - self.started, key, sampled)
