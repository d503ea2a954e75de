"""/api/v1/offers: partners post and run their offers (帮扶项目); officials read them all."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from servicekit.auth import Role
from servicekit.concurrency import expected_version, set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, PreconditionFailed, PreconditionRequired, problem_responses
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from matching.concurrency import check_if_match
from matching.paging import after_time
from matching.deps import Anyone, CurrentProfile, Partner
from matching.offers import repository, service
from matching.offers.schemas import OfferCreate, OfferPublic, OfferStatus, OfferUpdate
from matching.organisations.service import approved_partner
from matching.problems import InvalidTransition, PartnerNotApproved, UnknownReference
from matching.schemas import Code

router = APIRouter(prefix="/api/v1/offers", tags=["offers"], route_class=TransactionalRoute)
_ACT = problem_responses(Forbidden, NotFound, InvalidTransition, PreconditionFailed, PartnerNotApproved)


@router.post("", status_code=201, operation_id="offers:create",
             summary="Post an offer as a draft (approved partners)", response_model=OfferPublic,
             responses=problem_responses(Forbidden, PartnerNotApproved, UnknownReference))
async def create_offer(body: OfferCreate, session: Session, caller: Partner, profile: CurrentProfile,
                       response: Response, _idem: Idempotency) -> OfferPublic:
    org = await approved_partner(session, caller)
    offer = await service.create(session, profile, caller, org.id, body)
    set_etag(response, offer.version)
    response.headers["Location"] = f"/api/v1/offers/{offer.id}"
    return service.public(offer, 0)


@router.get("", operation_id="offers:list",
            summary="List offers: a partner its own, a citizen the published ones, officials all",
            response_model=Page[OfferPublic], responses=problem_responses(Forbidden))
async def list_offers(session: Session, caller: Anyone, profile: CurrentProfile, paging: Paging,
                      status: Annotated[OfferStatus | None, Query()] = None,
                      service_code: Annotated[Code | None, Query(alias="service")] = None,
                      organisation: Annotated[str | None, Query(max_length=64)] = None) -> Page[OfferPublic]:
    if caller.role is Role.department:
        raise Forbidden("Departments do not read offers.")
    org = caller.organisation if caller.role is Role.partner else organisation
    statuses = ("published",) if caller.role is Role.citizen else None
    after = after_time(paging)
    rows = await repository.page(session, organisation=org, status=status.value if status else None,
                                 service=service_code, statuses=statuses, after=after, limit=paging.limit)
    items, cursor = paginate(rows, paging, lambda o: (o.created_at.isoformat(), o.id))
    return Page(items=await service.publics(session, profile, items), next_cursor=cursor)


@router.get("/{offer_id}", operation_id="offers:get", summary="One offer", response_model=OfferPublic,
            responses=problem_responses(Forbidden, NotFound))
async def get_offer(offer_id: str, session: Session, caller: Anyone, profile: CurrentProfile,
                    response: Response) -> OfferPublic:
    offer = await service.visible(session, caller, offer_id)
    set_etag(response, offer.version)
    return (await service.publics(session, profile, [offer]))[0]


@router.patch("/{offer_id}", operation_id="offers:update", summary="Change an offer (needs If-Match)",
              response_model=OfferPublic,
              responses=problem_responses(Forbidden, NotFound, PreconditionFailed, PreconditionRequired,
                                          InvalidTransition, PartnerNotApproved, UnknownReference))
async def update_offer(offer_id: str, body: OfferUpdate, request: Request, session: Session, caller: Partner,
                       profile: CurrentProfile, response: Response) -> OfferPublic:
    await approved_partner(session, caller)
    offer = await service.update(session, profile, caller, offer_id, expected_version(request), body)
    set_etag(response, offer.version)
    return (await service.publics(session, profile, [offer]))[0]


async def _act(action: str, offer_id: str, request: Request, session, caller, profile,
               response: Response) -> OfferPublic:
    await approved_partner(session, caller)
    offer = await service.transition(session, caller, offer_id, action, partial(check_if_match, request))
    set_etag(response, offer.version)
    return (await service.publics(session, profile, [offer]))[0]


@router.post("/{offer_id}/publish", operation_id="offers:publish",
             summary="Publish a draft or resume a paused offer: it joins the next matching run",
             response_model=OfferPublic, responses=_ACT)
async def publish(offer_id: str, request: Request, session: Session, caller: Partner, profile: CurrentProfile,
                  response: Response, _idem: Idempotency) -> OfferPublic:
    return await _act("publish", offer_id, request, session, caller, profile, response)


@router.post("/{offer_id}/pause", operation_id="offers:pause",
             summary="Pause an offer: its proposals not yet accepted go back to be matched again",
             response_model=OfferPublic, responses=_ACT)
async def pause(offer_id: str, request: Request, session: Session, caller: Partner, profile: CurrentProfile,
                response: Response, _idem: Idempotency) -> OfferPublic:
    return await _act("pause", offer_id, request, session, caller, profile, response)


@router.post("/{offer_id}/close", operation_id="offers:close",
             summary="Close an offer for good; accepted matches stay the partner's to deliver",
             response_model=OfferPublic, responses=_ACT)
async def close(offer_id: str, request: Request, session: Session, caller: Partner, profile: CurrentProfile,
                response: Response, _idem: Idempotency) -> OfferPublic:
    return await _act("close", offer_id, request, session, caller, profile, response)
