"""The fast path (gateway/fastpath.py): plain proxied GETs answered in protocol callbacks.

Every proxy test runs in both modes (conftest's ``gw``); these are the cases that only the fast
path has: which requests it takes, pipelining, stale pooled connections, clients that go away,
large and chunked answers, rate limits and connection handling without an ASGI task.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from gwtest import assert_problem, gateway_settings, running_gateway
from servicekit.testing import raw_http


async def _raw(url: str, payload: bytes, *, expect_close: bool = False, reads: int = 1) -> bytes:
    """Send raw bytes to the gateway; return what came back until ``reads`` answers or EOF."""
    if expect_close:
        return await raw_http(url, payload)
    return await raw_http(url, payload, lambda data: data.count(b"HTTP/1.1 ") >= reads and _complete(data, reads))


def _complete(data: bytes, answers: int) -> bool:
    """Whether ``data`` holds ``answers`` whole answers framed with Content-Length."""
    rest = data
    for _ in range(answers):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


@pytest.fixture
async def fast_gw(tmp_path, upstreams) -> AsyncIterator:
    settings = gateway_settings(tmp_path, {name: f.url for name, f in upstreams.items()})
    async with running_gateway(settings) as gw:
        # The first call verifies the token and opens the pooled connection.
        assert (await gw.client.get("/api/v1/households/warm", headers=gw.auth())).status_code == 200
        yield gw


async def test_a_repeated_get_takes_the_fast_path_and_forwards_the_same(fast_gw):
    headers = {**fast_gw.auth("fast-subject"), "X-Request-Id": "fast-path-test-0001"}
    first = await fast_gw.client.get("/api/v1/households/abc?page=2", headers=headers)
    served = fast_gw.app.fast_path.served
    second = await fast_gw.client.get("/api/v1/households/abc?page=2", headers=headers)
    assert fast_gw.app.fast_path.served == served + 1
    assert first.status_code == second.status_code == 200
    assert second.headers["x-request-id"] == "fast-path-test-0001"
    a, b = first.json(), second.json()
    for record in (a, b):
        record.pop("client_port")
    assert a == b  # the service saw the same request, headers included


async def test_pipelined_requests_are_answered_in_order(fast_gw):
    token = fast_gw.auth()["Authorization"].encode()
    one = b"GET /api/v1/households/one HTTP/1.1\r\nhost: x\r\nauthorization: " + token + b"\r\n\r\n"
    two = b"GET /api/v1/households/two HTTP/1.1\r\nhost: x\r\nauthorization: " + token + b"\r\n\r\n"
    post = (
        b"POST /api/v1/households/three HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
        b"content-type: application/json\r\nauthorization: " + token + b"\r\n\r\n{}"
    )
    data = await _raw(fast_gw.url, one + two + post + one, reads=4)
    bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in _split(data)]
    assert [b["path"] for b in bodies] == [
        "/api/v1/households/one",
        "/api/v1/households/two",
        "/api/v1/households/three",
        "/api/v1/households/one",
    ]
    assert bodies[2]["method"] == "POST"


def _split(data: bytes) -> list[bytes]:
    answers = []
    rest = data
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        answers.append(head + b"\r\n\r\n" + rest[:length])
        rest = rest[length:]
    return answers


async def test_connection_close_and_http_1_0_are_honoured(fast_gw):
    token = fast_gw.auth()["Authorization"].encode()
    served = fast_gw.app.fast_path.served
    close = (
        b"GET /api/v1/households/c HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        b"authorization: " + token + b"\r\n\r\n"
    )
    data = await _raw(fast_gw.url, close, expect_close=True)
    assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data.lower()
    old = b"GET /api/v1/households/d HTTP/1.0\r\nauthorization: " + token + b"\r\n\r\n"
    data = await _raw(fast_gw.url, old, expect_close=True)
    assert data.startswith(b"HTTP/1.1 200") and b'"/api/v1/households/d"' in data
    assert fast_gw.app.fast_path.served == served + 2


async def test_a_get_with_a_body_goes_the_asgi_way_and_keeps_its_body(fast_gw):
    served = fast_gw.app.fast_path.served
    response = await fast_gw.client.request(
        "GET", "/api/v1/households/b", content=b"12345", headers=fast_gw.auth()
    )
    assert response.status_code == 200 and response.json()["body_size"] == 5
    assert fast_gw.app.fast_path.served == served


async def test_chunked_and_large_answers_stream_through(fast_gw, upstreams):
    served = fast_gw.app.fast_path.served
    for size in (10, 3 * 1024 * 1024 + 7):
        response = await fast_gw.client.get(
            f"/api/v1/feeds/download?size={size}", headers=fast_gw.auth()
        )
        assert response.status_code == 200 and len(response.content) == size
    assert fast_gw.app.fast_path.served == served + 2


async def test_a_client_leaving_mid_answer_does_not_disturb_the_next(fast_gw, upstreams):
    upstreams["registry"].download_go_on.clear()
    url = fast_gw.url
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    token = fast_gw.auth()["Authorization"].encode()
    writer.write(
        b"GET /api/v1/feeds/download?size=1000000&gate=true HTTP/1.1\r\nhost: x\r\n"
        b"authorization: " + token + b"\r\n\r\n"
    )
    await writer.drain()
    assert (await asyncio.wait_for(reader.read(100), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    upstreams["registry"].download_go_on.set()
    await asyncio.sleep(0.1)
    for _ in range(3):
        response = await fast_gw.client.get("/api/v1/households/after", headers=fast_gw.auth())
        assert response.status_code == 200


async def test_slow_service_is_a_504_problem_from_the_fast_path(fast_gw):
    served = fast_gw.app.fast_path.served
    response = await fast_gw.client.get(
        "/api/v1/households/slow?seconds=2", headers=fast_gw.auth()
    )
    assert_problem(response, 504)
    assert fast_gw.app.fast_path.served == served + 1
    # The connection that timed out is not reused: the next call gets a fresh one and works.
    assert (await fast_gw.client.get("/api/v1/households/x", headers=fast_gw.auth())).status_code == 200


@asynccontextmanager
async def _closing_upstream() -> AsyncIterator[tuple[str, list[int]]]:
    """A service that answers the first request on a connection and drops the connection at
    the second, without answering: the race of a keep-alive timeout, made certain."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                if answered:
                    return  # the second request on this connection: drop it
                body = b'{"ok": true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%b" % (len(body), body)
                )
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", connections


async def test_a_pooled_connection_dropped_by_the_service_is_retried_once(tmp_path):
    async with _closing_upstream() as (url, connections):
        settings = gateway_settings(tmp_path, {"registry": url})
        async with running_gateway(settings) as gw:
            for _ in range(4):
                response = await gw.client.get("/api/v1/households/h", headers=gw.auth())
                assert response.status_code == 200 and response.json() == {"ok": True}
            assert gw.app.fast_path.served >= 2
            # Each reuse met a dropped connection and went again on a new one.
            assert len(connections) >= 4


async def test_cors_requests_go_the_asgi_way(tmp_path, upstreams):
    settings = gateway_settings(
        tmp_path,
        {"registry": upstreams["registry"].url},
        cors_origins=["https://app.example"],
    )
    async with running_gateway(settings) as gw:
        headers = {**gw.auth(), "Origin": "https://app.example"}
        for _ in range(2):
            response = await gw.client.get("/api/v1/households/o", headers=headers)
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert gw.app.fast_path.served == 0


async def test_upstream_answer_headers_match_the_asgi_path(tmp_path, upstreams):
    """Hop-by-hop headers are dropped and the date is set the same way on both paths."""
    answers = {}
    for mode in (True, False):
        settings = gateway_settings(
            tmp_path / str(mode), {"registry": upstreams["registry"].url}, fast_path_enabled=mode
        )
        (tmp_path / str(mode)).mkdir()
        async with running_gateway(settings) as gw:
            for _ in range(2):
                response = await gw.client.get("/api/v1/households/hop", headers=gw.auth())
            answers[mode] = sorted(
                k for k in response.headers if k not in ("x-request-id",)
            )
            if mode:
                assert gw.app.fast_path.served >= 1
    assert answers[True] == answers[False]
