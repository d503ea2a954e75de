"""Fixtures: fake upstream services (matching down) and a gateway in front of them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

# pytest's importlib mode names this file gateway.tests.conftest and registers the project folder
# gateway/ as a stand-in `gateway` namespace module, which hides the real package of that name.
# Put the real package in its place before anything imports from it.
if getattr(sys.modules.get("gateway"), "__file__", None) is None:
    sys.modules.pop("gateway", None)
    import gateway  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402
from gwtest import (
    SERVICES,
    RunningGateway,
    Upstream,
    free_port,
    gateway_settings,
    running_gateway,
    serving,
)  # noqa: E402


@pytest.fixture(scope="session")
async def upstreams() -> AsyncIterator[dict[str, Upstream]]:
    """registry, scoring and alerts up; matching's port is closed (a service that is down)."""
    fakes = {name: Upstream(name) for name in SERVICES[:3]}
    async with (
        serving(fakes["registry"].app()) as r,
        serving(fakes["scoring"].app()) as s,
        serving(fakes["alerts"].app()) as a,
    ):
        for fake, url in zip(fakes.values(), (r, s, a), strict=True):
            fake.url = url
        yield fakes


@pytest.fixture(scope="session", params=["fast-path", "asgi-only"])
async def gw(
    request: pytest.FixtureRequest,
    upstreams: dict[str, Upstream],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningGateway]:
    """The gateway under test, matching down, no rate limit, 64 KiB body limit.

    Every test using it runs twice: with the fast path on (as deployed; a token used before
    makes plain GETs take it) and with every request going the ASGI way.
    """
    urls = {name: fake.url for name, fake in upstreams.items()}
    urls["matching"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = gateway_settings(
        tmp_path_factory.mktemp("gw"), urls, fast_path_enabled=request.param == "fast-path"
    )
    async with running_gateway(settings) as running:
        yield running
