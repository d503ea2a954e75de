"""The scoring service: its app factory, its consumer of the registry's feed, its start-up."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.app import ServiceSpec, create_service_app
from servicekit.db import unit_of_work
from servicekit.events import Event, FeedConsumer, PageReader
from servicekit.http import TokenProvider, TokenSource
from scoring import tables  # noqa: F401  (registers the tables with the metadata)
from scoring.assessments.endpoints import router as assessments_router
from scoring.assessments.internal import router as snapshot_router
from scoring.deps import ScoringEngine
from scoring.engine.runtimes import Runtimes
from scoring.households import digest
from scoring.households import service as households
from scoring.households.client import RegistryClient
from scoring.households.schemas import HouseholdPage
from scoring.models import service as models
from scoring.models.endpoints import router as models_router
from scoring.portraits.endpoints import router as portraits_router
from scoring.profile import load_profile
from scoring.settings import ScoringSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
REGISTRY_FEED = "registry"

TAGS = [
    {"name": "assessments", "description": "The resilience score (抗风险能力赋分) of each household, why, and what would help"},
    {"name": "portraits", "description": "Family portrait (家庭画像) and assistance suggestions (帮扶建议)"},
    {"name": "models", "description": "The scoring model: drafts, validation, simulation, activation, history"},
]


def registry_consumer(app: FastAPI, transport: httpx.AsyncBaseTransport | None, token: TokenSource | None) -> FeedConsumer:
    engine: ScoringEngine = app.state.engine
    settings = engine.settings
    client = RegistryClient(settings.registry_url, token=token or TokenProvider.from_settings(settings),
                            transport=transport)

    async def handle(session: AsyncSession, events: list[Event]) -> None:
        await households.apply(session, engine.runtimes, households.parse_events(events), settings, wake=engine.wake)

    async def resync() -> int:
        """Read the registry's whole snapshot (one transaction per page); continue from its position."""
        position: int | None = None
        cursor: str | None = None
        while True:
            page = await client.snapshot_page(cursor, settings.snapshot_page_size)
            position = page.position if position is None else position
            async with unit_of_work(engine.db) as session:
                await households.apply(session, engine.runtimes, page.items, settings, wake=engine.wake)
            cursor = page.next_cursor
            if not cursor:
                return position

    reader = PageReader(digest.read_page, digest.setup, (engine.runtimes.ctx.view,),
                        min_backlog=settings.digest_worker_min_backlog) if settings.digest_worker_process else None
    return FeedConsumer(name=REGISTRY_FEED, client=client, db=engine.db, handler=handle, resync=resync,
                        batch_size=settings.consumer_batch_size, wait_seconds=settings.consumer_wait_seconds,
                        page_model=HouseholdPage, reader=reader)


def spec(registry_transport: httpx.AsyncBaseTransport | None = None, registry_token: TokenSource | None = None) -> ServiceSpec:
    def consumers(app: FastAPI) -> Sequence[FeedConsumer]:
        if not app.state.engine.settings.consume_registry:
            return []
        return [registry_consumer(app, registry_transport, registry_token)]

    async def start(app: FastAPI) -> None:
        await models.bootstrap(app.state.engine)
        app.state.engine.start_rescore_worker()

    async def stop(app: FastAPI) -> None:
        await app.state.engine.stop_jobs()

    return ServiceSpec(
        title="Scoring",
        description="The resilience score (抗风险能力赋分), family portrait (家庭画像) and assistance suggestions "
                    "(帮扶建议) of every household, and the scoring model they come from.",
        routers=[assessments_router, portraits_router, models_router, snapshot_router],
        migrations_dir=MIGRATIONS,
        consumers=consumers,
        on_startup=[start],
        on_shutdown=[stop],
        openapi_tags=TAGS,
    )


def create_app(settings: ScoringSettings | None = None, *, registry_transport: httpx.AsyncBaseTransport | None = None,
               registry_token: TokenSource | None = None, **kw: Any) -> FastAPI:
    settings = settings or ScoringSettings()
    profile = load_profile(settings.config_dir)  # a broken profile stops the service here, naming the file
    app = create_service_app(settings, spec(registry_transport, registry_token), **kw)
    app.state.engine = ScoringEngine(settings=settings, profile=profile, runtimes=Runtimes(profile.ctx),
                                     db=app.state.db, wake=app.state.feed_notifier.local_commit)
    return app
