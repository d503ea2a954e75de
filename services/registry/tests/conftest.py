"""Fixtures: a migrated registry database per session (PostgreSQL when DATABASE_URL is set), the
running app with a token factory, and clients per role."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the factories module

from registry.app import MIGRATIONS, create_app
from registry.settings import RegistrySettings
from servicekit.testing import (
    OTHER_TOWNSHIP, TOWNSHIP, TestIdentity, migrated_database, running_service, settings_for_tests,
)


@pytest.fixture(scope="session")
def identity() -> TestIdentity:
    return TestIdentity()


@pytest.fixture(scope="session")
async def registry_settings():
    async with migrated_database(settings_for_tests(RegistrySettings), MIGRATIONS) as settings:
        yield settings


class StatusRecorder:
    """Wraps the app to remember every (method, path, status) the tests saw, so the OpenAPI
    test can check that each answered status is declared by its route."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: set[tuple[str, str, int]] = set()

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        async def recording(message):
            if message["type"] == "http.response.start":
                self.seen.add((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, recording)


@pytest.fixture(scope="session")
async def registry(registry_settings, identity):
    async with running_service(create_app, registry_settings, identity) as svc:
        svc.app = StatusRecorder(svc.app)
        yield svc
        undeclared = undeclared_statuses(svc.app)
        assert not undeclared, f"statuses answered but not declared in OpenAPI: {undeclared}"


def undeclared_statuses(recorder: StatusRecorder) -> list[tuple[str, str, int]]:
    from fastapi.routing import APIRoute
    from starlette.routing import Match

    spec = recorder.app.openapi()
    out = []
    for method, path, status in sorted(recorder.seen):
        for route in recorder.app.routes:
            if isinstance(route, APIRoute) and method in route.methods:
                match, _ = route.matches({"type": "http", "path": path, "method": method})
                if match is Match.FULL:
                    declared = spec["paths"][route.path_format][method.lower()]["responses"]
                    if str(status) not in declared:
                        out.append((method, route.path_format, status))
                    break
    return out


@pytest.fixture
async def worker(registry):
    async with registry.client("town_worker", area=TOWNSHIP, subject="worker-1") as c:
        yield c


@pytest.fixture
async def other_worker(registry):
    async with registry.client("town_worker", area=OTHER_TOWNSHIP, subject="worker-2") as c:
        yield c
