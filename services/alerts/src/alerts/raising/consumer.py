"""Following scoring's feed of ``assessment.updated`` (servicekit's FeedConsumer): each batch is
applied in one transaction with the cursor; after a 410 we resynchronise from scoring's snapshot
of the latest assessment per household, comparing levels with the ones we last saw."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database, unit_of_work
from servicekit.events import Event, FeedConsumer
from servicekit.http import ServiceClient, TokenProvider

from alerts.profile import Profile
from alerts.raising import repository, service
from alerts.raising.schemas import AssessmentPage, AssessmentUpdated, AssessmentWithdrawn, SnapshotItem
from alerts.settings import AlertsSettings

log = logging.getLogger(__name__)

FEED_NAME = "scoring"
EVENT_TYPE = "assessment.updated"
WITHDRAWN = "assessment.withdrawn"  # the registry closed the household
# Resync observations get a stable id per assessment, so replaying a snapshot applies nothing twice.
_RESYNC_NAMESPACE = uuid.UUID("6f3e1b2a-7c4d-4e5f-9a8b-0c1d2e3f4a5b")


class ScoringClient(ServiceClient):
    """The typed client of the scoring service (its feed and its snapshot)."""

    async def snapshot_page(self, cursor: str | None, limit: int, of: str = "assessments") -> dict:
        """A page of the snapshot of current assessments, or ``of="withdrawn"``: of withdrawals."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await self.get(f"/internal/snapshot/{of}", params=params)
        response.raise_for_status()
        return response.json()


def observations(events: Sequence[Event]) -> list[service.Observation]:
    out = []
    for event in events:
        if event.type != EVENT_TYPE:
            continue
        try:
            out.append(service.Observation(event.id, AssessmentUpdated.model_validate(event.data)))
        except ValidationError as exc:
            # A malformed event must not stop the feed; its id and the fields at fault are logged
            # (never the values), so it can be found at the producer.
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            log.error("skipping malformed %s %s (fields: %s)", EVENT_TYPE, event.id, ", ".join(fields))
    return out


def withdrawn(items: Iterable[tuple[str, Any]]) -> list[str]:
    """The households of ``assessment.withdrawn`` data -- an event's (which the typed page may have
    read as an assessment: the fields overlap) or a snapshot item -- each with what to name it by
    in the log if it is malformed (never its values)."""
    out = []
    for source, data in items:
        try:
            out.append(AssessmentWithdrawn.model_validate(data, from_attributes=True).household_id)
        except ValidationError:
            log.error("skipping malformed %s %s", WITHDRAWN, source)
    return out


def make_handler(profile: Profile):
    async def handle(session: AsyncSession, events: list[Event]) -> None:
        # FeedConsumer has recorded these ids as applied in this very transaction. A closed
        # household sends nothing after its withdrawal, so its assessments come first.
        await service.apply(session, profile, observations(events), deduplicated=True)
        await service.withdraw(session, withdrawn((e.id, e.data) for e in events if e.type == WITHDRAWN))

    return handle


async def resync(db: Database, client: ScoringClient, profile: Profile, page_size: int = 500) -> int:
    """Apply scoring's snapshot page by page, then its withdrawals (households closed meanwhile,
    whose ``assessment.withdrawn`` the feed no longer holds); returns the feed position to
    continue after (the first page's: what changed since is delivered again by the feed)."""
    cursor: str | None = None
    position: int | None = None
    while True:
        page = await client.snapshot_page(cursor, page_size)
        if position is None:
            position = int(page["position"])
        items = [SnapshotItem.model_validate(i) for i in page.get("items", [])]
        async with unit_of_work(db) as session:
            known = await repository.known_assessments(session, (i.household_id for i in items))
            obs = []
            for item in items:
                seen = known.get(item.household_id)
                if seen is not None and seen.assessment_id == item.assessment_id:
                    continue  # we applied this very assessment from the feed
                event_id = str(uuid.uuid5(_RESYNC_NAMESPACE, item.assessment_id))
                obs.append(service.Observation(event_id, item, previous_level=seen.level if seen else None))
            await service.apply(session, profile, obs)
        cursor = page.get("next_cursor")
        if not cursor:
            break
    while True:
        try:
            page = await client.snapshot_page(cursor, page_size, of="withdrawn")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            # A scoring older than its snapshot of withdrawals (a rolling upgrade, producers not
            # first): what it has is applied; households closed meanwhile keep their open alert.
            log.warning("scoring serves no snapshot of withdrawals; resynchronised without it")
            return position
        closed = withdrawn(("in scoring's snapshot", item) for item in page.get("items", []))
        if closed:
            async with unit_of_work(db) as session:
                await service.withdraw(session, closed)
        cursor = page.get("next_cursor")
        if not cursor:
            return position


def scoring_client(settings: AlertsSettings, **kw) -> ScoringClient:
    return ScoringClient(settings.scoring_url, token=kw.pop("token", None) or TokenProvider.from_settings(settings), **kw)


def make_consumer(app: FastAPI, client: ScoringClient | None = None) -> FeedConsumer:
    settings: AlertsSettings = app.state.settings
    profile: Profile = app.state.profile
    client = client or scoring_client(settings)
    app.state.scoring_client = client

    async def do_resync() -> int:
        return await resync(app.state.db, client, profile)

    return FeedConsumer(
        name=FEED_NAME, client=client, db=app.state.db, handler=make_handler(profile), resync=do_resync,
        batch_size=settings.scoring_batch_size, wait_seconds=settings.scoring_wait_seconds, page_model=AssessmentPage,
    )
