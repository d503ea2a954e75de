"""Per-client rate limits: a token bucket per client, in process memory or shared in Redis.

With several gateway replicas the Redis bucket is the one that holds (one bucket per client
across replicas); the memory bucket is the embedded default. Both answer the same question.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until one request would be allowed again


ALLOW = Decision(True)


class RateLimiter(Protocol):
    rate: float
    burst: int

    async def hit(self, key: str) -> Decision: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Token buckets in a dict; fine for one replica (the embedded default)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def hit(self, key: str) -> Decision:
        return self.hit_now(key)

    def hit_now(self, key: str) -> Decision:
        """``hit`` without a coroutine: the bucket lives in this process."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens = float(self.burst)
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
        else:
            tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return ALLOW
        self._buckets[key] = (tokens, now)
        return Decision(False, (1.0 - tokens) / self.rate)

    def _evict(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket: forget those first.
        full = [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:  # a flood of distinct clients: drop the oldest half
            for k in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[k]

    async def close(self) -> None:
        self._buckets.clear()


# One round trip, atomic, and on Redis's clock so that replicas with skewed clocks agree.
# Floats go back as strings: Redis truncates Lua numbers to integers.
_TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(retry)}
"""


class RedisRateLimiter:
    """Token buckets in Redis, shared by every gateway replica."""

    def __init__(
        self, url: str, rate: float, burst: int, *, prefix: str = "zhongfu:gateway:rl:"
    ) -> None:
        from redis.asyncio import Redis

        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._redis.register_script(_TOKEN_BUCKET_LUA)
        self._last_warning = float("-inf")

    async def hit(self, key: str) -> Decision:
        # Keys are hashed: a subject or an address is an identifier, and Redis is not where
        # identifiers should be readable.
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        try:
            allowed, retry = await self._script(
                keys=[self.prefix + digest], args=[self.rate, self.burst]
            )
        except Exception as exc:  # noqa: BLE001 - any Redis failure
            # Fail open: a broken cache must not take the API down; say so, not per request.
            now = time.monotonic()
            if now - self._last_warning > 10.0:
                self._last_warning = now
                log.warning(
                    "rate limiter: Redis unavailable, allowing requests",
                    extra={"error": type(exc).__name__},
                )
            return ALLOW
        if int(allowed):
            return ALLOW
        return Decision(False, float(retry))

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(
    redis_url: str | None, rate: float, burst: int, *, prefix: str
) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, rate, burst, prefix=prefix)
    return MemoryRateLimiter(rate, burst)
