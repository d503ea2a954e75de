"""Fixtures shared by the scoring tests: the city profile, the default model, synthetic views."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from scoring.rules.kernel import Kernel
from scoring.rules.loader import load_context, load_default_model, read_model_document
from scoring.rules.model import Model
from scoring.rules.validation import RulesContext

CONFIG = Path(__file__).resolve().parents[3] / "config"


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
