"""setup_telemetry: server and client spans, probes untraced, propagation, no personal data."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from servicekit.logging import JsonFormatter
from servicekit.settings import ServiceSettings
from servicekit.telemetry import (
    context_from_traceparent,
    current_trace_id,
    current_traceparent,
    setup_telemetry,
)
from servicekit.telemetry import RequestDurations
from servicekit.testing import CollectingMetricExporter, spans_under_foreign_providers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ID_NUMBER = "33010619900101001X"
PHONE = "13812345678"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


def make_settings(**overrides: object) -> ServiceSettings:
    values: dict[str, object] = {
        "service_name": "testsvc",
        "environment": "test",
        "otel_sample_ratio": 1.0,
    }
    values.update(overrides)
    return ServiceSettings(**values)  # type: ignore[arg-type]


class HeaderRecordingServer:
    """A bare HTTP/1.1 server on 127.0.0.1 that remembers the headers of each request.

    Real sockets on purpose: the httpx instrumentation patches the real transports only.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> HeaderRecordingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        self.requests.append(
            {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        )
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()


def make_app(downstream_port: int = 0) -> FastAPI:
    app = FastAPI()
    log = logging.getLogger("testsvc.routes")
    router = APIRouter(prefix="/api/v1")

    @router.get("/households/{household_id}")
    async def get_household(household_id: str) -> dict[str, str]:
        return {"id": household_id}

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        # As servicekit.errors does: the 500 body quotes the trace id.
        return JSONResponse({"trace_id": current_trace_id()}, status_code=500)

    @app.get("/items/{item_id}")
    async def get_item(item_id: str, q: str | None = None) -> dict[str, str | None]:
        return {"id": item_id, "trace_id": current_trace_id()}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError(f"cannot handle resident {ID_NUMBER}")

    @app.get("/call")
    async def call() -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            response = await client.get(
                f"http://127.0.0.1:{downstream_port}/households?after=5&q={ID_NUMBER}"
            )
        return {"status": response.status_code}

    @app.get("/log")
    async def write_log() -> dict[str, str]:
        log.info("household looked up")
        return {}

    app.include_router(router)
    return app


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def metric_exporter() -> CollectingMetricExporter:
    return CollectingMetricExporter()


@pytest.fixture
async def downstream() -> AsyncIterator[HeaderRecordingServer]:
    async with HeaderRecordingServer() as server:
        yield server


@pytest.fixture
def app(
    downstream: HeaderRecordingServer,
    exporter: InMemorySpanExporter,
    metric_exporter: CollectingMetricExporter,
) -> Iterator[FastAPI]:
    app = make_app(downstream.port)
    handle = setup_telemetry(
        app, make_settings(), exporter=exporter, metric_exporter=metric_exporter
    )
    assert handle.enabled
    app.state.telemetry = handle
    yield app
    handle.shutdown()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


def every_recorded_string(span: ReadableSpan) -> list[str]:
    values: list[object] = [span.name, span.status.description or ""]
    values += list((span.attributes or {}).values())
    for event in span.events:
        values += [event.name, *(event.attributes or {}).values()]
    return [str(v) for v in values]


async def test_a_request_creates_one_server_span(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/items/abc")

    assert response.status_code == 200
    [span] = server_spans(exporter)
    assert span.name == "GET /items/{item_id}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "url.path": "/items/abc",
        "network.protocol.version": "1.1",
    }
    assert span.status.is_unset
    assert span.resource.attributes["service.name"] == "testsvc"
    # The handler saw the same trace the span was exported under.
    assert response.json()["trace_id"] == format(span.context.trace_id, "032x")


async def test_spans_are_named_by_the_full_route_template(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await client.get("/api/v1/households/h-1")
    await client.get("/no-such-route")

    found, missing = server_spans(exporter)
    assert found.name == "GET /api/v1/households/{household_id}"
    # Unmatched paths are named by the method alone: a raw path would be unbounded.
    assert missing.name == "GET"
    assert (missing.attributes or {})["http.response.status_code"] == 404


async def test_a_500_is_an_error_span_and_its_handler_sees_the_trace(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    response = await client.get("/boom")

    assert response.status_code == 500
    [span] = server_spans(exporter)
    assert response.json()["trace_id"] == format(span.context.trace_id, "032x")
    assert span.status.status_code.name == "ERROR"
    assert (span.attributes or {})["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]


async def test_probe_paths_are_not_traced(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    for path in ("/livez", "/readyz", "/livez/"):
        assert (await client.get(path)).status_code in (200, 307)
    assert exporter.get_finished_spans() == ()

    # The exclusion is anchored: a resource path that merely contains a probe name is traced.
    await client.get("/items/livez")
    assert len(server_spans(exporter)) == 1


async def test_query_strings_and_id_numbers_never_reach_spans(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await client.get(f"/items/abc?q={ID_NUMBER}&phone={PHONE}")
    await client.get(f"/no-such-route?q={ID_NUMBER}")
    await client.get(f"/items/{ID_NUMBER}")  # misuse: the number in the path itself
    await client.get("/boom")  # the exception message quotes the number

    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    for span in spans:
        for value in every_recorded_string(span):
            assert ID_NUMBER not in value and PHONE not in value, (span.name, value)
            assert "q=" not in value and "phone=" not in value, (span.name, value)
        assert "url.query" not in (span.attributes or {})
        assert "net.peer.ip" not in (span.attributes or {}) and "client.address" not in (
            span.attributes or {}
        )
    [boom] = [s for s in spans if s.name == "GET /boom"]
    assert "[ID-REDACTED]" in str((boom.events[0].attributes or {})["exception.message"])


async def test_a_valid_incoming_traceparent_is_continued(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    response = await client.get(
        "/items/abc", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"}
    )

    assert response.status_code == 200
    [span] = server_spans(exporter)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_SPAN_ID


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        "00-xyz-abc-01",
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}",  # no flags
        f"ff-{TRACE_ID}-{PARENT_SPAN_ID}-01",  # forbidden version
        f"00-{'0' * 32}-{PARENT_SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID.upper()}-{PARENT_SPAN_ID}-01",  # upper-case hex
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01-" + "x" * 8000,
        "00-\u00e9\u00e9-01",
    ],
)
async def test_a_malformed_traceparent_starts_a_new_trace(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter, traceparent: str
) -> None:
    response = await client.get("/items/abc", headers={"traceparent": traceparent.encode("utf-8")})  # type: ignore[dict-item]

    assert response.status_code == 200
    [span] = server_spans(exporter)
    assert span.parent is None
    assert format(span.context.trace_id, "032x") != TRACE_ID


async def test_outgoing_calls_carry_traceparent_and_no_query_in_client_span(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter, downstream: HeaderRecordingServer
) -> None:
    response = await client.get("/call")

    assert response.json() == {"status": 200}
    [server] = server_spans(exporter)
    [outgoing] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    [request] = downstream.requests
    _version, trace_id, span_id, _flags = request["traceparent"].split("-")
    assert trace_id == format(server.context.trace_id, "032x")
    assert span_id == format(outgoing.context.span_id, "016x")
    assert outgoing.parent is not None and outgoing.parent.span_id == server.context.span_id
    for value in every_recorded_string(outgoing):
        assert ID_NUMBER not in value and "after=" not in value, value


async def test_log_lines_written_while_serving_carry_the_trace_id(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("testsvc"))
    route_log = logging.getLogger("testsvc.routes")
    route_log.addHandler(handler)
    route_log.setLevel(logging.INFO)
    try:
        await client.get("/log")
    finally:
        route_log.removeHandler(handler)

    [server] = server_spans(exporter)
    [line] = [
        json.loads(ln) for ln in stream.getvalue().splitlines() if "household looked up" in ln
    ]
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    assert line["span_id"] == format(server.context.span_id, "016x")


async def test_the_request_duration_histogram_is_recorded_by_route(
    app: FastAPI,
    client: httpx.AsyncClient,
    metric_exporter: CollectingMetricExporter,
    exporter: InMemorySpanExporter,
) -> None:
    await client.get(f"/items/abc?q={ID_NUMBER}")
    await client.get("/items/def")
    await client.get("/livez")
    await client.get("/nowhere")

    metrics = metric_exporter.collect(app.state.telemetry.meter_provider)
    duration = metrics["http.server.request.duration"]
    assert duration.unit == "s"
    assert duration.data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    points = {p.attributes.get("http.route"): p for p in duration.data.data_points}
    assert set(points) == {"/items/{item_id}", None}  # probes not measured; 404 has no route
    point = points["/items/{item_id}"]
    assert point.count == 2 == sum(point.bucket_counts)
    assert len(point.bucket_counts) == len(point.explicit_bounds) + 1
    assert 0 < point.min <= point.max <= point.sum
    assert dict(point.attributes) == {
        "http.request.method": "GET",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "url.scheme": "http",
    }
    assert points[None].attributes["http.response.status_code"] == 404
    # Exemplars tie the buckets to sampled traces.
    trace_ids = {s.context.trace_id for s in server_spans(exporter)}
    assert point.exemplars and {e.trace_id for e in point.exemplars} <= trace_ids
    # In flight: none now (the counter is what keeps an export going for the histogram).
    [active] = metrics["http.server.active_requests"].data.data_points
    assert active.value == 0

    # Cumulative: the next export counts the earlier requests too.
    await client.get("/items/ghi")
    again = metric_exporter.collect(app.state.telemetry.meter_provider)
    again = again["http.server.request.duration"]
    [point] = [p for p in again.data.data_points if p.attributes.get("http.route")]
    assert point.count == 3


def test_request_durations_fall_into_the_upper_inclusive_bucket_and_overflow() -> None:
    durations = RequestDurations(bounds=(0.1, 1.0))
    key = ("GET", "http", 200, "/a", None)
    for seconds in (0.05, 0.1, 0.5, 1.0, 3.0):
        durations.record(seconds, key)
    metric = durations.metric()
    assert metric is not None
    [point] = metric.data.data_points
    assert list(point.bucket_counts) == [2, 2, 1]  # (-inf, 0.1], (0.1, 1.0], (1.0, +inf)
    assert (point.count, point.min, point.max) == (5, 0.05, 3.0)
    assert point.sum == pytest.approx(4.65)

    durations.CARDINALITY_LIMIT = 2
    for route in ("/b", "/c", "/d"):
        durations.record(0.2, ("GET", "http", 200, route, None))
    [*_, overflow] = durations.metric().data.data_points
    assert dict(overflow.attributes) == {"otel.metric.overflow": True}
    assert overflow.count == 2
    assert RequestDurations().metric() is None


async def test_sampling_follows_the_ratio_for_new_traces_and_the_parent_otherwise(
    downstream: HeaderRecordingServer, exporter: InMemorySpanExporter
) -> None:
    app = make_app(downstream.port)
    handle = setup_telemetry(app, make_settings(otel_sample_ratio=0.0), exporter=exporter)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            unsampled = await client.get("/items/abc")
            assert exporter.get_finished_spans() == ()
            # Not recorded, yet the request still has a trace id for its logs and error body.
            assert unsampled.json()["trace_id"] is not None

            await client.get(
                "/items/abc", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"}
            )
            assert len(server_spans(exporter)) == 1
    finally:
        handle.shutdown()


async def test_sqlalchemy_spans_carry_the_statement_but_not_its_parameters(
    exporter: InMemorySpanExporter,
) -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    handle = setup_telemetry(None, make_settings(), engine=engine, exporter=exporter)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("select :resident_id"), {"resident_id": ID_NUMBER})
    finally:
        handle.shutdown()
        await engine.dispose()

    statements = [
        s
        for s in exporter.get_finished_spans()
        if "select" in str((s.attributes or {}).get("db.statement", ""))
    ]
    assert statements, [s.name for s in exporter.get_finished_spans()]
    for span in statements:
        assert all(ID_NUMBER not in value for value in every_recorded_string(span))


async def test_without_an_endpoint_telemetry_is_off(exporter: InMemorySpanExporter) -> None:
    app = make_app()
    handle = setup_telemetry(app, make_settings(otel_exporter_otlp_endpoint=None))

    assert not handle.enabled
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get(
            "/items/abc", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"}
        )
    assert response.json()["trace_id"] is None
    handle.shutdown()  # a no-op, but callable unconditionally


class _BatchSizes(InMemorySpanExporter):
    """Keeps the size of every export."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.sizes.append(len(spans))
        return super().export(spans)


@pytest.mark.parametrize("configured", [None, "100"])
def test_batched_spans_go_out_64_at_a_time_unless_configured(
    configured: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if configured is None:
        monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    else:
        monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", configured)
    sizes = _BatchSizes()
    handle = setup_telemetry(make_app(), make_settings(otel_sample_ratio=1.0), exporter=sizes, processor="batch")
    tracer = handle.tracer_provider.get_tracer("test")
    for i in range(300):
        with tracer.start_as_current_span(f"span-{i}"):
            pass
    handle.tracer_provider.force_flush()
    handle.shutdown()
    assert sum(sizes.sizes) == 300
    assert max(sizes.sizes) == (64 if configured is None else 100)


def test_shutdown_removes_the_instrumentation(exporter: InMemorySpanExporter) -> None:
    handle = setup_telemetry(make_app(), make_settings(), exporter=exporter)
    assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry

    handle.shutdown()
    handle.shutdown()

    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry


def test_traceparent_round_trips_through_an_event() -> None:
    assert current_traceparent() is None
    parent = context_from_traceparent(f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
    with trace.use_span(trace.NonRecordingSpan(trace.get_current_span(parent).get_span_context())):
        assert current_trace_id() == TRACE_ID
        assert current_traceparent() == f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    assert (
        not trace.get_current_span(context_from_traceparent("00-garbage"))
        .get_span_context()
        .is_valid
    )
    assert not trace.get_current_span(context_from_traceparent(None)).get_span_context().is_valid


def test_an_otlp_endpoint_is_given_the_signal_paths(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    from opentelemetry.exporter.otlp.proto.http import metric_exporter, trace_exporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    endpoints: dict[str, str] = {}

    class OfflineSpanExporter(trace_exporter.OTLPSpanExporter):
        def __init__(self, *, endpoint: str) -> None:
            endpoints["traces"] = endpoint
            super().__init__(endpoint=endpoint)

        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    class OfflineMetricExporter(metric_exporter.OTLPMetricExporter):
        def __init__(self, *, endpoint: str) -> None:
            endpoints["metrics"] = endpoint
            super().__init__(endpoint=endpoint)

        def export(self, *args: object, **kwargs: object) -> MetricExportResult:
            return MetricExportResult.SUCCESS

    monkeypatch.setattr(trace_exporter, "OTLPSpanExporter", OfflineSpanExporter)
    monkeypatch.setattr(metric_exporter, "OTLPMetricExporter", OfflineMetricExporter)
    settings = make_settings(otel_exporter_otlp_endpoint="http://collector:4318/")

    handle = setup_telemetry(make_app(), settings, install_global=False)
    handle.shutdown()

    assert handle.enabled
    assert endpoints == {
        "traces": "http://collector:4318/v1/traces",
        "metrics": "http://collector:4318/v1/metrics",
    }


GLOBAL_SETUP_SCRIPT = """
import asyncio, json, httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from servicekit.settings import ServiceSettings
from servicekit.telemetry import setup_telemetry

app = FastAPI()

@app.get("/households")
async def households() -> dict:
    return {}

@app.get("/livez")
async def livez() -> dict:
    return {}

exporter = InMemorySpanExporter()
settings = ServiceSettings(service_name="s", environment="test", otel_sample_ratio=1.0)
setup_telemetry(app, settings, exporter=exporter, install_global=True)

async def main() -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/households?after=5")
        await client.get("/livez")
    print(json.dumps([[s.name, s.kind.name] for s in exporter.get_finished_spans()]))

asyncio.run(main())
"""


@pytest.mark.slow
def test_with_global_providers_a_request_still_makes_exactly_one_span() -> None:
    # A fresh process, because global providers cannot be unset: FastAPI's own telemetry
    # switches on when it sees them and must stay off for an app we instrument.
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_SETUP_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [["GET /households", "SERVER"]]



@pytest.mark.slow
def test_fastapis_own_telemetry_stays_off_in_a_kit_app_whoever_installs_global_providers() -> None:
    # FastAPI >= 0.160 traces every request itself once it sees global providers: a second,
    # unscrubbed server span (query strings, exception messages) beside the kit's, or spans
    # from a service whose telemetry is off. create_service_app switches it off.
    make_app = (
        "from kitapp.app import KitSettings, create_app\n"
        "app = create_app(KitSettings(database_url='sqlite+aiosqlite:///:memory:', otel_exporter_otlp_endpoint=None))"
    )
    assert spans_under_foreign_providers(make_app, "/livez", Path(__file__).resolve().parent) == (200, [])
