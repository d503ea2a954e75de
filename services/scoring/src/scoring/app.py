"""The scoring service: its app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from servicekit.app import ServiceSpec, create_service_app
from scoring import tables  # noqa: F401  (registers the tables with the metadata)
from scoring.settings import ScoringSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def spec() -> ServiceSpec:
    return ServiceSpec(
        title="Scoring",
        description="The resilience score (抗风险能力赋分), family portrait (家庭画像) and assistance suggestions (帮扶建议) of every household.",
        routers=[],
        migrations_dir=MIGRATIONS,
    )


def create_app(settings: ScoringSettings | None = None, **kw: Any) -> FastAPI:
    return create_service_app(settings or ScoringSettings(), spec(), **kw)
