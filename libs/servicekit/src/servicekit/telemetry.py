"""OpenTelemetry for every process: traces and metrics over OTLP/HTTP when an endpoint is set.

Probe paths are never traced; query strings, client addresses and anything that looks like an
ID or phone number never leave the process in a span.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.logging import redact
from servicekit.request_metrics import (
    KNOWN_METHODS,
    RequestDurations,
    WithRequestDurations,
    request_attributes,
    request_key,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from servicekit.settings import ServiceSettings

__all__ = [
    "DECIDED_TRACE_ID",
    "STARTED_SPAN",
    "end_server_span",
    "PROBE_PATHS",
    "RequestDurations",
    "Sampling",
    "ServerSpans",
    "ScrubbingSpanExporter",
    "ServerTelemetryMiddleware",
    "TelemetryHandle",
    "context_from_traceparent",
    "current_trace_id",
    "current_traceparent",
    "format_traceparent",
    "meter",
    "request_key",
    "setup_telemetry",
    "traceparent_header",
]

log = logging.getLogger(__name__)

PROBE_PATHS = ("/livez", "/readyz", "/metrics")

# For the suite's own instruments (``meter.create_counter(...)``): a proxy that forwards to
# the global MeterProvider once setup_telemetry installs one, a no-op until then.
meter = metrics.get_meter("servicekit")

_UNTRACED_PATHS = frozenset(PROBE_PATHS) | {f"{path}/" for path in PROBE_PATHS}

# Attributes that hold a URL or a request target: cut at the query string.
_URL_ATTRIBUTES = frozenset({"http.url", "http.target", "url.full", "url.original"})
# Dropped outright: the query string itself, and the caller's address (a citizen's IP at the
# gateway is personal data).
_DROPPED_ATTRIBUTES = frozenset(
    {"url.query", "client.address", "client.port", "net.peer.ip", "net.peer.port", "http.client_ip"}
)
_TRACECONTEXT = TraceContextTextMapPropagator()
_globals_installed = False


@dataclass
class TelemetryHandle:
    """What ``setup_telemetry`` switched on; ``shutdown()`` flushes and undoes it."""

    enabled: bool
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    # http.server.request.duration of an instrumented app, when metrics are exported.
    durations: RequestDurations | None = None
    # The tracer provider's sampling decision, for server requests decided ahead of their span.
    sampling: Sampling | None = None
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _observing_active: bool = field(default=False, repr=False)
    _span_starter: ServerSpans | None = field(default=None, repr=False)

    def server_middleware(
        self, app: ASGIApp, *, tracer_name: str = "servicekit.telemetry"
    ) -> ServerTelemetryMiddleware:
        """``app`` wrapped in a server span and the request-duration metric.

        For servers that are not a FastAPI app given to ``setup_telemetry`` (the gateway). The
        first call also reports ``http.server.active_requests`` when metrics are exported.
        """
        assert self.tracer_provider is not None, "telemetry is off"
        self._observe_active()
        return ServerTelemetryMiddleware(
            app,
            tracer=self.tracer_provider.get_tracer(tracer_name),
            duration=self.durations,
            sampling=self.sampling,
        )

    def span_starter(self) -> ServerSpans:
        """What starts server spans as the middleware does, for requests answered outside it
        (servicekit.fastread, the gateway's fast path); ``end_server_span`` ends them."""
        assert self.tracer_provider is not None, "telemetry is off"
        if self._span_starter is None:
            self._span_starter = ServerSpans(self.tracer_provider.get_tracer("servicekit.telemetry"), self.sampling)
        return self._span_starter

    def _observe_active(self) -> None:
        durations = self.durations
        if durations is None or self.meter_provider is None or self._observing_active:
            return
        self._observing_active = True
        self.meter_provider.get_meter("servicekit.telemetry").create_observable_up_down_counter(
            "http.server.active_requests",
            callbacks=[durations.observe_active],
            unit="{request}",
            description="Number of active HTTP server requests.",
        )

    def shutdown(self) -> None:
        """Remove the instrumentation, flush pending spans and metrics, stop the exporters.

        Call once on graceful shutdown (the lifespan's exit); safe to call again.
        """
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # shutting down must go on past a half-undone instrumentation
                log.warning("telemetry: could not remove an instrumentation", exc_info=True)
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
            self.tracer_provider = None
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
            self.meter_provider = None


def setup_telemetry(
    app: FastAPI | None,
    settings: ServiceSettings,
    *,
    engine: Any = None,
    redis_client: Any = None,
    exporter: SpanExporter | None = None,
    metric_exporter: MetricExporter | None = None,
    processor: Literal["batch", "simple"] | None = None,
    install_global: bool | None = None,
) -> TelemetryHandle:
    """Trace and measure this process when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    Instruments ``app`` (server spans and the ``http.server.request.duration`` histogram;
    probe paths excluded), every httpx client (client spans; ``traceparent`` injected into
    outgoing calls), ``engine`` (SQLAlchemy, sync or async; statements without parameters)
    and ``redis_client``.

    ``exporter`` replaces the OTLP span exporter (tests, benchmarks); ``metric_exporter``
    replaces the OTLP metric exporter (read every ``OTEL_METRIC_EXPORT_INTERVAL`` ms, 60 s by
    default, and on ``meter_provider.force_flush()``). ``processor`` defaults to ``"simple"`` (export
    on span end) for an explicit exporter and ``"batch"`` otherwise. ``install_global``
    (default: only when exporting over OTLP) makes the providers the process-wide ones, for
    code that calls ``trace.get_tracer()`` and for ``meter``; tests leave the globals alone,
    because once set they cannot be unset and FastAPI's own telemetry switches itself on for
    every app in the process when it sees them.

    Without an endpoint or exporter, telemetry is off entirely: the API stays a no-op, incoming
    ``traceparent`` headers are not propagated to outgoing calls, and ``current_trace_id()``
    returns None. Half-on tracing would cost per request and show nothing; production always
    sets the endpoint.
    """
    endpoint = (settings.otel_exporter_otlp_endpoint or "").rstrip("/")
    if exporter is None and not endpoint:
        return TelemetryHandle(enabled=False)

    resource = Resource.create(
        {"service.name": settings.service_name, "deployment.environment.name": settings.environment}
    )
    exporter_is_otlp = exporter is None
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # An explicit endpoint argument is used verbatim, unlike the environment variable.
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
        processor = processor or "batch"
    else:
        processor = processor or "simple"
    ratio = TraceIdRatioBased(settings.otel_sample_ratio)
    ids = _IdGenerator()
    tracer_provider = TracerProvider(
        resource=resource, sampler=ParentBased(ratio), id_generator=ids
    )
    scrubbed = ScrubbingSpanExporter(exporter)
    tracer_provider.add_span_processor(
        _batch_processor(scrubbed) if processor == "batch" else SimpleSpanProcessor(scrubbed)
    )

    if metric_exporter is None and endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        metric_exporter = OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")
    durations = meter_provider = None
    if metric_exporter is not None:
        durations = RequestDurations()
        reader = PeriodicExportingMetricReader(
            WithRequestDurations(metric_exporter, durations, resource)
        )
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    handle = TelemetryHandle(
        enabled=True,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        durations=durations,
        sampling=Sampling(ratio, ids),
    )
    if install_global is None:
        install_global = exporter_is_otlp
    if install_global:
        _install_globals(tracer_provider, meter_provider)
    _instrument(handle, app, engine, redis_client)
    log.info(
        "telemetry on: sampling %.0f%% of new traces, exporting to %s",
        settings.otel_sample_ratio * 100,
        endpoint or type(exporter).__name__,
    )
    return handle


# Spans are exported 64 at a time, not the SDK's 512: an export encodes its batch holding the GIL,
# and 512 at once (every ~2.5 s at 2,000 reads a second, a tenth sampled) held up the requests of
# that moment (registry_read as deployed, in turn: p99 27.1-28.4 ms against 28.1-36.6, the same
# CPU). ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` decides when it is set.
SPAN_EXPORT_BATCH = 64


def _batch_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    size = None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else SPAN_EXPORT_BATCH
    return BatchSpanProcessor(exporter, max_export_batch_size=size)


def _install_globals(tracer_provider: TracerProvider, meter_provider: MeterProvider | None) -> None:
    # The API allows one global provider per process and warns on a second; instrumentations
    # get their providers explicitly, so they never depend on which setup won.
    global _globals_installed
    if _globals_installed:
        return
    _globals_installed = True
    trace.set_tracer_provider(tracer_provider)
    if meter_provider is not None:
        metrics.set_meter_provider(meter_provider)


def _instrument(
    handle: TelemetryHandle, app: FastAPI | None, engine: Any, redis_client: Any
) -> None:
    providers: dict[str, Any] = {
        "tracer_provider": handle.tracer_provider,
        # Explicit even when metrics are off, so instrumentations never fall back to a global
        # provider that an earlier setup may have shut down.
        "meter_provider": handle.meter_provider or metrics.NoOpMeterProvider(),
    }

    if app is not None:
        _instrument_app(handle, app)

    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    # Patches httpx's HTTP transports process-wide, so every service client propagates
    # traceparent; MockTransport and ASGITransport are not covered.
    httpx_instrumentor = HTTPXClientInstrumentor()
    if not httpx_instrumentor.is_instrumented_by_opentelemetry:
        httpx_instrumentor.instrument(**providers)
        handle._undo.append(httpx_instrumentor.uninstrument)

    if engine is not None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        sql_instrumentor = SQLAlchemyInstrumentor()
        if not sql_instrumentor.is_instrumented_by_opentelemetry:
            # Async engines are instrumented through their sync core. The commenter stays off:
            # it would put trace context into SQL text and defeat statement caching.
            sql_instrumentor.instrument(
                engine=getattr(engine, "sync_engine", engine),
                enable_commenter=False,
                # 0.66b2 declares "sqlalchemy < 2.1" and would silently do nothing on 2.1; the
                # event API it hooks is unchanged and tests/test_telemetry.py proves spans appear.
                skip_dep_check=True,
                **providers,
            )
            if sql_instrumentor.is_instrumented_by_opentelemetry:
                handle._undo.append(sql_instrumentor.uninstrument)

    if redis_client is not None:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        # The instrumentation records commands as "SET ? ?": keys and values never reach spans.
        RedisInstrumentor.instrument_client(redis_client, tracer_provider=handle.tracer_provider)
        handle._undo.append(lambda: RedisInstrumentor.uninstrument_client(redis_client))


def native_telemetry_off(app: FastAPI) -> None:
    """Switch FastAPI's own OpenTelemetry middleware (FastAPI >= 0.160) off for ``app``.

    It switches itself on when it sees global providers, whoever installed them, and would add
    a second server span carrying the query string, exception messages on spans and a second
    request-duration metric. This kit traces and measures requests itself (or not at all when
    telemetry is off), so every app it makes has the native one off; asking whether it is on
    also cost 7-12 us a request with telemetry off (global providers looked up each time)."""
    native = getattr(app, "_telemetry", None)
    if isinstance(native, dict):
        native.update(tracing=False, metrics=False, logs=False)


def _instrument_app(handle: TelemetryHandle, app: FastAPI) -> None:
    # Wrapped around the whole middleware stack, Starlette's ServerErrorMiddleware included,
    # so the span is current while the 500 handler logs and renders the trace id.
    handle._observe_active()
    build_stack = app.build_middleware_stack

    def build_traced_stack() -> ASGIApp:
        return handle.server_middleware(build_stack())

    app.build_middleware_stack = build_traced_stack  # type: ignore[method-assign]
    app.middleware_stack = None  # built afresh, with the wrapper, on the first request

    native = getattr(app, "_telemetry", None)
    native_before = dict(native) if isinstance(native, dict) else None
    native_telemetry_off(app)

    def undo() -> None:
        del app.build_middleware_stack
        app.middleware_stack = None
        if isinstance(native, dict) and native_before is not None:
            native.update(native_before)

    handle._undo.append(undo)


class ServerTelemetryMiddleware:
    """A server span and a duration measurement for each HTTP request, at the least cost.

    Written here instead of using opentelemetry-instrumentation-fastapi, which matches the
    route twice, collects every attribute (query string and user agent included) and takes
    five metric measurements for every request, sampled or not: on the benchmark machine it
    added 400-700 us of CPU a request against a budget of 150 (bench/telemetry_cost.py). A
    sampled request records method, scheme, path, route and status. Only W3C ``traceparent``
    is read, not ``baggage``, which could carry anything.

    With ``sampling`` (``TelemetryHandle.sampling``, as ``setup_telemetry`` and
    ``TelemetryHandle.server_middleware`` pass it) the decision is taken before any span: an
    unsampled request -- nine in ten in production, and every request whose caller (the gateway)
    sent a not-sampled ``traceparent`` -- gets the non-recording span the SDK would have made
    (same trace id, a new span id, the same flags) and one ``RequestDurations.record``, without
    the propagator, the SDK's ``start_span`` or its sampler. A scope carrying
    ``DECIDED_TRACE_ID`` (the gateway's protocol decided, on that trace id, to sample a request
    without a parent) is traced under that trace id.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer: trace.Tracer,
        duration: RequestDurations | None,
        sampling: Sampling | None = None,
    ) -> None:
        self.app = app
        self.spans = ServerSpans(tracer, sampling)
        self.duration = duration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        scheme = scope.get("scheme", "http")
        started = scope.get(STARTED_SPAN)
        if started is not None:  # a fast read's span, started on the protocol's decision
            span, parent = started, _NO_CONTEXT
        else:
            span, parent = self.spans.start(scope, method)
        recording = span.is_recording()
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        duration = self.duration
        if duration is not None:
            duration.active += 1
        status = 0

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_with_status)
        except BaseException as exc:
            error = type(exc).__qualname__
            if recording:
                span.record_exception(exc)  # its message is scrubbed on export
            raise
        finally:
            # The route template, never the raw path: bounded cardinality, no identifiers.
            route = getattr(scope.get("route"), "path_format", None)
            key = request_key(method, scheme, status, route, error)
            if duration is not None:
                duration.active -= 1
                duration.record(
                    time.perf_counter() - start,
                    key,
                    span.get_span_context() if recording else None,
                )
            otel_context.detach(token)
            if recording:
                end_server_span(span, key)


class ServerSpans:
    """How a server request's span is started: by ``ServerTelemetryMiddleware`` for what it
    serves, and through ``TelemetryHandle.span_starter`` for requests a server's protocol answers
    outside it (``end_server_span`` ends those)."""

    __slots__ = ("tracer", "sampling")

    def __init__(self, tracer: trace.Tracer, sampling: Sampling | None) -> None:
        self.tracer = tracer
        self.sampling = sampling

    def start(self, scope: Scope, method: str) -> tuple[trace.Span, otel_context.Context]:
        """The request's span and the context it was started in; a recording span has the
        request's attributes (method, scheme, path, protocol version)."""
        span, parent = self._start(scope, method)
        if span.is_recording():
            span.set_attributes(
                {
                    "http.request.method": method,
                    "url.scheme": scope.get("scheme", "http"),
                    "url.path": scope["path"],
                    "network.protocol.version": scope.get("http_version", ""),
                }
            )
        return span, parent

    def start_get(self, path: str, scheme: str, http_version: str, headers: Sequence[tuple[bytes, bytes]],
                  trace_id: int, root: bool) -> trace.Span:
        """``start`` for a GET whose sampling a server's protocol decided (``Sampling.decide``:
        ``trace_id`` and ``root``): a request without a parent is traced on that trace id."""
        request: dict[str, Any] = {"method": "GET", "path": path, "scheme": scheme, "http_version": http_version,
                                   "headers": headers}
        if root:
            request[DECIDED_TRACE_ID] = trace_id
        return self.start(request, "GET")[0]

    def _start(self, scope: Scope, method: str) -> tuple[trace.Span, otel_context.Context]:
        sampling = self.sampling
        if sampling is None:
            parent = _parent_context(scope)
            return self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER), parent
        trace_id = scope.get(DECIDED_TRACE_ID, 0)
        if not trace_id:
            trace_id, flags, root = sampling.decide(traceparent_header(scope["headers"]))
            if not flags & _SAMPLED:
                # What start_span makes for a dropped request, made directly: log lines, error
                # bodies, audit records and outgoing calls take the trace from it.
                return sampling.unsampled_span(trace_id, flags), _NO_CONTEXT
            if not root:
                parent = _parent_context(scope)
                return self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER), parent
        # A new trace, sampled: its trace id is the one the decision was taken on.
        decided = _decided_trace_id.set(trace_id)
        try:
            span = self.tracer.start_span(method, context=_NO_CONTEXT, kind=SpanKind.SERVER)
            return span, _NO_CONTEXT
        finally:
            _decided_trace_id.reset(decided)


def end_server_span(span: trace.Span, key: tuple[Any, ...]) -> None:
    """End a recording server span with what the request came to (``request_key``'s key)."""
    method, route = key[0], key[3]
    if route:  # the route template, never the raw path: bounded cardinality, no identifiers
        span.update_name(f"{method} {route}")
    span.set_attributes(request_attributes(key))  # type: ignore[arg-type]
    if key[4]:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


# A scope key: the trace id on which the server (the gateway's protocol) already decided to
# sample a request that came without a parent; ServerTelemetryMiddleware starts its span on it.
DECIDED_TRACE_ID = "servicekit.telemetry.decided_trace_id"
# A scope key: the span a fast read (servicekit.fastread) started before its handler declined;
# ServerTelemetryMiddleware makes it the request's span instead of starting another.
STARTED_SPAN = "servicekit.telemetry.started_span"
_decided_trace_id: ContextVar[int] = ContextVar("servicekit_decided_trace_id", default=0)
_SAMPLED = TraceFlags.SAMPLED
_RANDOM_TRACE_ID = TraceFlags.RANDOM_TRACE_ID
# Child flags: the sampled bit, and the random-trace-id bit (W3C Trace Context level 2).
_FLAGS = {flags: TraceFlags(flags) for flags in range(4)}
_NO_CONTEXT = otel_context.Context()
# W3C traceparent as every caller in the suite writes it (version 00, lower-case hex): read
# without the propagator. Anything else goes to the propagator, which decides as it always did.
_CANONICAL_TRACEPARENT = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


class _IdGenerator(RandomIdGenerator):
    """The SDK's random ids, except the trace id of a root span whose sampling was decided on
    a trace id drawn ahead of it (``Sampling.decide``): that one is used."""

    def generate_trace_id(self) -> int:
        return _decided_trace_id.get() or super().generate_trace_id()


class Sampling:
    """The tracer provider's sampling decision for a server request, taken before its span.

    ``setup_telemetry`` samples with ``ParentBased(TraceIdRatioBased(ratio))``: a request with a
    valid ``traceparent`` follows its parent's sampled flag; one without is sampled when the low
    64 bits of its new trace id fall under the ratio's bound. ``decide`` gives that decision
    with the SDK's own bound and id generator, and the flags the SDK would give the request's
    span; tests prove it equal to the SDK sampler's on the same trace ids. The gateway's protocol
    uses it to forward unsampled requests without a span; ``ServerTelemetryMiddleware`` to skip
    the SDK for them.
    """

    __slots__ = ("bound", "ids", "_random")

    def __init__(self, root: TraceIdRatioBased, ids: IdGenerator) -> None:
        self.bound = root.bound
        self.ids = ids
        self._random = _RANDOM_TRACE_ID if ids.is_trace_id_random() else 0

    def decide(self, traceparent: bytes | None) -> tuple[int, int, bool]:
        """(trace id, flags of the request's span, whether it is a root) for a request with this
        ``traceparent`` header (None: none). Sampled when ``flags & 1``."""
        if traceparent is not None:
            match = _CANONICAL_TRACEPARENT.fullmatch(traceparent)
            if match is not None:
                trace_id, span_id = int(match[1], 16), int(match[2], 16)
                parent_flags = int(match[3], 16)
            else:
                parent = trace.get_current_span(
                    _TRACECONTEXT.extract(
                        {"traceparent": traceparent.decode("latin-1")},
                        context=otel_context.Context(),
                    )
                ).get_span_context()
                trace_id, span_id, parent_flags = (
                    parent.trace_id, parent.span_id, parent.trace_flags
                )
            if trace_id and span_id:  # an invalid parent is no parent
                return trace_id, parent_flags & (_SAMPLED | _RANDOM_TRACE_ID), False
        trace_id = self.ids.generate_trace_id()
        sampled = _SAMPLED if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self.bound else 0
        return trace_id, sampled | self._random, True

    def unsampled_span(self, trace_id: int, flags: int) -> NonRecordingSpan:
        """The span the SDK makes for a request it does not sample: a new span id, no recording."""
        span_id = self.ids.generate_span_id()
        return NonRecordingSpan(SpanContext(trace_id, span_id, False, _FLAGS[flags]))


def traceparent_header(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The first ``traceparent`` among raw ASGI headers, as the middleware reads it."""
    for name, value in headers:
        if name == b"traceparent":
            return value
    return None


def format_traceparent(span_context: SpanContext) -> str:
    """The W3C ``traceparent`` of ``span_context``, as the propagator writes it."""
    trace_id, span_id, flags = span_context.trace_id, span_context.span_id, span_context.trace_flags
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def _parent_context(scope: Scope) -> otel_context.Context:
    # A fresh, empty context unless the caller sent a traceparent: requests never inherit
    # whatever happens to be current. Malformed headers are ignored by the propagator.
    value = traceparent_header(scope["headers"])
    if value is None:
        return otel_context.Context()
    return _TRACECONTEXT.extract({"traceparent": value.decode("latin-1")}, context=otel_context.Context())


class ScrubbingSpanExporter(SpanExporter):
    """Wraps an exporter; every span it passes on is free of query strings and personal data.

    Scrubbing at export covers every instrumentation and hand-made span alike, and costs
    nothing on the request path: it runs in the batch processor's thread, for sampled spans only.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_scrub_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _scrub_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` with URL attributes cut at ``?``, risky attributes dropped, IDs masked."""
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_scrub_attributes(span.attributes),
        events=tuple(
            Event(event.name, _scrub_attributes(event.attributes), event.timestamp)
            for event in span.events
        ),
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrub_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in _DROPPED_ATTRIBUTES:
            continue
        if isinstance(value, str):
            if key in _URL_ATTRIBUTES:
                value = value.split("?", 1)[0].split("#", 1)[0]
            value = redact(value)
        elif isinstance(value, Sequence) and value and isinstance(value[0], str):
            value = tuple(redact(item) for item in value)
        clean[key] = value
    return clean


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, for error bodies and logs; None when untraced."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, e.g. to store with an outbox event."""
    carrier: dict[str, str] = {}
    _TRACECONTEXT.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """A context whose parent is ``traceparent`` (malformed or None: a fresh root context).

    Use it to continue an event's trace in its consumer:
    ``tracer.start_as_current_span("consume", context=context_from_traceparent(tp))``.
    """
    if not traceparent:
        return otel_context.Context()
    return _TRACECONTEXT.extract({"traceparent": traceparent}, context=otel_context.Context())
