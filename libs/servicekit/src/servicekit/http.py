"""Service-to-service HTTP: explicit timeouts, a service token, retries only where safe.

A calling service builds its typed client on ``ServiceClient``. Retries (with full jitter, by
stamina) happen only for safe methods or requests made idempotent by an ``Idempotency-Key``, and
only on connection errors and 502/503/504. The trace context travels in ``traceparent`` through
the httpx instrumentation set up by ``servicekit.telemetry``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import stamina

from servicekit.settings import ServiceSettings

RETRYABLE_STATUS = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


class UpstreamRetryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"upstream answered {response.status_code}")
        self.response = response


class TokenProvider:
    """Client-credentials tokens for this service, cached until shortly before they expire."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, *, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._http = http
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TokenProvider | None:
        if not settings.service_client_id or settings.service_client_secret is None:
            return None
        return cls(settings.issuer, settings.service_client_id, settings.service_client_secret.get_secret_value())

    async def __call__(self) -> str:
        async with self._lock:
            if self._token and time.time() < self._expires - 60:
                return self._token
            client = self._http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
            try:
                disco = await client.get(f"{self.issuer}/.well-known/openid-configuration")
                disco.raise_for_status()
                response = await client.post(
                    disco.json()["token_endpoint"],
                    data={"grant_type": "client_credentials"},
                    auth=(self.client_id, self._secret),
                )
                response.raise_for_status()
                body = response.json()
            finally:
                if self._http is None:
                    await client.aclose()
            self._token = body["access_token"]
            self._expires = time.time() + float(body.get("expires_in", 300))
            return self._token

    def invalidate(self) -> None:
        self._token = None


TokenSource = Callable[[], Awaitable[str]]


class ServiceClient:
    """Base of every typed client for another service."""

    def __init__(
        self,
        base_url: str,
        *,
        token: TokenSource | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        attempts: int = 4,
    ) -> None:
        self._token = token
        self._attempts = attempts
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        timeout: httpx.Timeout | float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        method = method.upper()
        headers = dict(kwargs.pop("headers", None) or {})
        retry = idempotent if idempotent is not None else (method in SAFE_METHODS or "Idempotency-Key" in headers)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}

        async def once() -> httpx.Response:
            if self._token is not None:
                headers["Authorization"] = f"Bearer {await self._token()}"
            response = await self.http.request(method, path, headers=headers, **kwargs, **extra)
            if response.status_code == 401 and isinstance(self._token, TokenProvider):
                self._token.invalidate()  # a rotated key or an expired token: fetch a new one once
                headers["Authorization"] = f"Bearer {await self._token()}"
                response = await self.http.request(method, path, headers=headers, **kwargs, **extra)
            if retry and response.status_code in RETRYABLE_STATUS:
                raise UpstreamRetryable(response)
            return response

        if not retry:
            return await once()
        try:
            async for attempt in stamina.retry_context(
                on=(httpx.TransportError, UpstreamRetryable),
                attempts=self._attempts,
                wait_initial=0.1,
                wait_max=2.0,
                wait_jitter=0.5,
            ):
                with attempt:
                    return await once()
        except UpstreamRetryable as exc:
            return exc.response
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)
