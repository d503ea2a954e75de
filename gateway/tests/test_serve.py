"""`python -m gateway serve` as a real process: starts, proxies, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx
import pytest
from gwtest import REPO, free_port


@pytest.mark.slow
async def test_sigterm_lets_in_flight_requests_finish(tmp_path, upstreams):
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "VAR_DIR": str(tmp_path),
        "REGISTRY_URL": upstreams["registry"].url,
        "DEMO_ACCOUNTS_FILE": str(REPO / "config" / "demo-accounts.yaml"),
        "ROUTE_TABLE_FILE": str(REPO / "config" / "routes.yaml"),
        "UPSTREAM_READ_TIMEOUT": "10",
    }
    for name in ("OIDC_ISSUER", "REDIS_URL"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=15) as client:
            for _ in range(300):
                try:
                    if (await client.get("/livez")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the gateway did not start")
            token = (
                await client.post(
                    "/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": "auditor",
                        "client_secret": "demo-auditor",
                    },
                )
            ).json()["access_token"]
            slow = asyncio.create_task(
                client.get(
                    "/api/v1/households/slow?seconds=1.5",
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status_code == 200 and response.json() == {"status": "late"}
        await asyncio.wait_for(process.wait(), 15)
        stderr = (await process.stderr.read()).decode()
        assert "Application shutdown complete" in stderr
        assert process.returncode in (0, -signal.SIGTERM)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_what_the_gateway_keeps_is_out_of_the_collectors_scans(gw):
    # Frozen at the end of startup: a full collection would otherwise walk ~110,000 objects,
    # every request waiting.
    import gc

    kept = (gw.app.proxy, gw.app.pools, gw.app.verifier)
    assert not any(any(o is k for k in kept) for o in gc.get_objects())
