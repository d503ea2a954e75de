"""Sampling decided ahead of the span: equal to the SDK's, and cheap for unsampled requests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from servicekit.settings import ServiceSettings
from servicekit.telemetry import (
    DECIDED_TRACE_ID,
    Sampling,
    TelemetryHandle,
    format_traceparent,
    setup_telemetry,
)
from servicekit.testing import CollectingMetricExporter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT


def _settings(ratio: float) -> ServiceSettings:
    return ServiceSettings(service_name="testsvc", environment="test", otel_sample_ratio=ratio)


class _FixedIds(RandomIdGenerator):
    """Hands out the given trace ids in turn: the decision's edge cases on demand."""

    def __init__(self, trace_ids: list[int]) -> None:
        self.trace_ids = list(trace_ids)

    def generate_trace_id(self) -> int:
        return self.trace_ids.pop(0)


def _sdk_span(handle: TelemetryHandle, traceparent: str | None) -> trace.SpanContext:
    """What the SDK makes for a server request with this header, decided by its own sampler."""
    assert handle.tracer_provider is not None
    parent = TraceContextTextMapPropagator().extract(
        {"traceparent": traceparent} if traceparent is not None else {},
        context=otel_context.Context(),
    )
    span = handle.tracer_provider.get_tracer("t").start_span("GET", parent, SpanKind.SERVER)
    span.end()
    return span.get_span_context()


def _edge_trace_ids(ratio: float) -> list[int]:
    bound = TraceIdRatioBased(ratio).bound
    high = 0xABCD << 64  # the high bits take no part
    ids = [1, LIMIT, high | 1, high | LIMIT]
    for edge in (bound - 1, bound, bound + 1):
        if 0 < edge <= LIMIT:
            ids += [edge, high | edge]
    rng = random.Random(7)
    return ids + [rng.getrandbits(128) or 1 for _ in range(200)]


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 1.0])
def test_a_root_decision_equals_the_sdk_samplers_on_the_same_trace_id(ratio: float) -> None:
    handle = setup_telemetry(None, _settings(ratio), exporter=InMemorySpanExporter())
    try:
        assert handle.tracer_provider is not None and handle.sampling is not None
        sdk = handle.tracer_provider.sampler
        trace_ids = _edge_trace_ids(ratio)
        sampling = Sampling(TraceIdRatioBased(ratio), _FixedIds(trace_ids))
        for trace_id in list(trace_ids):
            decided_id, flags, root = sampling.decide(None)
            assert (decided_id, root) == (trace_id, True)
            expected = sdk.should_sample(otel_context.Context(), trace_id, "GET", SpanKind.SERVER)
            assert bool(flags & 1) == expected.decision.is_sampled(), hex(trace_id)
            assert flags & 2  # random trace ids, as the SDK flags the traces it starts
        # And the flags are those the SDK gives a span it starts itself.
        for _ in range(50):
            span_context = _sdk_span(handle, None)
            sampled = span_context.trace_id & LIMIT < TraceIdRatioBased(ratio).bound
            assert span_context.trace_flags == (3 if sampled else 2)
    finally:
        handle.shutdown()


@pytest.mark.parametrize("ratio", [0.0, 1.0])
@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-00",
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01",
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-02",
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-03",
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-ff",
        f"  00-{TRACE_ID}-{PARENT_SPAN_ID}-01",  # read by the propagator, not the quick match
        f"01-{TRACE_ID}-{PARENT_SPAN_ID}-00-later-fields",
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01-not-in-version-00",
        f"00-{'0' * 32}-{PARENT_SPAN_ID}-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00-{TRACE_ID.upper()}-{PARENT_SPAN_ID}-01",
        "garbage",
    ],
)
def test_a_decision_with_a_parent_equals_the_sdks(ratio: float, traceparent: str) -> None:
    handle = setup_telemetry(None, _settings(ratio), exporter=InMemorySpanExporter())
    try:
        assert handle.sampling is not None
        trace_id, flags, root = handle.sampling.decide(traceparent.encode())
        sdk = _sdk_span(handle, traceparent)
        assert flags == sdk.trace_flags
        if root:  # no valid parent: a new trace, decided by the ratio
            assert format(sdk.trace_id, "032x") != TRACE_ID
            assert bool(flags & 1) == (trace_id & LIMIT < TraceIdRatioBased(ratio).bound)
        else:
            assert trace_id == sdk.trace_id == int(TRACE_ID, 16)
    finally:
        handle.shutdown()


# -- the middleware ---------------------------------------------------------------------------


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/households/{household_id}")
    async def get_household(household_id: str) -> dict[str, object]:
        span_context = trace.get_current_span().get_span_context()
        return {
            "traceparent": format_traceparent(span_context),
            "remote": span_context.is_remote,
            "recording": trace.get_current_span().is_recording(),
        }

    return app


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(spans: InMemorySpanExporter, request: pytest.FixtureRequest) -> Iterator[FastAPI]:
    app = _app()
    ratio = getattr(request, "param", 0.0)
    handle = setup_telemetry(
        app, _settings(ratio), exporter=spans, metric_exporter=CollectingMetricExporter()
    )
    app.state.telemetry = handle
    yield app
    handle.shutdown()


@pytest.fixture
async def client(traced: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=traced)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def start_span_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    start_span = Tracer.start_span

    def counted(self: Tracer, name: str, *args: object, **kwargs: object) -> trace.Span:
        calls.append(name)
        return start_span(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Tracer, "start_span", counted)
    return calls


def _durations(app: FastAPI) -> dict[tuple[tuple[str, object], ...], int]:
    metric = app.state.telemetry.durations.metric()
    return {tuple(sorted(p.attributes.items())): p.count for p in metric.data.data_points}


async def test_an_unsampled_parent_costs_no_span_yet_keeps_the_trace(
    traced: FastAPI,
    client: httpx.AsyncClient,
    spans: InMemorySpanExporter,
    start_span_calls: list[str],
) -> None:
    response = await client.get(
        "/api/v1/households/h1", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-00"}
    )

    assert response.status_code == 200
    assert start_span_calls == []  # the SDK's span machinery is not involved
    assert spans.get_finished_spans() == ()
    seen = response.json()
    _, trace_id, span_id, flags = seen["traceparent"].split("-")
    # The non-recording span the SDK would have made: the caller's trace, a span id of its own.
    assert (trace_id, flags) == (TRACE_ID, "00")
    assert span_id not in (PARENT_SPAN_ID, "0" * 16)
    assert seen["remote"] is False and seen["recording"] is False
    assert _durations(traced) == {
        (
            ("http.request.method", "GET"),
            ("http.response.status_code", 200),
            ("http.route", "/api/v1/households/{household_id}"),
            ("url.scheme", "http"),
        ): 1
    }


async def test_a_new_unsampled_trace_costs_no_span_either(
    client: httpx.AsyncClient, spans: InMemorySpanExporter, start_span_calls: list[str]
) -> None:
    seen = [(await client.get(f"/api/v1/households/h{i}")).json() for i in range(3)]

    assert start_span_calls == [] and spans.get_finished_spans() == ()  # ratio 0
    assert len({s["traceparent"].split("-")[1] for s in seen}) == 3
    assert {s["traceparent"].split("-")[3] for s in seen} == {"02"}


@pytest.mark.parametrize("traced", [1.0], indirect=True)
async def test_sampled_requests_keep_their_span_and_attributes(
    traced: FastAPI, client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    await client.get("/api/v1/households/h1")
    await client.get(
        "/api/v1/households/h2", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-00"}
    )
    await client.get(
        "/api/v1/households/h3", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"}
    )

    root, child = spans.get_finished_spans()  # the unsampled parent is followed
    assert root.parent is None and format(child.parent.span_id, "016x") == PARENT_SPAN_ID
    assert dict(child.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/api/v1/households/{household_id}",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "url.path": "/api/v1/households/h3",
        "network.protocol.version": "1.1",
    }
    [point] = traced.state.telemetry.durations.metric().data.data_points
    # Exemplars come from sampled requests only: one per bucket (the latest sampled in it), so one
    # or two here -- a cold first request may fall in a slower bucket than the third.
    sampled = {root.context.span_id, child.context.span_id}
    assert point.count == 3 and point.exemplars and {e.span_id for e in point.exemplars} <= sampled


@pytest.mark.parametrize("traced", [0.5], indirect=True)
async def test_a_trace_id_decided_upstream_of_the_middleware_is_the_spans(
    traced: FastAPI, spans: InMemorySpanExporter
) -> None:
    # Sampled at 0.5 (its low 64 bits under the bound), as the gateway's protocol decided.
    decided = (random.getrandbits(64) << 64) | 1
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/api/v1/households/h1", "raw_path": b"/api/v1/households/h1",
        "query_string": b"", "root_path": "", "headers": [], "client": ("127.0.0.1", 1),
        "server": ("testserver", 80), DECIDED_TRACE_ID: decided,
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await traced(scope, receive, send)

    [span] = spans.get_finished_spans()
    assert span.context.trace_id == decided and span.parent is None
    assert sent[0]["status"] == 200
    # The trace ids of other root spans are random again.
    assert RandomIdGenerator().generate_trace_id() != decided
    tracer = traced.state.telemetry.tracer_provider.get_tracer("t")
    assert tracer.start_span("later").get_span_context().trace_id != decided
