"""Rate limits per client: the token bucket in memory and in Redis, and the 429 at the gateway."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from gateway.ratelimit import MemoryRateLimiter, RedisRateLimiter
from gwtest import assert_problem, gateway_settings, running_gateway

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


async def test_memory_bucket_allows_the_burst_then_refills():
    now = [100.0]
    limiter = MemoryRateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [(await limiter.hit("a")).allowed for _ in range(4)] == [True, True, True, False]
    denied = await limiter.hit("a")
    assert not denied.allowed and denied.retry_after == pytest.approx(0.5)
    assert (await limiter.hit("b")).allowed  # another client has its own bucket
    now[0] += 0.5
    assert (await limiter.hit("a")).allowed
    assert not (await limiter.hit("a")).allowed


async def test_memory_bucket_stays_bounded():
    now = [0.0]
    limiter = MemoryRateLimiter(rate=1.0, burst=1, max_keys=100, clock=lambda: now[0])
    for i in range(1000):
        now[0] += 0.001
        await limiter.hit(f"client-{i}")
    assert len(limiter._buckets) <= 100


@pytest.fixture
async def redis_limiter():
    limiter = RedisRateLimiter(
        REDIS_URL, rate=2.0, burst=3, prefix=f"test:gateway:{uuid.uuid4().hex}:"
    )
    try:
        await limiter._redis.ping()
    except Exception:  # noqa: BLE001
        await limiter.close()
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield limiter
    keys = [k async for k in limiter._redis.scan_iter(match=limiter.prefix + "*")]
    if keys:
        await limiter._redis.delete(*keys)
    await limiter.close()


@pytest.mark.redis
async def test_redis_bucket_allows_the_burst_then_refills(redis_limiter):
    results = [await redis_limiter.hit("a") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert 0 < results[-1].retry_after <= 0.5
    assert (await redis_limiter.hit("b")).allowed
    await asyncio.sleep(0.6)
    assert (await redis_limiter.hit("a")).allowed
    # Keys are hashed and expire once the bucket would be full again.
    keys = [k async for k in redis_limiter._redis.scan_iter(match=redis_limiter.prefix + "*")]
    prefix = redis_limiter.prefix.encode()
    assert keys and all(k.startswith(prefix) and len(k) == len(prefix) + 32 for k in keys)
    ttls = [await redis_limiter._redis.pttl(k) for k in keys]
    assert all(0 < ttl <= 3000 for ttl in ttls)


@pytest.mark.redis
async def test_redis_bucket_is_atomic_under_concurrency(redis_limiter):
    # Refilling slowly enough that no token comes back while the 20 calls are in flight, even
    # on a busy machine: exactly the burst is allowed.
    redis_limiter.rate = 0.001
    results = await asyncio.gather(*(redis_limiter.hit("same") for _ in range(20)))
    assert sum(r.allowed for r in results) == 3


async def test_redis_down_fails_open():
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", rate=1.0, burst=1)
    try:
        assert all([(await limiter.hit("x")).allowed for _ in range(3)])
    finally:
        await limiter.close()


async def _hammer(gw, n: int, **headers: str) -> list:
    return [await gw.client.get("/api/v1/households", headers=headers) for _ in range(n)]


async def _check_gateway_limits(settings) -> int:
    """The limits hold; returns how many answers the fast path gave (buckets in memory only)."""
    async with running_gateway(settings) as gw:
        town = gw.auth("town-worker")
        responses = await _hammer(gw, 4, **town)
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        body = assert_problem(responses[-1], 429)
        assert int(responses[-1].headers["retry-after"]) >= 1
        assert "town-worker" not in body["detail"]
        # Another subject is not held back by the first one.
        assert (
            await gw.client.get("/api/v1/households", headers=gw.auth("village-worker"))
        ).status_code == 200
        # Without a token the client address is the key, and 401s count against it.
        anonymous = await _hammer(gw, 6)
        assert {r.status_code for r in anonymous} == {401, 429}
        return gw.app.fast_path.served


async def test_gateway_rate_limit_in_memory(tmp_path, upstreams):
    settings = gateway_settings(
        tmp_path,
        {"registry": upstreams["registry"].url},
        rate_limit_enabled=True,
        rate_limit_per_second=0.2,
        rate_limit_burst=3,
    )
    # A token seen before and buckets in this process: answered without an ASGI task, and
    # limited all the same.
    assert await _check_gateway_limits(settings) >= 1


@pytest.mark.redis
async def test_gateway_rate_limit_in_redis(tmp_path, upstreams, redis_limiter):
    settings = gateway_settings(
        tmp_path,
        {"registry": upstreams["registry"].url},
        rate_limit_enabled=True,
        rate_limit_per_second=0.2,
        rate_limit_burst=3,
        redis_url=REDIS_URL,
        rate_limit_key_prefix=redis_limiter.prefix,
    )
    await _check_gateway_limits(settings)
    assert [k async for k in redis_limiter._redis.scan_iter(match=redis_limiter.prefix + "*")]


async def test_token_endpoint_is_limited_per_address(tmp_path):
    settings = gateway_settings(
        tmp_path, {}, rate_limit_enabled=True, rate_limit_per_second=0.1, rate_limit_burst=2
    )
    async with running_gateway(settings) as gw:
        form = {
            "grant_type": "client_credentials",
            "client_id": "town-worker",
            "client_secret": "guess",
        }
        statuses = [(await gw.client.post("/oauth/token", data=form)).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        response = await gw.client.post("/oauth/token", data=form)
        assert_problem(response, 429)
        assert int(response.headers["retry-after"]) >= 1
