"""The matching service: its app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from servicekit.app import ServiceSpec, create_service_app
from matching import tables  # noqa: F401  (registers the tables with the metadata)
from matching.settings import MatchingSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def spec() -> ServiceSpec:
    return ServiceSpec(
        title="Matching",
        description="The service consortium (助联体) online: sites, partner organisations, offers, needs, matches, deliveries and points.",
        routers=[],
        migrations_dir=MIGRATIONS,
    )


def create_app(settings: MatchingSettings | None = None, **kw: Any) -> FastAPI:
    return create_service_app(settings or MatchingSettings(), spec(), **kw)
