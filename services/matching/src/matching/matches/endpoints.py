"""/api/v1/matches: partners accept, decline and deliver their matches; families give feedback;
officers revoke; the engine's runs are started and read here."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from servicekit.auth import Role
from servicekit.concurrency import set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, PreconditionFailed, Unprocessable, problem_responses
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from matching.concurrency import check_if_match
from matching.paging import after_time
from matching.deps import Anyone, CurrentBlindIndex, CurrentProfile, Partner, Revoker
from matching.matches import repository, service
from matching.matches.schemas import Decline, Delivery, FeedbackIn, MatchPublic, MatchStatus, Revocation, Step
from matching.needs.repository import in_scope
from matching.problems import CapacityExhausted, InvalidTransition, PartnerNotApproved

router = APIRouter(prefix="/api/v1/matches", tags=["matches"], route_class=TransactionalRoute)
_ACT = problem_responses(Forbidden, NotFound, InvalidTransition, PreconditionFailed)


@router.get("", operation_id="matches:list",
            summary="Matches: a partner its own, officials those of their jurisdiction's needs",
            response_model=Page[MatchPublic], responses=problem_responses(Forbidden))
async def list_matches(session: Session, caller: Anyone, profile: CurrentProfile, paging: Paging,
                       status: Annotated[MatchStatus | None, Query()] = None,
                       offer: Annotated[str | None, Query(max_length=36)] = None) -> Page[MatchPublic]:
    if caller.role in (Role.citizen, Role.department):
        raise Forbidden("Citizens see their matches with their needs.")
    partner = caller.role is Role.partner
    after = after_time(paging)
    rows = await repository.page(session, organisation=caller.organisation if partner else None,
                                 scope=None if partner else in_scope(caller), status=status.value if status else None,
                                 offer_id=offer, after=after, limit=paging.limit)
    items, cursor = paginate(rows, paging, lambda r: (r[0].proposed_at.isoformat(), r[0].id))
    return Page(items=[service.public(m, n, profile) for m, n in items], next_cursor=cursor)


@router.get("/{match_id}", operation_id="matches:get",
            summary="One match, its need de-identified (脱敏), the family reached through the platform",
            response_model=MatchPublic, responses=problem_responses(Forbidden, NotFound))
async def get_match(match_id: str, session: Session, caller: Anyone, profile: CurrentProfile,
                    index: CurrentBlindIndex, response: Response) -> MatchPublic:
    match, need = await service.visible(session, caller, index, match_id)
    set_etag(response, match.version)
    return service.public(match, need, profile)


@router.get("/{match_id}/steps", operation_id="matches:steps", summary="Every step of a match, oldest first",
            response_model=list[Step], responses=problem_responses(Forbidden, NotFound))
async def get_steps(match_id: str, session: Session, caller: Anyone, index: CurrentBlindIndex) -> list[Step]:
    match, _ = await service.visible(session, caller, index, match_id)
    return await service.history(session, match)


def _answer(response: Response, profile, pair) -> MatchPublic:  # type: ignore[no-untyped-def]
    match, need = pair
    set_etag(response, match.version)
    return service.public(match, need, profile)


@router.post("/{match_id}/accept", operation_id="matches:accept",
             summary="Accept a proposed match (the partner); refused when the offer's capacity is used up",
             response_model=MatchPublic,
             responses=problem_responses(Forbidden, NotFound, InvalidTransition, CapacityExhausted,
                                         PreconditionFailed, PartnerNotApproved))
async def accept(match_id: str, request: Request, session: Session, caller: Partner, profile: CurrentProfile,
                 index: CurrentBlindIndex, response: Response, _idem: Idempotency) -> MatchPublic:
    pair = await service.accept(session, profile, caller, index, match_id, partial(check_if_match, request))
    return _answer(response, profile, pair)


@router.post("/{match_id}/decline", operation_id="matches:decline",
             summary="Decline a proposed match (the partner): the need is matched again, elsewhere",
             response_model=MatchPublic, responses={**_ACT, **problem_responses(PartnerNotApproved)})
async def decline(match_id: str, body: Decline, request: Request, session: Session, caller: Partner,
                  profile: CurrentProfile, index: CurrentBlindIndex, response: Response,
                  _idem: Idempotency) -> MatchPublic:
    pair = await service.decline(session, caller, index, match_id, body, partial(check_if_match, request))
    return _answer(response, profile, pair)


@router.post("/{match_id}/deliver", operation_id="matches:deliver",
             summary="Record the delivery of an accepted match (线下帮扶落地): date and notes",
             response_model=MatchPublic,
             responses={**_ACT, **problem_responses(PartnerNotApproved, Unprocessable)})
async def deliver(match_id: str, body: Delivery, request: Request, session: Session, caller: Partner,
                  profile: CurrentProfile, index: CurrentBlindIndex, response: Response,
                  _idem: Idempotency) -> MatchPublic:
    pair = await service.deliver(session, profile, caller, index, match_id, body, partial(check_if_match, request))
    return _answer(response, profile, pair)


@router.post("/{match_id}/feedback", operation_id="matches:feedback",
             summary="The family's feedback on a delivery (1-5): the citizen, or a worker on their behalf",
             response_model=MatchPublic, responses=_ACT)
async def feedback(match_id: str, body: FeedbackIn, request: Request, session: Session, caller: Anyone,
                   profile: CurrentProfile, index: CurrentBlindIndex, response: Response,
                   _idem: Idempotency) -> MatchPublic:
    if caller.role not in (Role.citizen, Role.village_worker, Role.town_worker, Role.district_officer,
                           Role.city_admin, Role.partner):
        raise Forbidden("Only the family or a worker of its area records feedback.")
    pair = await service.feedback(session, caller, index, match_id, body, partial(check_if_match, request))
    return _answer(response, profile, pair)


@router.post("/{match_id}/revoke", operation_id="matches:revoke",
             summary="Revoke a proposed or accepted match (officers of the need's area); it is matched again",
             response_model=MatchPublic, responses=_ACT)
async def revoke(match_id: str, body: Revocation, request: Request, session: Session, caller: Revoker,
                 profile: CurrentProfile, index: CurrentBlindIndex, response: Response,
                 _idem: Idempotency) -> MatchPublic:
    pair = await service.revoke(session, caller, index, match_id, body.reason, partial(check_if_match, request))
    return _answer(response, profile, pair)
