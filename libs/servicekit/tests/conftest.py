import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kitapp.app import MIGRATIONS, KitSettings, create_app  # noqa: E402
from servicekit.testing import TestIdentity, migrated_database, running_service, settings_for_tests  # noqa: E402


@pytest.fixture(scope="session")
def identity() -> TestIdentity:
    return TestIdentity()


@pytest.fixture(scope="session")
async def kit_settings():
    async with migrated_database(settings_for_tests(KitSettings), MIGRATIONS) as settings:
        yield settings


@pytest.fixture(scope="session")
async def kit(kit_settings, identity):
    async with running_service(create_app, kit_settings, identity) as svc:
        yield svc
