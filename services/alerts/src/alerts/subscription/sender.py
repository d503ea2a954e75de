"""One signed webhook request (Standard Webhooks): resolve, check, connect to the checked address,
never follow a redirect. Shared by the dispatcher and the ping endpoint."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from alerts.subscription.addresses import IP, AddressGuard, AddressRefused, Target

USER_AGENT = "zhongfu-alerts-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int | None = None
    error: str | None = None  # a short code, never a response body

    @property
    def gone(self) -> bool:
        return self.status == 410


def body_of(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def signature(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets)


class Sender:
    def __init__(self, guard: AddressGuard, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.guard = guard
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,  # a redirect could point anywhere, including inside
            transport=transport,
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=256),
            trust_env=False,  # no proxy from the environment: we connect to the checked address
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def resolve(self, url: str) -> tuple[Target, list[IP]] | Attempt:
        try:
            return await self.guard.vet(url)
        except AddressRefused as refused:
            return Attempt(ok=False, error=refused.code)

    async def send(self, target: Target, ips: list[IP], msg_id: str, payload: dict, secrets: list[str]) -> Attempt:
        body = body_of(payload)
        timestamp = int(time.time())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secrets, msg_id, timestamp, body),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            response = await self.http.post(target.url_for(ips[0]), content=body.encode(), headers=headers, extensions=extensions)
        except httpx.TimeoutException:
            return Attempt(ok=False, error="timeout")
        except httpx.HTTPError as exc:
            return Attempt(ok=False, error=type(exc).__name__[:64])
        if 200 <= response.status_code < 300:
            return Attempt(ok=True, status=response.status_code)
        if 300 <= response.status_code < 400:
            return Attempt(ok=False, status=response.status_code, error="redirect_not_followed")
        return Attempt(ok=False, status=response.status_code, error=f"http_{response.status_code}")
