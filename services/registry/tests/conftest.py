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


@pytest.fixture(scope="session")
async def registry(registry_settings, identity):
    async with running_service(create_app, registry_settings, identity) as svc:
        yield svc


@pytest.fixture
async def worker(registry):
    async with registry.client("town_worker", area=TOWNSHIP, subject="worker-1") as c:
        yield c


@pytest.fixture
async def other_worker(registry):
    async with registry.client("town_worker", area=OTHER_TOWNSHIP, subject="worker-2") as c:
        yield c
