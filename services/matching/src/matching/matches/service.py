"""The life of a match: proposed by the engine, accepted or declined by the partner, delivered,
given the family's feedback, or revoked by an officer. Every step is recorded.

Capacity is checked where it is spent: an accept locks the offer's row and counts the slots
already accepted or delivered this period, so two accepts racing for the last slot cannot both
win (on PostgreSQL the row lock orders them; SQLite has one writer).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller, Role
from servicekit.crypto import BlindIndex
from servicekit.errors import NotFound, Unprocessable
from servicekit.tables import utcnow

from matching.locks import lock_shared
from matching.matches import repository
from matching.matches.schemas import Contact, Decline, Delivery, Feedback, FeedbackIn, MatchPublic, Step
from matching.matches.tables import SPENT, Match, MatchStep
from matching.needs import repository as needs
from matching.needs.service import deidentified, resident_digest
from matching.needs.tables import Need
from matching.offers import repository as offers
from matching.offers.service import current_key
from matching.periods import local_date
from matching.organisations.service import approved_partner
from matching.problems import CapacityExhausted, InvalidTransition
from matching.profile import Profile



def public(match: Match, need: Need, profile: Profile) -> MatchPublic:
    relay = profile.rules.relay
    feedback = None
    if match.feedback_score is not None and match.feedback_at is not None:
        feedback = Feedback(score=match.feedback_score, comment=match.feedback_comment, at=match.feedback_at)
    return MatchPublic(
        id=match.id, status=match.status, need=deidentified(need, profile), offer_id=match.offer_id,
        organisation_id=match.organisation_id, site_code=match.site_code, period_key=match.period_key,
        distance_km=match.distance_km,
        contact=Contact(hotline=relay.hotline, reference=match.reference, note=relay.note_zh),
        proposed_at=match.proposed_at, accepted_at=match.accepted_at, closed_at=match.closed_at,
        close_reason=match.close_reason, delivered_on=match.delivered_on, delivery_notes=match.delivery_notes,
        feedback=feedback, version=match.version,
    )


def may_see(caller: Caller, index: BlindIndex, match: Match, need: Need) -> bool:
    if caller.role is Role.partner:
        return caller.organisation == match.organisation_id
    if caller.role is Role.citizen:
        return need.requester_digest is not None and need.requester_digest == resident_digest(index, caller.resident_id)
    return caller.can_see_area(need.area_code)


async def visible(session: AsyncSession, caller: Caller, index: BlindIndex, match_id: str, *,
                  lock: bool = False) -> tuple[Match, Need]:
    found = await repository.with_need(session, match_id, lock=lock)
    if found is None or not may_see(caller, index, *found):
        raise NotFound("No match with that id is visible to you.")
    return found


def _step(session: AsyncSession, match: Match, step: str, caller: Caller, at: datetime, **detail: object) -> None:
    session.add(MatchStep(match_id=match.id, step=step, actor_role=caller.role.value, actor=caller.subject, at=at,
                          detail={k: v for k, v in detail.items() if v is not None}))


def _require(match: Match, *allowed: str, action: str) -> None:
    if match.status not in allowed:
        raise InvalidTransition(f"A match that is {match.status} cannot be {action}.")


async def accept(session: AsyncSession, profile: Profile, caller: Caller, index: BlindIndex, match_id: str,
                 if_match: Callable[[int], None]) -> tuple[Match, Need]:
    await approved_partner(session, caller)
    await lock_shared(session)
    match, need = await visible(session, caller, index, match_id, lock=True)
    if_match(match.version)
    _require(match, "proposed", action="accepted")
    offer = await offers.get(session, match.offer_id, lock=True)  # serialises accepts on this offer
    if offer is None or offer.status != "published":
        raise InvalidTransition("The offer is not published any more; decline the match instead.")
    now = utcnow()
    key = current_key(offer, profile, now)
    if await repository.count_in_period(session, offer.id, key, SPENT) >= offer.capacity:
        raise CapacityExhausted("The offer's capacity for this period is used up; decline the match to pass it on.")
    match.status, match.accepted_at, match.period_key = "accepted", now, key
    match.version += 1
    need.status, need.updated_at = "accepted", now
    need.version += 1
    _step(session, match, "accepted", caller, now)
    await session.flush()
    return match, need


async def decline(session: AsyncSession, caller: Caller, index: BlindIndex, match_id: str, body: Decline,
                  if_match: Callable[[int], None]) -> tuple[Match, Need]:
    await approved_partner(session, caller)
    await lock_shared(session)
    match, need = await visible(session, caller, index, match_id, lock=True)
    if_match(match.version)
    _require(match, "proposed", action="declined")
    now = utcnow()
    _close(match, "declined", body.reason.value, body.note, now)  # the need is open again, unproposed
    _step(session, match, "declined", caller, now, reason=body.reason.value)
    await session.flush()
    return match, need


def _close(match: Match, status: str, reason: str, note: str | None, now: datetime) -> None:
    match.status, match.closed_at, match.close_reason, match.close_note = status, now, reason, note
    match.version += 1


async def deliver(session: AsyncSession, profile: Profile, caller: Caller, index: BlindIndex, match_id: str,
                  body: Delivery, if_match: Callable[[int], None]) -> tuple[Match, Need]:
    await approved_partner(session, caller)
    match, need = await visible(session, caller, index, match_id, lock=True)
    if_match(match.version)
    _require(match, "accepted", action="delivered")
    now = utcnow()
    zone = profile.rules.zone
    if not local_date(zone, match.accepted_at or now) <= body.delivered_on <= local_date(zone, now):
        raise Unprocessable("delivered_on must lie between the day the match was accepted and today.")
    match.status, match.delivered_on, match.delivered_at, match.delivery_notes = "delivered", body.delivered_on, now, body.notes
    match.version += 1
    need.status, need.updated_at = "delivered", now
    need.version += 1
    _step(session, match, "delivered", caller, now, delivered_on=body.delivered_on.isoformat())
    await session.flush()
    return match, need


async def feedback(session: AsyncSession, caller: Caller, index: BlindIndex, match_id: str, body: FeedbackIn,
                   if_match: Callable[[int], None]) -> tuple[Match, Need]:
    """The family's word (their own, through Zheliban, or recorded by a worker on a follow-up visit)."""
    if caller.role is Role.partner:
        raise NotFound("No match with that id is visible to you.")
    match, need = await visible(session, caller, index, match_id, lock=True)
    if_match(match.version)
    _require(match, "delivered", action="given feedback")
    if match.feedback_at is not None:
        raise InvalidTransition("This delivery has its feedback already.")
    now = utcnow()
    match.feedback_score, match.feedback_comment, match.feedback_at = body.score, body.comment, now
    match.version += 1
    _step(session, match, "feedback", caller, now, score=body.score)
    await session.flush()
    return match, need


async def revoke(session: AsyncSession, caller: Caller, index: BlindIndex, match_id: str, reason: str,
                 if_match: Callable[[int], None]) -> tuple[Match, Need]:
    await lock_shared(session)
    match, need = await visible(session, caller, index, match_id, lock=True)
    if_match(match.version)
    _require(match, "proposed", "accepted", action="revoked")
    now = utcnow()
    previous = match.status
    _close(match, "revoked", "officer", reason, now)
    await needs.reopen(session, [need.id], now)
    _step(session, match, "revoked", caller, now, previous=previous)
    await session.flush()
    return match, need


async def history(session: AsyncSession, match: Match) -> list[Step]:
    """The proposal (the match row itself) and every step after it."""
    first = Step(step="proposed", actor_role="engine", at=match.proposed_at, detail={"run_id": match.run_id})
    rows = await repository.steps(session, match.id)
    return [first, *(Step(step=s.step, actor_role=s.actor_role, at=s.at, detail=s.detail) for s in rows)]
