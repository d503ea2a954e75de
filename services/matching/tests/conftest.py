"""Fixtures of the matching tests: a migrated database (PostgreSQL when DATABASE_URL is set,
SQLite otherwise), the service in-process on a small synthetic city, clients per role."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servicekit.testing import TestIdentity, migrated_database, running_service, settings_for_tests

from matching.app import MIGRATIONS, create_app
from matching.profile import load_profile
from matching.settings import MatchingSettings

from helpers import OBSERVED

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_settings(**overrides) -> MatchingSettings:
    return settings_for_tests(
        MatchingSettings, config_dir=ROOT / "config", areas_file=FIXTURES / "areas.yaml",
        sites_file=FIXTURES / "sites.yaml", auto_match_interval_seconds=0, consume_alerts=False, **overrides,
    )


@pytest.fixture(scope="session")
def identity() -> TestIdentity:
    return TestIdentity()


@pytest.fixture(scope="session")
def profile():
    return load_profile(ROOT / "config", areas_file=FIXTURES / "areas.yaml", sites_file=FIXTURES / "sites.yaml")


@pytest.fixture
def city_today(profile):
    """Today in the city's calendar (config/matching: the zone), as a worker there would enter it.
    Not the machine's date: from 16:00 to 24:00 UTC, Hangzhou is already a day ahead."""
    from datetime import UTC, datetime

    from matching.periods import local_date

    return local_date(profile.rules.zone, datetime.now(UTC))


@pytest.fixture(scope="session")
async def settings():
    async with migrated_database(make_settings(), MIGRATIONS) as ready:
        yield ready




class StatusRecorder:
    def __init__(self, app, routes=()) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen: list[int] = []

        async def recording_send(message) -> None:
            if message["type"] == "http.response.start":
                seen.append(message["status"])
            await send(message)

        probe = {"type": "http", "path": scope["path"], "method": scope["method"], "root_path": ""}
        await self.app(scope, receive, recording_send)
        for route in self.routes:
            if isinstance(route, APIRoute) and route.matches(probe)[0] is Match.FULL and seen:
                OBSERVED.add((scope["method"], route.path, seen[0]))
                break


def _flat(routes):
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers whole
        yield from _flat(included.routes) if included is not None else (route,)


def recording_app(*args, **kwargs):
    app = create_app(*args, **kwargs)
    app.add_middleware(StatusRecorder, routes=list(_flat(app.routes)))
    return app


@pytest.fixture(scope="session")
async def svc(settings, identity, profile):
    async with running_service(recording_app, settings, identity, profile=profile) as running:
        yield running
