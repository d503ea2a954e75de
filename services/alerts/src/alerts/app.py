"""The alerts service: its app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from servicekit.app import ServiceSpec, create_service_app
from alerts import tables  # noqa: F401  (registers the tables with the metadata)
from alerts.settings import AlertsSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def spec() -> ServiceSpec:
    return ServiceSpec(
        title="Alerts",
        description="Alerts raised when something happens to a family, dispatched to the township, followed to their deadline and referral.",
        routers=[],
        migrations_dir=MIGRATIONS,
    )


def create_app(settings: AlertsSettings | None = None, **kw: Any) -> FastAPI:
    return create_service_app(settings or AlertsSettings(), spec(), **kw)
