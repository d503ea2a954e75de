"""Traced: the gateway's span sits between the caller's and the service's, named by route.

With telemetry on, the fast path takes every plain read: an unsampled one forwarded with the trace
context its span would have had, a sampled one with the span the ASGI way would have made, started
and ended by the fast path; both measured as the ASGI way measures them. Clients here are aiohttp, not httpx: telemetry instruments httpx
process-wide, which would put its own traceparent on the requests.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from gateway.app import Gateway, create_app
from gwtest import Tokens, gateway_settings, header_values, serving
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from servicekit.logging import JsonFormatter
from servicekit.telemetry import Sampling
from servicekit.testing import CollectingMetricExporter, spans_under_foreign_providers

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UNSAMPLED_CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
CALLER_TRACE, CALLER_SPAN = CALLER.split("-")[1:3]
ROUTE = "/api/v1/households/{path}"


async def test_the_service_sees_the_gateways_span_as_parent(tmp_path, upstreams):
    exporter = InMemorySpanExporter()
    settings = gateway_settings(
        tmp_path, {"registry": upstreams["registry"].url}, otel_sample_ratio=1.0
    )
    app = create_app(settings, span_exporter=exporter)
    async with serving(app) as url, aiohttp.ClientSession(url) as client:
        headers = {"Authorization": f"Bearer {Tokens(app).make()}", "traceparent": CALLER}
        async with client.get("/api/v1/households/hh-1?q=330106199003070014", headers=headers) as r:
            assert r.status == 200
            forwarded = header_values(await r.json(), "traceparent")
        async with client.get("/livez") as r:  # probes are not traced
            assert r.status == 200
    assert len(forwarded) == 1
    _, trace_id, parent_id, _ = forwarded[0].split("-")
    assert trace_id == CALLER.split("-")[1]  # the caller's trace goes on
    assert parent_id != CALLER.split("-")[2]  # with the gateway's span as the service's parent

    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["GET /api/v1/households/{path}"]
    span = spans[0]
    assert format(span.context.span_id, "016x") == parent_id
    assert format(span.parent.span_id, "016x") == CALLER.split("-")[2]
    assert span.attributes["http.response.status_code"] == 200
    assert "330106199003070014" not in str(dict(span.attributes))


# -- the fast path with telemetry on ----------------------------------------------------------


@dataclass
class Traced:
    """A traced gateway in front of the fake registry, with what it exports and logs."""

    app: Gateway
    client: aiohttp.ClientSession
    spans: InMemorySpanExporter
    metrics: CollectingMetricExporter
    log: io.StringIO
    token: str
    asgi: int = 0  # proxied requests that went the ASGI way

    async def get(
        self, path: str = "/api/v1/households/t", traceparent: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if traceparent is not None:
            headers["traceparent"] = traceparent
        async with self.client.get(path, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    @property
    def served(self) -> int:
        assert self.app.fast_path is not None
        return self.app.fast_path.served

    def durations(self) -> dict[tuple[tuple[str, Any], ...], int]:
        """http.server.request.duration as exported now: count by attribute set."""
        found = self.metrics.collect(self.app.telemetry.meter_provider)
        [active] = found["http.server.active_requests"].data.data_points
        assert active.value == 0  # nothing in flight: every request counted in was counted out
        return {
            tuple(sorted(p.attributes.items())): p.count
            for p in found["http.server.request.duration"].data.data_points
        }

    def access_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


@asynccontextmanager
async def traced_gateway(
    tmp_path, upstreams, ratio: float, **settings: Any
) -> AsyncIterator[Traced]:
    spans, metrics = InMemorySpanExporter(), CollectingMetricExporter()
    app = create_app(
        gateway_settings(
            tmp_path,
            {"registry": upstreams["registry"].url},
            otel_sample_ratio=ratio,
            access_log=True,
            **settings,
        ),
        span_exporter=spans,
        metric_exporter=metrics,
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))  # formats as it emits: the span current then
    access = logging.getLogger("gateway.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        async with (
            serving(app, http=app.http_protocol) as url,
            aiohttp.ClientSession(url) as client,
        ):
            traced = Traced(app, client, spans, metrics, stream, Tokens(app).make())
            assert app.proxy is not None
            handle = app.proxy.handle

            async def counted(*args: Any) -> None:
                traced.asgi += 1
                await handle(*args)

            app.proxy.handle = counted  # type: ignore[method-assign]
            status, _ = await traced.get("/api/v1/households/warm")  # verifies the token
            assert status == 200 and traced.asgi == 1
            spans.clear()
            yield traced
    finally:
        access.removeHandler(handler)
        access.setLevel(level)


def _traceparent(record: dict[str, Any]) -> tuple[str, str, str]:
    [value] = header_values(record, "traceparent")
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00"
    return trace_id, span_id, flags


async def test_unsampled_requests_take_the_fast_path_with_their_trace_context(tmp_path, upstreams):
    async with traced_gateway(tmp_path, upstreams, ratio=0.0) as gw:
        served = gw.served
        seen = [await gw.get() for _ in range(3)]
        assert gw.served == served + 3
        assert gw.spans.get_finished_spans() == ()
        trace_ids = set()
        for status, record in seen:
            assert status == 200
            trace_id, span_id, flags = _traceparent(record)
            trace_ids.add(trace_id)
            assert int(trace_id, 16) and int(span_id, 16)
            # Not sampled, so the service (parent-based) does not sample it either; the other
            # bit is W3C level 2's "random trace id", which the SDK sets on the traces it starts.
            assert flags == "02"
        assert len(trace_ids) == 3  # a trace each

        # A caller's unsampled trace goes on, with the gateway's (unrecorded) span as parent.
        status, record = await gw.get(traceparent=UNSAMPLED_CALLER)
        assert gw.served == served + 4
        assert _traceparent(record)[0] == CALLER_TRACE
        assert _traceparent(record)[1] != CALLER_SPAN
        assert _traceparent(record)[2] == "00"
        assert gw.spans.get_finished_spans() == ()


async def test_sampled_requests_take_the_fast_path_and_get_their_span(tmp_path, upstreams):
    async with traced_gateway(tmp_path, upstreams, ratio=1.0) as gw:
        served = gw.served
        status, record = await gw.get()
        assert status == 200 and gw.served == served + 1
        [span] = gw.spans.get_finished_spans()
        assert span.name == "GET " + ROUTE and span.parent is None
        assert span.attributes["http.response.status_code"] == 200 and span.attributes["http.route"] == ROUTE
        trace_id, span_id, flags = _traceparent(record)
        assert (trace_id, span_id) == (
            format(span.context.trace_id, "032x"),
            format(span.context.span_id, "016x"),
        )
        assert int(flags, 16) & 1

        # An unsampled caller is followed even at ratio 1: no span.
        status, record = await gw.get(traceparent=UNSAMPLED_CALLER)
        assert status == 200 and gw.served == served + 2
        assert _traceparent(record)[0] == CALLER_TRACE and _traceparent(record)[2] == "00"
        assert len(gw.spans.get_finished_spans()) == 1


async def test_a_sampled_caller_is_followed_at_ratio_0(tmp_path, upstreams):
    async with traced_gateway(tmp_path, upstreams, ratio=0.0) as gw:
        served = gw.served
        status, record = await gw.get(traceparent=CALLER)
        assert status == 200 and gw.served == served + 1
        [span] = gw.spans.get_finished_spans()
        assert format(span.parent.span_id, "016x") == CALLER_SPAN
        assert _traceparent(record) == (
            CALLER_TRACE,
            format(span.context.span_id, "016x"),
            "01",
        )


async def test_a_sampled_request_is_traced_on_the_trace_id_it_was_sampled_on(
    tmp_path, upstreams, monkeypatch
):
    decided: list[tuple[int, int, bool]] = []
    decide = Sampling.decide

    def spy(self: Sampling, traceparent: bytes | None) -> tuple[int, int, bool]:
        decision = decide(self, traceparent)
        decided.append(decision)
        return decision

    monkeypatch.setattr(Sampling, "decide", spy)
    async with traced_gateway(tmp_path, upstreams, ratio=0.5) as gw:
        decided.clear()
        for _ in range(24):
            status, record = await gw.get()
            assert status == 200
        spans = gw.spans.get_finished_spans()
    sampled = [d for d in decided if d[1] & 1]
    # One decision a request, taken by the protocol, whose span starter does not take it again
    # for a request without a parent; every request on the fast path.
    assert len(decided) == 24
    assert gw.asgi == 1 and 0 < len(sampled) < 24
    assert [s.context.trace_id for s in spans] == [d[0] for d in sampled]
    bound = TraceIdRatioBased(0.5).bound
    for trace_id, flags, root in decided:
        assert root and bool(flags & 1) == (trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < bound)


async def test_both_paths_record_the_request_duration_alike(tmp_path, upstreams):
    counts = {}
    for ratio in (0.0, 1.0):  # not sampled, then sampled: both on the fast path
        async with traced_gateway(tmp_path / str(ratio), upstreams, ratio=ratio) as gw:
            served = gw.served
            for _ in range(3):
                assert (await gw.get())[0] == 200
            assert gw.served == served + 3
            counts[ratio] = gw.durations()
    expected = {
        (
            ("http.request.method", "GET"),
            ("http.response.status_code", 200),
            ("http.route", ROUTE),
            ("url.scheme", "http"),
        ): 4  # the warm-up call (the ASGI way: its token is verified) and three
    }
    assert counts[0.0] == counts[1.0] == expected


async def test_a_fast_path_problem_carries_the_trace_id_in_body_log_and_metric(
    tmp_path, upstreams
):
    async with traced_gateway(
        tmp_path, upstreams, ratio=0.0, rate_limit_enabled=True, rate_limit_burst=3,
        rate_limit_per_second=0.001,
    ) as gw:
        served = gw.served
        statuses = []
        for _ in range(3):
            status, body = await gw.get(traceparent=UNSAMPLED_CALLER)
            statuses.append(status)
        assert statuses == [200, 200, 429]
        assert gw.served == served + 2 and gw.asgi == 1  # the 429 is the fast path's too
        assert body["trace_id"] == CALLER_TRACE
        [line] = [line for line in gw.access_lines() if line["status"] == 429]
        assert line["trace_id"] == CALLER_TRACE
        assert line["span_id"] != CALLER_SPAN
        durations = gw.durations()
        assert durations[
            (
                ("http.request.method", "GET"),
                ("http.response.status_code", 429),
                ("http.route", ROUTE),
                ("url.scheme", "http"),
            )
        ] == 1


async def test_a_fast_path_timeout_is_a_504_with_its_trace_and_error_type(tmp_path, upstreams):
    async with traced_gateway(tmp_path, upstreams, ratio=0.0) as gw:
        served = gw.served
        status, body = await gw.get("/api/v1/households/slow?seconds=2")
        assert status == 504 and gw.served == served + 1
        [line] = [line for line in gw.access_lines() if line["status"] == 504]
        assert line["trace_id"] == body["trace_id"]
        assert gw.spans.get_finished_spans() == ()
        assert gw.durations()[
            (
                ("error.type", "504"),
                ("http.request.method", "GET"),
                ("http.response.status_code", 504),
                ("http.route", ROUTE),
                ("url.scheme", "http"),
            )
        ] == 1



def test_fastapis_own_telemetry_stays_off_in_the_gateways_control_app() -> None:
    # As servicekit's test for service apps: global providers installed by something else,
    # the gateway's telemetry off, and FastAPI's own middleware must not trace its probes.
    make_app = (
        "import tempfile\nfrom pathlib import Path\nfrom gateway.app import create_app\n"
        "from gwtest import gateway_settings\napp = create_app(gateway_settings(Path(tempfile.mkdtemp()), {}))"
    )
    assert spans_under_foreign_providers(make_app, "/livez", Path(__file__).resolve().parent) == (200, [])
