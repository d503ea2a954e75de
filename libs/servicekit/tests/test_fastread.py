"""Fast reads (servicekit.fastread): GETs answered from uvicorn's protocol, over real sockets.

A small app has one route, ``GET /api/v1/things/{thing_id}``, and a fast read for it whose
handler does what the test asks: answer, decline (the route answers), fail. What the ASGI way
gives -- request ids, the access line, problem documents, telemetry, a graceful shutdown,
pipelining -- the fast way must give too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from asyncpg.exceptions import DeadlockDetectedError
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from servicekit.app import RequestGuard, ServiceSpec
from servicekit.errors import NotFound, install_error_handlers
from servicekit.fastread import FastAnswer, FastRead, FastRequest, protocol_for
from servicekit.logging import AccessLogMiddleware
from servicekit.settings import ServiceSettings
from servicekit.telemetry import setup_telemetry
from servicekit.testing import CollectingMetricExporter, raw_http, serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass
class Things:
    """The fast handler's behaviour by thing id, and what it and the route saw."""

    handled: list[str] = field(default_factory=list)
    routed: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    trace_ids: list[int] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def fast(self, request: FastRequest) -> FastAnswer | None:
        thing = request.path.rsplit("/", 1)[-1]
        self.handled.append(thing)
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        if thing.startswith("slow"):
            await asyncio.wait_for(self.release.wait(), 5)
        if thing.startswith("decline"):
            return None
        if thing == "missing":
            raise NotFound("No such thing here.")
        if thing == "deadlock":
            raise DeadlockDetectedError("deadlock detected")
        if thing == "broken":
            raise RuntimeError("secret value 330106199001011234 in the message")
        self.finished.append(thing)
        token = request.header(b"authorization") or b""
        return FastAnswer(json.dumps({"id": thing, "by": "fast", "auth": token.decode()}).encode(),
                          [(b"content-type", b"application/json"), (b"etag", b'"v1"')])


def _app(things: Things) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        things.routed.append(thing_id)
        if thing_id.startswith("decline-missing"):
            raise NotFound("The route says no.")
        return {"id": thing_id, "by": "route"}

    # The kit's middleware, as create_service_app places it.
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestGuard, max_body=1024, spec=ServiceSpec(title="things", description="test"))
    route = next(r for r in app.routes if getattr(r, "path", "") == "/api/v1/things/{thing_id}")
    app.http_protocol = protocol_for(app, [FastRead("/api/v1/things/", route, things.fast)])  # type: ignore[attr-defined]
    return app


@dataclass
class Served:
    url: str
    app: FastAPI
    things: Things
    client: httpx.AsyncClient


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    things = Things()
    app = _app(things)
    async with serving(app, http=app.http_protocol, lifespan="off") as url, \
            httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield Served(url, app, things, client)


async def _raw(url: str, payload: bytes, *, until: bytes | None = None) -> bytes:
    """Send raw bytes; read until ``until`` has come (or the server closes)."""
    return await raw_http(url, payload, None if until is None else lambda data: until in data)


async def test_a_fast_read_is_answered_without_the_route(served: Served) -> None:
    r = await served.client.get("/api/v1/things/a1", headers={"Authorization": "Bearer t", "X-Request-Id": "req-fast-1"})
    assert r.status_code == 200
    assert r.json() == {"id": "a1", "by": "fast", "auth": "Bearer t"}
    assert r.headers["etag"] == '"v1"' and r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"] == "req-fast-1" and int(r.headers["content-length"]) == len(r.content)
    assert served.things.handled == ["a1"] and served.things.routed == []
    # A request id that is not plain is replaced, as the ASGI way does.
    r = await served.client.get("/api/v1/things/a2", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.status_code == 200 and r.headers["x-request-id"] != "bad id\twith spaces"
    assert len(r.headers["x-request-id"]) == 32


async def test_a_declined_read_goes_to_the_route_which_answers_as_always(served: Served) -> None:
    r = await served.client.get("/api/v1/things/decline-1?x=1", headers={"X-Request-Id": "req-declined"})
    assert r.status_code == 200 and r.json() == {"id": "decline-1", "by": "route"}
    assert r.headers["x-request-id"] == "req-declined"
    r = await served.client.get("/api/v1/things/decline-missing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "The route says no."
    assert served.things.handled == served.things.routed == ["decline-1", "decline-missing"]
    # The connection goes on serving after the ASGI way answered.
    r = await served.client.get("/api/v1/things/after")
    assert r.json()["by"] == "fast"


async def test_what_the_fast_way_does_not_take_goes_the_asgi_way(served: Served) -> None:
    # A body, another method, a percent-encoded path, a path outside the prefix.
    r = await served.client.request("GET", "/api/v1/things/b1", content=b"{}")
    assert r.json()["by"] == "route"
    assert (await served.client.post("/api/v1/things/b2")).status_code == 405
    assert (await served.client.get("/api/v1/things/b%33")).json() == {"id": "b3", "by": "route"}
    assert (await served.client.get("/api/v1/other")).status_code == 404
    assert served.things.handled == []


async def test_errors_are_problems_without_the_error_text(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    r = await served.client.get("/api/v1/things/missing", headers={"X-Request-Id": "req-missing"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "No such thing here." and r.headers["x-request-id"] == "req-missing"
    r = await served.client.get("/api/v1/things/deadlock")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["type"].endswith(":unavailable") and "nothing of it was applied" in r.json()["detail"]
    with caplog.at_level(logging.ERROR, logger="servicekit.errors"):
        r = await served.client.get("/api/v1/things/broken")
    assert r.status_code == 500 and r.json()["title"] == "Internal error"
    assert "330106199001011234" not in r.text
    assert [rec.exc_info[0] for rec in caplog.records if rec.exc_info] == [RuntimeError]
    assert served.things.routed == []  # nothing went twice
    assert (await served.client.get("/api/v1/things/fine")).status_code == 200


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    head = b"Host: t\r\n\r\n"
    payload = (b"GET /api/v1/things/slow-1 HTTP/1.1\r\n" + head
               + b"GET /api/v1/things/decline-2 HTTP/1.1\r\n" + head
               + b"GET /api/v1/things/slow-decline-3 HTTP/1.1\r\n" + head
               + b"GET /api/v1/things/c4 HTTP/1.1\r\n" + head)
    reading = asyncio.create_task(_raw(served.url, payload, until=b'"c4"'))
    await asyncio.sleep(0.2)
    assert not reading.done()  # the first answer waits for its handler, the others behind it
    served.things.release.set()
    data = await reading
    order = re.findall(rb'"id": ?"([^"]+)"', data)
    assert order == [b"slow-1", b"decline-2", b"slow-decline-3", b"c4"]
    assert data.count(b"HTTP/1.1 200 OK") == 4


async def test_http_1_0_and_connection_close_end_the_connection(served: Served) -> None:
    for request in (b"GET /api/v1/things/d1 HTTP/1.0\r\n\r\n",
                    b"GET /api/v1/things/d2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"):
        data = await _raw(served.url, request)  # read to the end: the server closes
        assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data.lower()
        assert data.endswith(b"}")


async def test_a_client_that_goes_away_does_not_stop_the_read(served: Served) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /api/v1/things/slow-gone HTTP/1.1\r\nHost: t\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.sleep(0.1)
    served.things.release.set()
    for _ in range(50):
        if served.things.finished:
            break
        await asyncio.sleep(0.02)
    assert served.things.finished == ["slow-gone"]  # e.g. its audit record is still written
    assert (await served.client.get("/api/v1/things/e2")).status_code == 200


async def test_a_graceful_shutdown_waits_for_a_read_in_flight() -> None:
    things = Things()
    app = _app(things)
    async with serving(app, http=app.http_protocol, lifespan="off") as url:
        reading = asyncio.create_task(_raw(url, b"GET /api/v1/things/slow-last HTTP/1.1\r\nHost: t\r\n\r\n", until=b"}"))
        await asyncio.sleep(0.2)
        # Leaving the block stops the server: it must wait for the read, which ends meanwhile.
        asyncio.get_running_loop().call_later(0.3, things.release.set)
    data = await reading
    assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data.lower()
    assert json.loads(data.partition(b"\r\n\r\n")[2]) == {"id": "slow-last", "by": "fast", "auth": ""}


async def test_the_access_line_names_the_route_not_the_id(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="servicekit.access"):
        await served.client.get("/api/v1/things/f1?secret=1")
        await served.client.get("/api/v1/things/missing")
    lines = [(r.path, r.route, r.status) for r in caplog.records if r.name == "servicekit.access"]  # type: ignore[attr-defined]
    assert lines == [("/api/v1/things/f1", "/api/v1/things/{thing_id}", 200),
                     ("/api/v1/things/missing", "/api/v1/things/{thing_id}", 404)]


@pytest.fixture
async def traced() -> AsyncIterator[tuple[Served, InMemorySpanExporter]]:
    things, spans = Things(), InMemorySpanExporter()
    app = _app(things)
    settings = ServiceSettings(service_name="testsvc", environment="test", otel_sample_ratio=0.0)
    app.state.telemetry = setup_telemetry(app, settings, exporter=spans, metric_exporter=CollectingMetricExporter())
    try:
        async with serving(app, http=app.http_protocol, lifespan="off") as url, \
                httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Served(url, app, things, client), spans
    finally:
        app.state.telemetry.shutdown()


async def _get(url: str, path: str, *headers: bytes) -> dict[str, str]:
    """A GET over a raw socket (httpx, instrumented by telemetry, would send its own traceparent)."""
    data = await _raw(url, b"GET %b HTTP/1.1\r\nHost: t\r\n%b\r\n" % (path.encode(), b"".join(h + b"\r\n" for h in headers)),
                      until=b"}")
    return json.loads(data.partition(b"\r\n\r\n")[2])


async def test_with_telemetry_every_read_is_fast_and_a_sampled_one_has_its_span(traced) -> None:
    served, spans = traced
    unsampled = f"traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-00".encode()
    assert (await _get(served.url, "/api/v1/things/g1", unsampled))["by"] == "fast"
    assert served.things.trace_ids == [int(TRACE_ID, 16)]  # log lines and audit records carry it
    # No traceparent and a ratio of 0: a new trace, not sampled, fast.
    assert (await _get(served.url, "/api/v1/things/g2"))["by"] == "fast"
    assert spans.get_finished_spans() == ()
    # Sampled by the caller: answered here too, its server span made and ended here.
    sampled = f"traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01".encode()
    assert (await _get(served.url, "/api/v1/things/g3", sampled))["by"] == "fast"
    [span] = spans.get_finished_spans()
    assert span.context.trace_id == int(TRACE_ID, 16) and span.parent.span_id == 0x00F067AA0BA902B7
    assert span.name == "GET /api/v1/things/{thing_id}" and span.kind is trace.SpanKind.SERVER
    assert span.attributes["http.route"] == "/api/v1/things/{thing_id}"
    assert span.attributes["http.response.status_code"] == 200 and span.attributes["url.path"] == "/api/v1/things/g3"
    assert served.things.trace_ids[-1] == int(TRACE_ID, 16)
    # A sampled read the handler declines: the route answers, under the same one span.
    assert (await _get(served.url, "/api/v1/things/decline-g4", sampled))["by"] == "route"
    assert len(spans.get_finished_spans()) == 2
    declined = spans.get_finished_spans()[-1]
    assert declined.name == "GET /api/v1/things/{thing_id}" and declined.attributes["url.path"].endswith("decline-g4")
    assert served.things.handled == ["g1", "g2", "g3", "decline-g4"] and served.things.routed == ["decline-g4"]
    metric = served.app.state.telemetry.durations.metric()
    counts = {(dict(p.attributes)["http.route"], dict(p.attributes)["http.response.status_code"]): p.count
              for p in metric.data.data_points}
    assert counts == {("/api/v1/things/{thing_id}", 200): 4}
    assert served.app.state.telemetry.durations.active == 0


async def test_a_sampled_read_without_a_parent_is_traced_on_the_trace_id_decided() -> None:
    things, spans = Things(), InMemorySpanExporter()
    app = _app(things)
    settings = ServiceSettings(service_name="testsvc", environment="test", otel_sample_ratio=1.0)
    app.state.telemetry = setup_telemetry(app, settings, exporter=spans, metric_exporter=CollectingMetricExporter())
    try:
        async with serving(app, http=app.http_protocol, lifespan="off") as url:
            assert (await _get(url, "/api/v1/things/h1"))["by"] == "fast"
            assert (await _get(url, "/api/v1/things/broken"))["title"] == "Internal error"
    finally:
        app.state.telemetry.shutdown()
    first, broken = spans.get_finished_spans()
    assert first.parent is None and first.context.trace_id == things.trace_ids[0]
    assert broken.status.status_code is trace.StatusCode.ERROR
    assert broken.attributes["http.response.status_code"] == 500
