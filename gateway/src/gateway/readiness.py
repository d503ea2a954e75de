"""Readiness of the suite as the gateway sees it: each service's /readyz, asked concurrently."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


class Readiness:
    """Asks every service's /readyz at once; says whether all are ready, and how each is."""

    def __init__(
        self, session: aiohttp.ClientSession, upstreams: dict[str, str], timeout: float
    ) -> None:
        self.session = session
        self.upstreams = upstreams
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _probe(self, url: str) -> dict[str, Any]:
        try:
            async with self.session.get(
                f"{url}/readyz", timeout=self.timeout, allow_redirects=False
            ) as response:
                await response.read()
                if response.status == 200:
                    return {"status": "ready"}
                return {"status": "not_ready", "http_status": response.status}
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return {"status": "timeout"}
        except aiohttp.ClientError:
            return {"status": "unreachable"}

    async def check(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        names = list(self.upstreams)
        results = await asyncio.gather(*(self._probe(self.upstreams[n]) for n in names))
        services = dict(zip(names, results, strict=True))
        return all(r["status"] == "ready" for r in results), services
