"""The alerts service: its app factory, its consumer of scoring's feed and its background work
(the overdue sweeper and the webhook dispatcher)."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from servicekit.app import ServiceSpec, create_service_app

from alerts import tables  # noqa: F401  (registers the tables with the metadata)
from alerts.alert.endpoints import router as alerts_router
from alerts.alert.snapshot import router as snapshot_router
from alerts.background import start_background, stop_background
from alerts.deadline.endpoints import router as calendar_router
from alerts.profile import Profile, load_profile
from alerts.raising.consumer import make_consumer
from alerts.settings import AlertsSettings
from alerts.statistics.endpoints import router as statistics_router
from alerts.subscription.endpoints import router as subscriptions_router

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TAGS = [
    {"name": "alerts", "description": "The worker's inbox and the workflow of an alert (预警核实处置)"},
    {"name": "statistics", "description": "Open, overdue, on-time verification, dispositions and rule precision"},
    {"name": "subscriptions", "description": "Webhook endpoints of townships and districts (Standard Webhooks)"},
    {"name": "calendar", "description": "The working calendar (工作日, 调休) deadlines are counted on"},
]


def spec(settings: AlertsSettings) -> ServiceSpec:
    def consumers(app: FastAPI) -> list[Any]:
        if not settings.consume_scoring:
            return []
        if settings.service_client_id is None or settings.service_client_secret is None:
            log.warning("SERVICE_CLIENT_ID/SECRET unset: not consuming scoring's feed")
            return []
        return [make_consumer(app)]

    return ServiceSpec(
        title="Alerts",
        description=(
            "Alerts raised when something happens to a family, dispatched to the township of its village, "
            "followed to their verification deadline and their referral to policies or services."
        ),
        # statistics before alerts: /api/v1/alerts/statistics is not an alert id
        routers=[statistics_router, alerts_router, subscriptions_router, calendar_router, snapshot_router],
        migrations_dir=MIGRATIONS,
        consumers=consumers,
        on_startup=[start_background],
        on_shutdown=[stop_background],
        openapi_tags=TAGS,
    )


def create_app(settings: AlertsSettings | None = None, *, profile: Profile | None = None, **kw: Any) -> FastAPI:
    settings = settings or AlertsSettings()
    profile = profile or load_profile(settings.config_dir)
    app = create_service_app(settings, spec(settings), **kw)
    app.state.profile = profile
    # What is built at start-up (the app, the profile, the calendar) lives as long as the process:
    # keep it out of the collector's full scans, which otherwise pause the inbox while a backlog
    # of events allocates and frees many small objects.
    gc.freeze()
    return app
