"""The matching service: its app factory, its consumer of the alerts feed and its engine."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from servicekit.app import ServiceSpec, create_service_app
from servicekit.crypto import BlindIndex, dev_keys, load_key
from servicekit.db import unit_of_work

from matching import tables  # noqa: F401  (registers the tables with the metadata)
from matching.catalogue.endpoints import router as catalogue_router
from matching.engine.schedule import matching_job
from matching.matches.endpoints import router as matches_router
from matching.matches.runs import reads as runs_reads_router
from matching.matches.runs import router as runs_router
from matching.needs.endpoints import router as needs_router
from matching.offers.endpoints import router as offers_router
from matching.openapi import complete as complete_openapi
from matching.offers.hsds_endpoints import router as hsds_router
from matching.organisations.endpoints import router as organisations_router
from matching.points.endpoints import router as points_router
from matching.profile import Profile, load_profile
from matching.referrals.consumer import make_consumer
from matching.seed import seed_demo
from matching.settings import MatchingSettings
from matching.statistics.endpoints import matches_router as match_statistics_router
from matching.statistics.endpoints import needs_router as need_statistics_router
from matching.statistics.endpoints import points_router as points_statistics_router
from matching.sites import service as sites
from matching.sites.endpoints import router as sites_router

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TAGS = [
    {"name": "sites", "description": "The consortium's sites (助联体): district centres, township stations, village points"},
    {"name": "catalogue", "description": "The 31 services in 9 categories (9大类31项帮扶服务)"},
    {"name": "organisations", "description": "Partner organisations: apply, approval, suspension (入驻助联体)"},
    {"name": "offers", "description": "Offers (帮扶项目): draft, published, paused, closed; HSDS export and import"},
    {"name": "needs", "description": "Needs (帮扶需求) from referrals, visits and citizens' micro-wishes (微心愿)"},
    {"name": "matches", "description": "Matches: proposed, accepted or declined, delivered, feedback, revoked; runs"},
    {"name": "points", "description": "春风点数: accounts, allowances and rewards, redemptions at 幸福超市, statements"},
]


async def _seed(app: FastAPI) -> None:
    async with unit_of_work(app.state.db) as session:
        added = await sites.seed_from_profile(session, app.state.profile)
    if added:
        log.info("added %d sites from the city profile", added)
    settings: MatchingSettings = app.state.settings
    if settings.seeds_demo:
        await seed_demo(app.state.db, app.state.profile, settings.config_dir)


async def _close_clients(app: FastAPI) -> None:
    client = getattr(app.state, "alerts_client", None)
    if client is not None:
        await client.aclose()


def spec(settings: MatchingSettings) -> ServiceSpec:
    def consumers(app: FastAPI) -> list[Any]:
        if not settings.consume_alerts:
            return []
        if settings.service_client_id is None or settings.service_client_secret is None:
            log.warning("SERVICE_CLIENT_ID/SECRET unset: not consuming the alerts feed")
            return []
        return [make_consumer(app)]

    return ServiceSpec(
        title="Matching",
        description=(
            "The service consortium (助联体) online: sites, partner organisations and their offers, needs from "
            "referrals, visits and citizens, optimal matches, deliveries, feedback and points (春风点数)."
        ),
        # statistics and runs first: /api/v1/matches/runs is not a match id
        routers=[need_statistics_router, match_statistics_router, points_statistics_router, sites_router,
                 catalogue_router, organisations_router, hsds_router, offers_router, needs_router, runs_router, runs_reads_router,
                 matches_router, points_router],
        migrations_dir=MIGRATIONS,
        consumers=consumers,
        jobs=lambda app: [job] if (job := matching_job(app)) else [],
        on_startup=[_seed],
        on_shutdown=[_close_clients],
        openapi_tags=TAGS,
    )


def blind_index(settings: MatchingSettings) -> BlindIndex:
    """The keyed digest of a holder's ID number: the same key as the registry's, from a secret."""
    if settings.blind_index_key is not None:
        return BlindIndex(load_key(settings.blind_index_key, name="blind index"))
    if settings.environment == "production":
        raise ValueError("BLIND_INDEX_KEY is required in production")
    return dev_keys().blind_index()


def create_app(settings: MatchingSettings | None = None, *, profile: Profile | None = None, **kw: Any) -> FastAPI:
    settings = settings or MatchingSettings()
    profile = profile or load_profile(settings.config_dir, areas_file=settings.areas_file,
                                      sites_file=settings.sites_file)
    app = create_service_app(settings, spec(settings), **kw)
    complete_openapi(app)
    app.state.profile = profile
    app.state.blind_index = blind_index(settings)
    # The profile (thousands of sites and areas) lives as long as the process: keep it out of the
    # garbage collector's scans, which otherwise show up as pauses in every engine run.
    gc.freeze()
    return app
