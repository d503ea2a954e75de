"""Hot GET routes answered from uvicorn's protocol, before ASGI.

uvicorn serves every request as an ASGI cycle: a scope, a task running the app through its
middleware (Starlette's error middleware, FastAPI's, the kit's request guard and access log),
messages for the answer's head and body, two writes to the socket. For the product's commonest
call -- an official reading a household -- that machinery had come to cost about as much CPU as
the read itself. A ``FastRead`` names such a route; ``ServiceProtocol`` (uvicorn's httptools
protocol, which ``create_service_app`` gives a service that has fast reads) takes a GET under
its prefix with no body when the request is complete, runs the route's handler in a task of its
own and writes the answer in one write.

What the ASGI way gives, the fast way gives too: the request id (the caller's when it is plain,
else a new one; echoed), the access line, the server span's trace id in every log line and audit
record, the request-duration metric, a problem document for an error (a 503 for a lost database
or a transaction aborted for another's, a 500 for anything else, logged with its traceback), a
graceful shutdown that waits for the answer.

The handler answers only what it is sure of. It returns None -- before doing anything that
must not happen twice -- for anything else (a caller to refuse, an id out of scope, a request
it does not know), and the request then goes the ASGI way, where the route answers it as it
always has. A request that telemetry samples has its server span started by the middleware's
own rule (``TelemetryHandle.span_starter``) and ended here with the
request's attributes; an unsampled one (nine in ten in production, and every one whose caller, the
gateway, forwarded a not-sampled ``traceparent``) gets the non-recording span the SDK would have
made. If the handler declines a sampled request, its span goes with it to the ASGI way, whose
telemetry middleware ends it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import httptools
import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from servicekit.errors import PROBLEM_JSON, ProblemError, database_problem, dumps_problem, internal_problem
from servicekit.logging import accept_request_id, log_access, request_id_var
from servicekit.request_metrics import request_key
from servicekit.telemetry import STARTED_SPAN, TelemetryHandle, end_server_span, traceparent_header

__all__ = ["NO_EVENT", "FastAnswer", "FastRead", "FastRequest", "ServiceProtocol", "protocol_for"]

access_log = logging.getLogger("servicekit.access")


class FastRequest(NamedTuple):
    """What a fast handler sees of a request: the app (its state), the path, the raw headers."""

    app: Any
    path: str
    headers: list[tuple[bytes, bytes]]

    def header(self, name: bytes) -> bytes | None:
        """The first header of that (lower-case) name."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class FastAnswer(NamedTuple):
    """A 200 answer: the body, and headers besides content-length and x-request-id."""

    body: bytes
    headers: list[tuple[bytes, bytes]]


FastHandler = Callable[[FastRequest], Awaitable[FastAnswer | None]]


@dataclass(frozen=True)
class FastRead:
    """A GET route answered from the protocol: paths under ``prefix`` go to ``handler``;
    ``route`` is the route the ASGI way matches for them (its template names the access line
    and the request-duration metric)."""

    prefix: str
    route: Any
    handler: FastHandler


def protocol_for(app: Any, reads: Sequence[FastRead]) -> type[ServiceProtocol]:
    """The protocol class uvicorn is to serve ``app`` with (``servicekit.runner`` reads it from
    ``app.http_protocol``)."""
    return type("ServiceProtocol", (ServiceProtocol,), {
        "fast_app": app, "fast_reads": tuple((read.prefix.encode("ascii"), read) for read in reads)})


class _NoEvent:
    """uvicorn sets its cycle's message event when the client goes; an exchange answered from
    the protocol (here, and in the gateway's fast path) has none."""

    __slots__ = ()

    def set(self) -> None:
        return None


NO_EVENT = _NoEvent()


class ServiceProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the fast reads of ``fast_app`` taken before ASGI."""

    fast_app: Any = None
    fast_reads: tuple[tuple[bytes, FastRead], ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast: FastRead | None = None

    def on_headers_complete(self) -> None:
        if (
            self.fast_reads
            and (self.cycle is None or self.cycle.response_complete)
            and not self.expect_100_continue
            and self.parser.get_method() == b"GET"
            and not self.parser.should_upgrade()
        ):
            path = self.url.partition(b"?")[0]
            for prefix, read in self.fast_reads:
                if path.startswith(prefix):
                    # Decided once the request is complete: a GET may still bring a body.
                    self._fast = read
                    return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._fast is not None:
            self._fast = None
            super().on_headers_complete()
        super().on_body(body)

    def on_message_complete(self) -> None:
        read, self._fast = self._fast, None
        if read is not None:
            if self._start_fast(read):
                return
            super().on_headers_complete()
        super().on_message_complete()

    def _start_fast(self, read: FastRead) -> bool:
        """Start the fast read and return True, or False to go the ASGI way (the parser is still
        on this request: the caller goes on as uvicorn would have)."""
        try:
            path = httptools.parse_url(self.url).path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return False
        if "%" in path:
            return False  # percent-decoding and its corner cases are the router's
        span, recording = None, False
        http_version = self.parser.get_http_version()
        telemetry: TelemetryHandle | None = getattr(self.fast_app.state, "telemetry", None)
        if telemetry is not None and telemetry.tracer_provider is not None:
            sampling = telemetry.sampling
            if sampling is None:
                return False
            trace_id, flags, root = sampling.decide(traceparent_header(self.headers))
            if flags & 1:
                # Sampled: the span the middleware would make, started here, ended with the answer.
                span = telemetry.span_starter().start_get(
                    path, self.scheme or "http", http_version, self.headers, trace_id, root)
                recording = span.is_recording()
            else:
                span = sampling.unsampled_span(trace_id, flags)
        keep_alive = http_version != "1.0" and self.parser.should_keep_alive()
        exchange = _FastExchange(self, read, path, http_version, keep_alive, span, recording,
                                 telemetry.durations if telemetry is not None else None)
        self.cycle = exchange  # type: ignore[assignment]  # what uvicorn consults meanwhile
        task = self.loop.create_task(exchange.run())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
        return True


class _FastExchange:
    """One fast read; stands in for uvicorn's request cycle until its answer is out."""

    __slots__ = ("protocol", "read", "path", "url", "scope", "headers", "http_version", "keep_alive", "span",
                 "recording", "durations", "response_complete", "disconnected", "message_event", "started")

    def __init__(self, protocol: ServiceProtocol, read: FastRead, path: str, http_version: str, keep_alive: bool,
                 span: trace.Span | None, recording: bool, durations: Any) -> None:
        self.protocol = protocol
        self.read = read
        self.path = path
        # The request as the parser left it: a pipelined request may be parsed meanwhile.
        self.url = protocol.url
        self.scope = protocol.scope
        self.headers = protocol.headers
        self.http_version = http_version
        self.keep_alive = keep_alive  # uvicorn's shutdown() clears it on a busy connection
        self.span = span
        self.recording = recording  # a sampled request's span, to be ended here
        self.durations = durations
        self.response_complete = False
        self.disconnected = False  # set by uvicorn when the client goes
        self.message_event = NO_EVENT
        self.started = time.perf_counter()

    async def run(self) -> None:
        request_id = accept_request_id(
            next((v for k, v in self.headers if k == b"x-request-id"), b"").decode("latin-1"))
        rid_token = request_id_var.set(request_id)
        span_token = otel_context.attach(trace.set_span_in_context(self.span)) if self.span is not None else None
        durations = self.durations
        if durations is not None:
            durations.active += 1
        try:
            status, headers, body = await self._answer()
            if status == 0:
                self._asgi_way()
                return
            self._write(status, headers, body, request_id)
            log_access(access_log, "GET", self.path, self.read.route.path_format, status, self.started)
            key = request_key("GET", self.protocol.scheme or "http", status, self.read.route.path_format)
            if durations is not None:
                durations.record(time.perf_counter() - self.started, key,
                                 self.span.get_span_context() if self.recording else None)  # type: ignore[union-attr]
            if self.recording:
                end_server_span(self.span, key)  # type: ignore[arg-type]
        finally:
            if durations is not None:
                durations.active -= 1
            if span_token is not None:
                otel_context.detach(span_token)
            request_id_var.reset(rid_token)
        self._finish()

    async def _answer(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, headers, body) of the answer; status 0: the ASGI way is to answer."""
        try:
            answer = await self.read.handler(FastRequest(self.protocol.fast_app, self.path, self.headers))
        except ProblemError as err:
            problem = err
        except Exception as exc:
            found = database_problem(exc)
            if found is None:
                return 500, [(b"content-type", PROBLEM_JSON.encode())], orjson.dumps(internal_problem(exc))
            problem = found
        else:
            return (0, [], b"") if answer is None else (200, answer.headers, answer.body)
        body = dumps_problem(problem)  # with the current span's trace id, as the handlers write it
        headers = [(b"content-type", PROBLEM_JSON.encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in problem.headers.items()]
        return problem.status, headers, body

    def _write(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, request_id: str) -> None:
        protocol = self.protocol
        if self.disconnected or protocol.transport.is_closing():
            return
        parts = [STATUS_LINE[status]]
        for name, value in protocol.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts += (b"content-length: ", b"%d" % len(body), b"\r\nx-request-id: ", request_id.encode(), b"\r\n")
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        protocol.transport.write(b"".join(parts))

    def _finish(self) -> None:
        self.response_complete = True
        protocol = self.protocol
        if not self.keep_alive:
            protocol.transport.close()
        protocol.on_response_complete()  # the next pipelined request, or the keep-alive timer

    def _asgi_way(self) -> None:
        """Hand the request to the app as uvicorn would have (its on_headers_complete and
        on_message_complete, on the request kept here)."""
        protocol = self.protocol
        parsed = httptools.parse_url(self.url)
        scope = self.scope
        scope["method"] = "GET"
        if self.http_version != "1.1":
            scope["http_version"] = self.http_version
        scope["path"] = protocol.root_path + self.path
        scope["raw_path"] = protocol.root_path.encode("ascii") + parsed.path
        scope["query_string"] = parsed.query or b""
        cycle = RequestResponseCycle(
            scope=scope, transport=protocol.transport, flow=protocol.flow, logger=protocol.logger,
            access_logger=protocol.access_logger, access_log=protocol.access_log,
            default_headers=protocol.server_state.default_headers, message_event=asyncio.Event(),
            expect_100_continue=False, keep_alive=self.keep_alive, on_response=protocol.on_response_complete)
        cycle.more_body = False
        cycle.disconnected = self.disconnected
        if self.recording:  # the sampled request's span goes on with it
            scope[STARTED_SPAN] = self.span  # type: ignore[literal-required]
        if protocol.cycle is self:  # else a pipelined request has been queued behind this one
            protocol.cycle = cycle
        protocol._start_asgi_task(cycle, protocol.app)
