"""One ``household.changed`` per changed household per transaction (docs/events.md).

Domain code marks what it changed with ``mark``; before it returns, the operation calls
``publish_changes``, which recomputes each household's scoring view from its facts, bumps its
version once and queues the event in the outbox of the same transaction. A transaction that
tries to commit with marked but unpublished changes fails loudly: a lost event is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import register_before_commit
from servicekit.events import publish

from registry.facts.view import HouseholdFacts, MemberFacts, age_on
from registry.facts.vocabulary import value_of
from registry.households import repository
from registry.households.tables import Household
from registry.profile import CityProfile

PENDING = "registry.household_changes"
EVENT_TYPE = "household.changed"
# When one transaction does several things to a household, the event names the weightiest.
WEIGHT = {"created": 4, "closed": 3, "status_changed": 2, "members_changed": 1, "updated": 0}


@dataclass
class _Pending:
    household: Household
    change: str
    triggers: list[dict[str, Any]] = field(default_factory=list)


def mark(session: AsyncSession, household: Household, change: str, triggers: list[dict[str, Any]] | None = None) -> None:
    pending: dict[str, _Pending] = session.info.setdefault(PENDING, {})
    entry = pending.get(household.id)
    if entry is None:
        pending[household.id] = _Pending(household, change, list(triggers or []))
        return
    if WEIGHT[change] > WEIGHT[entry.change]:
        entry.change = change
    entry.triggers.extend(triggers or [])


def household_facts(h: Household, members: list[MemberFacts]) -> HouseholdFacts:
    return HouseholdFacts(h.area_code, h.register_status, h.off_register_source, h.channel, h.status_since,
                          h.rural_hukou, h.facts, members)


def member_ages(members: list[MemberFacts], today: date) -> list[int]:
    """Whole years of the living members on ``today`` (the city's calendar day, as the view's age
    bands), oldest first: matching checks offers' age limits against them. Oldest first rather
    than member order, so the list says nothing about who is the head or how members were added."""
    cutoff = today.isoformat()
    ages = [age_on(m.birth_date, today) for m in members
            if (died := value_of(m.facts, "deceased_on")) is None or died > cutoff]
    return sorted(ages, reverse=True)


def event_data(*, household_id: str, version: int, area_code: str, label_masked: str, synthetic: bool,
               change: str, triggers: list[dict[str, Any]], member_ages: list[int], view: dict[str, Any] | None,
               missing: list[str] | None) -> dict[str, Any]:
    """The household.changed payload, for every producer path (a worker's change, a department
    batch, a bulk load). ``view`` and ``missing`` stay last: the bulk paths splice their
    already encoded texts in (``registry.bulk.with_view``)."""
    return {
        "household_id": household_id, "version": version, "area_code": area_code,
        "township_code": area_code[:9] + "000", "district_code": area_code[:6] + "000000",
        "label_masked": label_masked, "synthetic": synthetic, "change": change, "triggers": triggers,
        "member_ages": member_ages, "view": view, "missing": missing,
    }


async def publish_changes(session: AsyncSession, profile: CityProfile, today: date, now: datetime) -> int:
    pending: dict[str, _Pending] = session.info.pop(PENDING, {})
    if not pending:
        return 0
    await session.flush()
    members = await repository.member_facts_of(session, list(pending))
    for hid, p in pending.items():
        h = p.household
        people = members.get(hid, [])
        view, missing = profile.view(household_facts(h, people), today)
        if p.change != "created":
            h.version += 1
        h.view, h.missing, h.updated_at = view, missing, now
        publish(session, EVENT_TYPE, h.id, event_data(
            household_id=h.id, version=h.version, area_code=h.area_code, label_masked=h.label_masked,
            synthetic=h.synthetic, change=p.change, triggers=p.triggers, member_ages=member_ages(people, today),
            view=view, missing=missing,
        ))
    await session.flush()
    return len(pending)


async def _refuse_unpublished(session: AsyncSession) -> None:
    if session.info.get(PENDING):
        raise RuntimeError("household changes were marked but not published; call publish_changes")


register_before_commit(_refuse_unpublished)
