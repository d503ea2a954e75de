"""/api/v1/organisations: partners apply, officers decide; partners see only their own."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller, Role
from servicekit.concurrency import set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, PreconditionFailed, problem_responses
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from matching.concurrency import check_if_match
from matching.paging import after_key
from matching.deps import Administrator, Anyone, CurrentProfile, Partner
from matching.organisations import repository, service
from matching.organisations.schemas import (
    Decision, OrganisationApply, OrganisationPublic, OrganisationStatus, Rejection,
)
from matching.problems import AlreadyExists, InvalidTransition, UnknownReference

router = APIRouter(prefix="/api/v1/organisations", tags=["organisations"], route_class=TransactionalRoute)
_DECIDE = problem_responses(Forbidden, NotFound, InvalidTransition, PreconditionFailed)


@router.post("", status_code=201, operation_id="organisations:apply",
             summary="Apply to join the consortium (partner token; the id is its org claim)",
             response_model=OrganisationPublic,
             responses=problem_responses(Forbidden, AlreadyExists, UnknownReference))
async def apply(body: OrganisationApply, session: Session, caller: Partner, profile: CurrentProfile,
                response: Response, _idem: Idempotency) -> OrganisationPublic:
    org = await service.apply(session, profile, caller, body)
    set_etag(response, org.version)
    response.headers["Location"] = f"/api/v1/organisations/{org.id}"
    return service.public(org)


@router.get("", operation_id="organisations:list", summary="List organisations (a partner sees its own)",
            response_model=Page[OrganisationPublic], responses=problem_responses(Forbidden))
async def list_organisations(session: Session, caller: Anyone, paging: Paging,
                             status: Annotated[OrganisationStatus | None, Query()] = None) -> Page[OrganisationPublic]:
    if caller.role is Role.citizen:
        raise Forbidden("Citizens do not list organisations.")
    only = service.organisation_of(caller) if caller.role is Role.partner else None
    after = after_key(paging)
    rows = await repository.page(session, status=status.value if status else None, only=only, after=after,
                                 limit=paging.limit)
    items, cursor = paginate(rows, paging, lambda o: (o.id,))
    return Page(items=[service.public(o) for o in items], next_cursor=cursor)


@router.get("/me", operation_id="organisations:get-mine", summary="Your own organisation (partners)",
            response_model=OrganisationPublic, responses=problem_responses(Forbidden, NotFound))
async def get_mine(session: Session, caller: Partner, response: Response) -> OrganisationPublic:
    org = await service.visible(session, caller, service.organisation_of(caller))
    set_etag(response, org.version)
    return service.public(org)


@router.get("/{org_id}", operation_id="organisations:get", summary="One organisation",
            response_model=OrganisationPublic, responses=problem_responses(Forbidden, NotFound))
async def get_organisation(org_id: str, session: Session, caller: Anyone, response: Response) -> OrganisationPublic:
    org = await service.visible(session, caller, org_id)
    set_etag(response, org.version)
    return service.public(org)


async def _decide(request: Request, session: AsyncSession, caller: Caller, org_id: str, decision: str,
                  reason: str | None, response: Response) -> OrganisationPublic:
    org = await service.decide(session, caller, org_id, decision, reason, partial(check_if_match, request))
    set_etag(response, org.version)
    return service.public(org)


@router.post("/{org_id}/approve", operation_id="organisations:approve",
             summary="Approve an application, or reinstate a suspended partner (district or city officers)",
             response_model=OrganisationPublic, responses=_DECIDE)
async def approve(org_id: str, body: Decision, request: Request, session: Session, caller: Administrator,
                  response: Response, _idem: Idempotency) -> OrganisationPublic:
    return await _decide(request, session, caller, org_id, "approve", body.reason, response)


@router.post("/{org_id}/reject", operation_id="organisations:reject", summary="Reject an application, with the reason",
             response_model=OrganisationPublic, responses=_DECIDE)
async def reject(org_id: str, body: Rejection, request: Request, session: Session, caller: Administrator,
                 response: Response, _idem: Idempotency) -> OrganisationPublic:
    return await _decide(request, session, caller, org_id, "reject", body.reason, response)


@router.post("/{org_id}/suspend", operation_id="organisations:suspend",
             summary="Suspend an approved partner: it can no longer post offers or accept matches",
             response_model=OrganisationPublic, responses=_DECIDE)
async def suspend(org_id: str, body: Rejection, request: Request, session: Session, caller: Administrator,
                  response: Response, _idem: Idempotency) -> OrganisationPublic:
    return await _decide(request, session, caller, org_id, "suspend", body.reason, response)
