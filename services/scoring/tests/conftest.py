"""Fixtures shared by the scoring tests: the city profile, the default model, synthetic views."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from scoring.rules.kernel import Kernel
from scoring.rules.loader import load_context, load_default_model, read_model_document
from scoring.rules.model import Model
from scoring.rules.validation import RulesContext

CONFIG = Path(__file__).resolve().parents[3] / "config"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scoring_fakes: the fake registry and friends


@pytest.fixture(scope="session")
def config_dir() -> Path:
    return CONFIG


@pytest.fixture(scope="session")
def ctx() -> RulesContext:
    return load_context(CONFIG)


@pytest.fixture(scope="session")
def model(ctx: RulesContext) -> Model:
    return load_default_model(CONFIG, ctx)[0]


@pytest.fixture(scope="session")
def kernel(model: Model, ctx: RulesContext) -> Kernel:
    return Kernel(model, ctx.view)


@pytest.fixture
def document() -> dict:
    """A fresh copy of the default model document, to break in a test."""
    return copy.deepcopy(read_model_document(CONFIG / "scoring")[0])


# ---- the service, on a migrated database ---------------------------------------------------

from servicekit.testing import TestIdentity, migrated_database, running_service, settings_for_tests  # noqa: E402

from scoring.app import MIGRATIONS, create_app  # noqa: E402
from scoring.settings import ScoringSettings  # noqa: E402


@pytest.fixture(scope="session")
def identity() -> TestIdentity:
    return TestIdentity()


@pytest.fixture(scope="session")
async def scoring_settings():
    base = settings_for_tests(ScoringSettings, config_dir=CONFIG, consume_registry=False, copy_threshold=50,
                              rescore_chunk_size=300)
    async with migrated_database(base, MIGRATIONS) as settings:
        yield settings


@pytest.fixture(scope="session")
async def svc(scoring_settings, identity):
    async with running_service(create_app, scoring_settings, identity) as service:
        yield service


@pytest.fixture(scope="module")
async def lab(identity, config_dir):
    """A service of the test module's own (``scoring_fakes.service_lab``), for tests that change
    the model or rescore everyone."""
    from scoring_fakes import service_lab

    async with service_lab(identity, config_dir) as service:
        yield service


@pytest.fixture(scope="module")
async def city(lab, ctx):
    """200 households in the module's own service."""
    from scoring_fakes import load_households

    return await load_households(lab, ctx, 200, seed=61)
