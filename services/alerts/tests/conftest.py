"""Fixtures: one migrated database per session (PostgreSQL when DATABASE_URL is set, SQLite
otherwise), the service in-process, a fake scoring feed and the consumer that follows it."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alerts.app import MIGRATIONS, create_app  # noqa: E402
from alerts.raising.consumer import ScoringClient, make_consumer  # noqa: E402
from alerts.settings import AlertsSettings  # noqa: E402
from servicekit.testing import TestIdentity, migrated_database, running_service, settings_for_tests  # noqa: E402

from fakes import FakeScoring  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def test_settings(**overrides) -> AlertsSettings:
    return settings_for_tests(
        AlertsSettings, config_dir=REPO / "config", run_sweeper=False, run_dispatcher=False,
        consume_scoring=False, **overrides,
    )


@pytest.fixture(scope="session")
def identity() -> TestIdentity:
    return TestIdentity()


@pytest.fixture(scope="session")
async def alerts_settings():
    async with migrated_database(test_settings(webhook_test_allow_networks=["127.0.0.1/32"]), MIGRATIONS) as settings:
        yield settings


@pytest.fixture(scope="session")
async def svc(alerts_settings, identity):
    async with running_service(create_app, alerts_settings, identity) as running:
        yield running


@pytest.fixture(scope="session")
def scoring() -> FakeScoring:
    return FakeScoring()


@pytest.fixture(scope="session")
async def consumer(svc, scoring, identity):
    client = ScoringClient("http://scoring", token=identity.token_source, transport=httpx.ASGITransport(app=scoring.app))
    c = make_consumer(svc.app, client=client)
    yield c
    await client.aclose()


@pytest.fixture
async def feed(consumer, scoring):
    """Publish assessments on the fake scoring feed and let the consumer apply them."""

    class Feed:
        async def publish(self, *datas, event_ids=None):
            events = [scoring.add(d, event_id=(event_ids or [None] * len(datas))[i]) for i, d in enumerate(datas)]
            while await consumer.step() > 0:
                pass
            return events

    return Feed()
