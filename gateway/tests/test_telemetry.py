"""Traced: the gateway's span sits between the caller's and the service's, named by route."""

from __future__ import annotations

import aiohttp
from gateway.app import create_app
from gwtest import Tokens, gateway_settings, header_values, serving
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_the_service_sees_the_gateways_span_as_parent(tmp_path, upstreams):
    exporter = InMemorySpanExporter()
    settings = gateway_settings(
        tmp_path, {"registry": upstreams["registry"].url}, otel_sample_ratio=1.0
    )
    app = create_app(settings, span_exporter=exporter)
    # aiohttp, not httpx: telemetry instruments httpx process-wide, which would put its own
    # traceparent on the request.
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
