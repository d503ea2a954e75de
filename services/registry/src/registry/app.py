"""The registry service: its app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from servicekit.app import ServiceSpec, create_service_app
from registry import tables  # noqa: F401  (registers the tables with the metadata)
from registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def spec() -> ServiceSpec:
    return ServiceSpec(
        title="Registry",
        description="The low-income population database (低收入人口库): households, members, areas, department feeds, surveys and declarations. The only service holding identifying personal data.",
        routers=[],
        migrations_dir=MIGRATIONS,
    )


def create_app(settings: RegistrySettings | None = None, **kw: Any) -> FastAPI:
    return create_service_app(settings or RegistrySettings(), spec(), **kw)
