"""Service-to-service calls: retries only where safe, a token on every call, clear timeouts."""

import httpx
import pytest
import stamina

from servicekit.http import ServiceClient, TokenProvider


@pytest.fixture(autouse=True)
def no_waiting():
    stamina.set_testing(True, attempts=4)
    yield
    stamina.set_testing(False)


def counting(responses):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        item = responses[min(len(calls) - 1, len(responses) - 1)]
        if isinstance(item, Exception):
            raise item
        return httpx.Response(item)

    return calls, httpx.MockTransport(handler)


async def token() -> str:
    return "t0k"


async def test_get_is_retried_on_503_and_connection_errors():
    calls, transport = counting([httpx.ConnectError("down"), 503, 200])
    client = ServiceClient("http://svc", token=token, transport=transport)
    r = await client.get("/x")
    assert r.status_code == 200 and len(calls) == 3
    assert calls[0].headers["authorization"] == "Bearer t0k"


async def test_post_without_key_is_not_retried():
    calls, transport = counting([503, 200])
    client = ServiceClient("http://svc", token=token, transport=transport)
    r = await client.post("/x", json={})
    assert r.status_code == 503 and len(calls) == 1


async def test_post_with_idempotency_key_is_retried():
    calls, transport = counting([502, 201])
    client = ServiceClient("http://svc", token=token, transport=transport)
    r = await client.post("/x", json={}, headers={"Idempotency-Key": "abc12345"})
    assert r.status_code == 201 and len(calls) == 2


async def test_client_errors_are_not_retried():
    calls, transport = counting([404])
    client = ServiceClient("http://svc", token=token, transport=transport)
    assert (await client.get("/x")).status_code == 404 and len(calls) == 1


async def test_gives_up_after_attempts():
    calls, transport = counting([503])
    client = ServiceClient("http://svc", token=token, transport=transport, attempts=3)
    assert (await client.get("/x")).status_code == 503
    assert len(calls) == 4  # stamina's testing mode caps attempts at what set_testing says


async def test_timeouts_are_explicit():
    client = ServiceClient("http://svc")
    assert client.http.timeout.connect == 2.0 and client.http.timeout.read == 10.0


async def test_token_provider_caches_and_refreshes_on_401():
    issued = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"token_endpoint": "http://issuer/token"})
        if request.url.path == "/token":
            issued.append(1)
            assert request.headers["authorization"].startswith("Basic ")
            return httpx.Response(200, json={"access_token": f"tok{len(issued)}", "expires_in": 3600})
        if request.headers.get("authorization") == "Bearer tok1":
            return httpx.Response(401)
        return httpx.Response(200, json={"ok": True})

    transport = httpx.MockTransport(handler)
    provider = TokenProvider("http://issuer", "svc-x", "secret", http=httpx.AsyncClient(transport=transport))
    assert await provider() == "tok1"
    assert await provider() == "tok1" and len(issued) == 1
    client = ServiceClient("http://svc", token=provider, transport=transport)
    r = await client.get("/x")
    assert r.status_code == 200 and len(issued) == 2
