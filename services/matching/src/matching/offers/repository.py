"""Every query on offers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from matching.offers.tables import Offer
from matching.sql import for_update, json_array_contains


async def get(session: AsyncSession, offer_id: str, *, lock: bool = False) -> Offer | None:
    stmt = select(Offer).where(Offer.id == offer_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def page(session: AsyncSession, *, organisation: str | None, status: str | None, service: str | None,
               statuses: tuple[str, ...] | None, after: tuple[str, str] | None, limit: int) -> list[Offer]:
    """Newest first; the cursor is (created_at, id)."""
    stmt = select(Offer).order_by(Offer.created_at.desc(), Offer.id.desc()).limit(limit + 1)
    if organisation is not None:
        stmt = stmt.where(Offer.organisation_id == organisation)
    if status is not None:
        stmt = stmt.where(Offer.status == status)
    if statuses is not None:
        stmt = stmt.where(Offer.status.in_(statuses))
    if service is not None:
        stmt = stmt.where(json_array_contains(session, Offer.services, service))
    if after is not None:
        created, last_id = after
        stmt = stmt.where((Offer.created_at < created) | ((Offer.created_at == created) & (Offer.id < last_id)))
    return list((await session.execute(stmt)).scalars())


async def by_external_ids(session: AsyncSession, organisation: str, external_ids: list[str]) -> set[str]:
    if not external_ids:
        return set()
    rows = await session.execute(
        select(Offer.external_id).where(Offer.organisation_id == organisation, Offer.external_id.in_(external_ids))
    )
    return set(rows.scalars())


async def of_organisation(session: AsyncSession, organisation: str, statuses: tuple[str, ...]) -> list[Offer]:
    stmt = select(Offer).where(Offer.organisation_id == organisation, Offer.status.in_(statuses)).order_by(Offer.id)
    return list((await session.execute(stmt)).scalars())
