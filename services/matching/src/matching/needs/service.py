"""Needs: recorded by workers after a visit, asked for by citizens, created from alerts' referrals;
cancelled by whoever may see them. Priority comes from the risk level and the urgency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller, Role
from servicekit.crypto import BlindIndex
from servicekit.errors import NotFound, Unprocessable
from servicekit.resident_id import InvalidResidentId, normalize
from servicekit.tables import utcnow

from matching.columns import new_id
from matching.locks import lock_shared
from matching.matches import repository as matches
from matching.needs import repository
from matching.needs.schemas import (
    CitizenNeedCreate, NeedCreate, NeedDeidentified, NeedOwn, NeedPublic, NeedSource, NeedStatus, OwnMatch, Urgency,
)
from matching.needs.tables import Need
from matching.problems import InvalidTransition, UnknownReference
from matching.profile import Profile
from matching.schemas import Location

DIGEST_PURPOSE = "matching_resident"


def resident_digest(index: BlindIndex, resident_id: str | None) -> str:
    """The keyed digest by which a citizen finds their own needs and points; never the number."""
    try:
        return index.digest(normalize(resident_id or ""), purpose=DIGEST_PURPOSE)
    except (InvalidResidentId, TypeError):
        raise Unprocessable("Your token carries no usable resident ID.") from None


def need_types_for(profile: Profile, service_code: str, confirmed: list[str] | None) -> list[str]:
    """The need types a need answers: the service's, narrowed to the confirmed ones when they meet."""
    own = list(profile.catalogue.services[service_code].need_types)
    narrowed = [t for t in own if confirmed and t in confirmed]
    return narrowed or own


def _check(profile: Profile, service_code: str, area_code: str, household_type: str | None, wish: str | None,
           need_types: list[str] | None = None) -> None:
    if service_code not in profile.catalogue:
        raise UnknownReference("service_code is not a service of the catalogue.")
    if not profile.areas.is_village(area_code):
        raise UnknownReference("area_code is not a village (村社) of the city.")
    if household_type is not None and household_type not in profile.rules.household_type_codes:
        raise UnknownReference("household_type is not a household type of the city.")
    if need_types is not None and any(t not in profile.catalogue.need_types for t in need_types):
        raise UnknownReference("need_types names a need type that does not exist.")
    is_wish = service_code == profile.rules.micro_wish_service
    if is_wish and not wish:
        raise Unprocessable("A micro-wish (微心愿) needs its wish.")
    if wish and not is_wish:
        raise Unprocessable("Only a micro-wish (微心愿) carries a wish.")


def _need(profile: Profile, *, source: NeedSource, service_code: str, area_code: str, urgency: Urgency,
          level: int | None, created_by: str, now: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": new_id(), "source": source.value, "service_code": service_code, "area_code": area_code,
        "urgency": urgency.value, "level": level, "priority": profile.rules.priority.of(level, urgency.value),
        "status": NeedStatus.open.value, "unmatched_reason": None, "created_by": created_by, "version": 1,
        "created_at": now, "updated_at": now, "alert_id": None, "household_id": None, "requester_digest": None,
        "label_masked": None, "household_type": None, "member_ages": [], "wish": None, **fields,
    }


async def create_by_worker(session: AsyncSession, profile: Profile, caller: Caller, body: NeedCreate) -> Need:
    _check(profile, body.service_code, body.area_code, body.household_type, body.wish, body.need_types)
    if not caller.can_see_area(body.area_code):
        raise NotFound("That village is not in your jurisdiction.")
    row = _need(
        profile, source=NeedSource.worker_visit, service_code=body.service_code, area_code=body.area_code,
        urgency=body.urgency, level=body.level, created_by=caller.subject, now=utcnow(),
        household_id=body.household_id, label_masked=body.label_masked, household_type=body.household_type,
        member_ages=list(body.member_ages), wish=body.wish,
        need_types=list(body.need_types) if body.need_types else need_types_for(profile, body.service_code, None),
    )
    need = Need(**row)
    session.add(need)
    await session.flush()
    return need


async def create_by_citizen(session: AsyncSession, profile: Profile, index: BlindIndex, caller: Caller,
                            body: CitizenNeedCreate) -> Need:
    area = caller.area or ""
    _check(profile, body.service_code, area, None, body.wish)
    row = _need(
        profile, source=NeedSource.citizen, service_code=body.service_code, area_code=area, urgency=Urgency.normal,
        level=None, created_by=caller.subject, now=utcnow(), requester_digest=resident_digest(index, caller.resident_id),
        member_ages=list(body.member_ages), wish=body.wish, need_types=need_types_for(profile, body.service_code, None),
    )
    need = Need(**row)
    session.add(need)
    await session.flush()
    return need


def referral_rows(profile: Profile, alert: Any, now: datetime) -> list[dict[str, Any]]:
    """One need per referred service of a disposed alert (docs/events.md, alert.disposed)."""
    rows = []
    for referred in alert.services:
        rows.append(_need(
            profile, source=NeedSource.alert_referral, service_code=referred.code, area_code=alert.area_code,
            urgency=Urgency(referred.urgency), level=alert.level, created_by="alerts", now=now,
            alert_id=alert.alert_id, household_id=alert.household_id, label_masked=alert.label_masked,
            household_type=alert.household_type, member_ages=list(alert.member_ages),
            need_types=need_types_for(profile, referred.code, alert.needs_confirmed),
        ))
    return rows


async def visible(session: AsyncSession, caller: Caller, index: BlindIndex, need_id: str, *,
                  lock: bool = False) -> Need:
    """Officials see needs of their jurisdiction, citizens their own; partners go through matches."""
    need = await repository.get(session, need_id, lock=lock)
    if need is None:
        raise NotFound("No need with that id is visible to you.")
    if caller.role is Role.citizen:
        if need.requester_digest != resident_digest(index, caller.resident_id):
            raise NotFound("No need with that id is visible to you.")
    elif caller.role is Role.partner or not caller.can_see_area(need.area_code):
        raise NotFound("No need with that id is visible to you.")
    return need


async def cancel(session: AsyncSession, caller: Caller, index: BlindIndex, need_id: str,
                 if_match: Callable[[int], None]) -> Need:
    await lock_shared(session)
    need = await visible(session, caller, index, need_id, lock=True)
    if_match(need.version)
    if need.status != NeedStatus.open.value:
        raise InvalidTransition(f"A need that is {need.status} cannot be cancelled; an officer revokes its match first.")
    now = utcnow()
    await matches.close_proposals(session, need_ids=[need.id], status="withdrawn", reason="need_cancelled", at=now)
    need.status, need.unmatched_reason, need.updated_at = NeedStatus.cancelled.value, None, now
    need.version += 1
    await session.flush()
    return need


def shown_status(need: Need, match: Any) -> str:
    """``matched`` is not stored: an open need whose live match is a proposal."""
    if need.status == NeedStatus.open.value and match is not None and match.status == "proposed":
        return NeedStatus.matched.value
    return need.status


def public(need: Need, profile: Profile, match: Any = None) -> NeedPublic:
    village = profile.areas.get(need.area_code)
    return NeedPublic(
        id=need.id, source=need.source, service_code=need.service_code, area_code=need.area_code,
        township_code=need.area_code[:9] + "000", district_code=need.area_code[:6] + "000000",
        location=Location(latitude=village.lat if village else 0.0, longitude=village.lon if village else 0.0),
        label_masked=need.label_masked, household_id=need.household_id, alert_id=need.alert_id, level=need.level,
        urgency=need.urgency, priority=need.priority, household_type=need.household_type,
        member_ages=need.member_ages, need_types=need.need_types, wish=need.wish, status=shown_status(need, match),
        unmatched_reason=need.unmatched_reason, version=need.version, created_at=need.created_at,
        updated_at=need.updated_at,
    )


def deidentified(need: Need, profile: Profile) -> NeedDeidentified:
    village = profile.areas.get(need.area_code)
    return NeedDeidentified(
        id=need.id, service_code=need.service_code, area_code=need.area_code,
        village_name=village.name if village else None, priority=need.priority, urgency=need.urgency,
        label_masked=need.label_masked, wish=need.wish,
    )


def own(need: Need, match: Any = None) -> NeedOwn:
    found = None
    if match is not None:
        found = OwnMatch(id=match.id, status=match.status, organisation_id=match.organisation_id,
                         delivered_on=match.delivered_on, feedback_score=match.feedback_score)
    return NeedOwn(id=need.id, service_code=need.service_code, wish=need.wish, status=shown_status(need, match),
                   match=found, created_at=need.created_at, version=need.version)


async def own_views(session: AsyncSession, found: list[Need]) -> list[NeedOwn]:
    current = await matches.current_of_needs(session, [n.id for n in found])
    return [own(n, current.get(n.id)) for n in found]


async def public_views(session: AsyncSession, profile: Profile, found: list[Need]) -> list[NeedPublic]:
    current = await matches.current_of_needs(session, [n.id for n in found])
    return [public(n, profile, current.get(n.id)) for n in found]
