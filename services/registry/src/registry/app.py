"""The registry service: its app factory."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from servicekit.app import ServiceSpec, create_service_app
from registry import tables  # noqa: F401  (registers the tables with the metadata)
from registry.areas.endpoints import router as areas_router
from registry.audit.endpoints import router as audit_router
from registry.declarations.endpoints import router as declarations_router
from registry.feeds.endpoints import batch_router as feed_batches_router
from registry.feeds.endpoints import router as feeds_router
from registry.households.endpoints import FAST_READ
from registry.households.endpoints import router as households_router
from registry.leads.endpoints import router as leads_router
from registry.members.endpoints import router as members_router
from registry.reconciliation.endpoints import router as reconciliation_router
from registry.snapshot.endpoints import router as snapshot_router
from registry.profile import CityProfile, load_profile
from registry.feeds.service import FORMATS
from registry.settings import RegistrySettings
from registry.vault import Vault

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BATCHES = "/api/v1/feeds/batches"


def spec() -> ServiceSpec:
    return ServiceSpec(
        title="Registry",
        description="The low-income population database (低收入人口库): households, members, areas, department feeds, surveys and declarations. The only service holding identifying personal data.",
        routers=[areas_router, households_router, members_router, reconciliation_router, audit_router,
                 feeds_router, feed_batches_router, leads_router, declarations_router, snapshot_router],
        migrations_dir=MIGRATIONS,
        # Department batches: CSV or JSON Lines, streamed past the ordinary body limit (the
        # registry bounds them itself with settings.max_batch_bytes).
        raw_body_paths={BATCHES: tuple(FORMATS)},
        large_body_paths=(BATCHES,),
        fast_reads=[FAST_READ],  # an official's household read by id, the commonest call
        openapi_tags=[
            {"name": "areas", "description": "The area tree of the city profile (区县 / 镇街 / 村社)"},
            {"name": "households", "description": "Households of the low-income population database (低收入人口库)"},
            {"name": "members", "description": "Members, masked by default; unmasked reads are audited"},
            {"name": "reconciliation", "description": "City-level queue for a person claimed across jurisdictions"},
            {"name": "audit", "description": "The append-only audit log of personal data"},
            {"name": "feeds", "description": "Department data sharing (数据共享): batches, records, reports, health"},
            {"name": "declarations", "description": "Citizens' own declarations (主动申报) and their review"},
            {"name": "leads", "description": "Records about people not yet registered, for proactive discovery (主动发现)"},
        ],
    )


def create_app(settings: RegistrySettings | None = None, *, profile: CityProfile | None = None, **kw: Any) -> FastAPI:
    settings = settings or RegistrySettings()
    # The profile is loaded before anything else, so a bad config file stops the process at once.
    profile = profile or load_profile(settings.config_dir)
    app = create_service_app(settings, spec(), **kw)
    app.state.profile = profile
    app.state.vault = Vault.from_settings(settings)
    # The profile (3,222 villages, the catalogue) and the app live as long as the process: keep
    # them out of the garbage collector's scans, which a department batch, allocating millions
    # of small objects, otherwise pays for again and again (about 15% of its CPU).
    gc.freeze()
    return app
