"""Following the alerts feed (servicekit's FeedConsumer): every ``alert.disposed`` with a service
referral becomes one need per referred service (docs/events.md), a batch in one insert, in the
transaction that advances the cursor; one disposed as ``household_closed`` (the registry closed
the household) cancels the household's needs still open. After a 410 we rebuild from alerts'
snapshot; the unique (alert, service) key makes replays and overlaps create nothing twice."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database, unit_of_work
from servicekit.events import Event, FeedConsumer
from servicekit.http import ServiceClient, TokenProvider
from servicekit.tables import utcnow

from matching.locks import lock_shared
from matching.matches import repository as matches
from matching.needs import repository as needs
from matching.needs.schemas import NeedStatus
from matching.needs.service import referral_rows
from matching.profile import Profile
from matching.referrals.schemas import AlertDisposed, SnapshotItem
from matching.settings import MatchingSettings

log = logging.getLogger(__name__)

FEED_NAME = "alerts"
EVENT_TYPE = "alert.disposed"
REFERRAL = "service_referral"
CLOSED = "household_closed"


class AlertsClient(ServiceClient):
    """The typed client of the alerts service: its feed (through FeedConsumer) and its snapshot."""

    async def snapshot_page(self, cursor: str | None, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await self.get("/internal/snapshot/alerts", params=params)
        response.raise_for_status()
        return response.json()


def referrals(disposed: Iterable[AlertDisposed]) -> list[AlertDisposed]:
    return [d for d in disposed if d.disposition == REFERRAL and d.services]


def disposals(events: Iterable[Event]) -> list[AlertDisposed]:
    out = []
    for event in events:
        if event.type != EVENT_TYPE:
            continue
        try:
            disposed = AlertDisposed.model_validate(event.data)
        except ValidationError as exc:
            # Skipped, not stuck: the id and the fields at fault are logged, never the values.
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            log.error("skipping malformed %s %s (fields: %s)", EVENT_TYPE, event.id, ", ".join(fields))
            continue
        out.append(disposed)
    return out


async def create_needs(session: AsyncSession, profile: Profile, alerts: list[AlertDisposed]) -> int:
    """Needs for the referrals not seen before; unknown services or areas are logged and skipped."""
    usable = []
    for alert in alerts:
        if not profile.areas.is_village(alert.area_code):
            log.error("referral of alert %s names an area outside the city; skipped", alert.alert_id)
            continue
        known = [s for s in alert.services if s.code in profile.catalogue]
        if len(known) < len(alert.services):
            log.error("referral of alert %s names services not in the catalogue; those are skipped", alert.alert_id)
        usable.append(alert.model_copy(update={"services": known}))
    wanted = {(a.alert_id, s.code) for a in usable for s in a.services}
    existing = await needs.existing_referrals(session, wanted)
    now = utcnow()
    rows, seen = [], set(existing)
    for alert in usable:
        fresh = [s for s in alert.services if (alert.alert_id, s.code) not in seen]
        seen |= {(alert.alert_id, s.code) for s in fresh}
        rows += referral_rows(profile, alert.model_copy(update={"services": fresh}), now)
    await needs.add_many(session, rows)
    return len(rows)


async def cancel_needs_of_closed(session: AsyncSession, household_ids: list[str]) -> int:
    """Households the registry closed: their needs still open are cancelled and the proposals
    waiting on them withdrawn. A need already accepted by a partner is left to the officer (a
    delivery may be under way; revoking it is theirs to decide)."""
    if not household_ids:
        return 0
    await lock_shared(session)
    found = await needs.open_of_households(session, household_ids)
    if not found:
        return 0
    now = utcnow()
    await matches.close_proposals(session, need_ids=[n.id for n in found], status="withdrawn", reason=CLOSED, at=now)
    for need in found:
        need.status, need.unmatched_reason, need.updated_at = NeedStatus.cancelled.value, None, now
        need.version += 1
    await session.flush()
    return len(found)


def make_handler(profile: Profile):  # type: ignore[no-untyped-def]
    async def handle(session: AsyncSession, events: list[Event]) -> None:
        disposed = disposals(events)
        await create_needs(session, profile, referrals(disposed))
        await cancel_needs_of_closed(session, [d.household_id for d in disposed if d.disposition == CLOSED])

    return handle


async def resync(db: Database, client: AlertsClient, profile: Profile, page_size: int = 500) -> int:
    """Rebuild from alerts' snapshot of every alert -- the referrals' needs, and the needs of
    households the registry closed meanwhile cancelled -- as the feed's events would have; returns
    the feed position to continue after."""
    cursor: str | None = None
    position: int | None = None
    while True:
        page = await client.snapshot_page(cursor, page_size)
        if position is None:
            position = int(page["position"])
        items, closed = [], []
        for raw in page.get("items", []):
            try:
                item = SnapshotItem.model_validate(raw)
            except ValidationError:
                log.error("skipping a malformed snapshot item of alerts")
                continue
            if item.status == "disposed" and item.disposition == REFERRAL and item.services:
                items.append(item)
            elif item.status == "disposed" and item.disposition == CLOSED:
                closed.append(item.household_id)
        async with unit_of_work(db) as session:
            await create_needs(session, profile, items)
            await cancel_needs_of_closed(session, closed)
        cursor = page.get("next_cursor")
        if not cursor:
            return position


def alerts_client(settings: MatchingSettings, **kw: Any) -> AlertsClient:
    return AlertsClient(settings.alerts_url, token=kw.pop("token", None) or TokenProvider.from_settings(settings), **kw)


def make_consumer(app: FastAPI, client: AlertsClient | None = None) -> FeedConsumer:
    settings: MatchingSettings = app.state.settings
    profile: Profile = app.state.profile
    client = client or alerts_client(settings)
    app.state.alerts_client = client

    async def do_resync() -> int:
        return await resync(app.state.db, client, profile)

    return FeedConsumer(
        name=FEED_NAME, client=client, db=app.state.db, handler=make_handler(profile),
        resync=do_resync, batch_size=settings.alerts_batch_size, wait_seconds=settings.alerts_wait_seconds,
    )
