"""Fixtures of the matching tests: a migrated database (PostgreSQL when DATABASE_URL is set,
SQLite otherwise), the service in-process on a small synthetic city, clients per role."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servicekit.testing import TestIdentity, migrated_database, running_service, settings_for_tests  # noqa: E402

from matching.app import MIGRATIONS, create_app  # noqa: E402
from matching.profile import load_profile  # noqa: E402
from matching.settings import MatchingSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_settings(**overrides) -> MatchingSettings:
    return settings_for_tests(
        MatchingSettings, config_dir=ROOT / "config", areas_file=FIXTURES / "areas.yaml",
        sites_file=FIXTURES / "sites.yaml", auto_match_delay_seconds=0, consume_alerts=False, **overrides,
    )


@pytest.fixture(scope="session")
def identity() -> TestIdentity:
    return TestIdentity()


@pytest.fixture(scope="session")
def profile():
    return load_profile(ROOT / "config", areas_file=FIXTURES / "areas.yaml", sites_file=FIXTURES / "sites.yaml")


@pytest.fixture(scope="session")
async def settings():
    async with migrated_database(make_settings(), MIGRATIONS) as ready:
        yield ready


@pytest.fixture(scope="session")
async def svc(settings, identity, profile):
    async with running_service(create_app, settings, identity, profile=profile) as running:
        yield running
