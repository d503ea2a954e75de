"""Fixtures: a migrated registry database per session (PostgreSQL when DATABASE_URL is set), the
running app with a token factory, and helpers to build households."""

from __future__ import annotations

import pytest

from registry.app import MIGRATIONS, create_app
from registry.settings import RegistrySettings
from servicekit.testing import TestIdentity, migrated_database, running_service, settings_for_tests


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
