"""Queries of the raising side: evidence already applied, the latest assessment per household."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import one_of

from alerts.alert.tables import AlertEvidence
from alerts.raising.tables import HouseholdAssessment
from alerts.storage import insert_for


async def applied_event_ids(session: AsyncSession, event_ids: Iterable[str]) -> set[str]:
    ids = list(event_ids)
    if not ids:
        return set()
    rows = await session.execute(select(AlertEvidence.event_id).where(one_of(session, AlertEvidence.event_id, ids)))
    return set(rows.scalars())


async def known_assessments(session: AsyncSession, household_ids: Iterable[str]) -> dict[str, HouseholdAssessment]:
    ids = list(set(household_ids))
    if not ids:
        return {}
    rows = await session.execute(select(HouseholdAssessment).where(one_of(session, HouseholdAssessment.household_id, ids)))
    return {r.household_id: r for r in rows.scalars()}


async def remember_assessments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = insert_for(session, HouseholdAssessment)
    stmt = stmt.on_conflict_do_update(
        index_elements=["household_id"],
        set_={c: stmt.excluded[c] for c in ("assessment_id", "household_version", "level", "score", "area_code", "updated_at")},
    )
    await session.execute(stmt, rows)
