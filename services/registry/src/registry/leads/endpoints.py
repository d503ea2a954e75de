"""Leads (线索) for proactive discovery: review, open a household in one step, or dismiss."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from servicekit.concurrency import check_version, expected_version, set_etag
from servicekit.db import TransactionalRoute
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from registry.audit import service as audit
from registry.responses import BODY, CONFLICT, IDEMPOTENT, IF_MATCH, LIST, NEEDS_REVIEW, ONE, problems
from registry.deps import Ctx, Deciders, Officials
from registry.households import present
from registry.households.schemas import HouseholdCreated
from registry.leads import repository, service
from registry.leads.schemas import LeadDismiss, LeadOpen, LeadOpened, LeadPublic

router = APIRouter(prefix="/api/v1/leads", tags=["leads"], route_class=TransactionalRoute)

LeadId = Annotated[str, Path(min_length=36, max_length=36)]


@router.get("", operation_id="leads:list", summary="Leads in your jurisdiction, newest first",
            response_model=Page[LeadPublic], responses=problems(LIST))
async def list_leads(ctx: Ctx, _caller: Officials, paging: Paging,
                     status: Annotated[str | None, Query(pattern=r"^(open|opened|dismissed)$")] = "open",
                     department: Annotated[str | None, Query(max_length=48)] = None) -> Page[LeadPublic]:
    rows = await repository.search(ctx.session, ctx.caller, status=status, department=department,
                                   limit=paging.limit, after=paging.after)
    page, cursor = paginate(rows, paging, key=lambda lead: [lead.received_at.isoformat(), lead.id])
    for lead in page:
        audit.lead_read(ctx, lead.id, lead.area_code)
    return Page[LeadPublic](items=[service.public(lead) for lead in page], next_cursor=cursor)


@router.get("/{lead_id}", operation_id="leads:get", summary="One lead", response_model=LeadPublic,
            responses=problems(ONE))
async def get_lead(lead_id: LeadId, ctx: Ctx, _caller: Officials, response: Response) -> LeadPublic:
    lead = await service.load_in_scope(ctx, lead_id)
    audit.lead_read(ctx, lead.id, lead.area_code)
    set_etag(response, lead.version)
    return service.public(lead)


@router.post("/{lead_id}/open", status_code=201, operation_id="leads:open-household",
             summary="Open an off-register household (主动发现) from a lead, in one step", response_model=LeadOpened,
             responses=problems(ONE, BODY, IDEMPOTENT, IF_MATCH, CONFLICT, extra=NEEDS_REVIEW))
async def open_household(lead_id: LeadId, body: LeadOpen, _caller: Deciders, _idem: Idempotency, ctx: Ctx,
                         request: Request, response: Response) -> LeadOpened:
    expected = expected_version(request)
    lead = await service.load_in_scope(ctx, lead_id, for_update=True)
    check_version(expected, lead.version)
    household, added, pending = await service.open_household(ctx, lead, body)
    if pending:
        response.status_code = 202
    view = present.household(household, added, ctx.profile.areas, ctx.today)
    audit.household_read(ctx, household.id, household.area_code)
    set_etag(response, lead.version)
    return LeadOpened(lead=service.public(lead), household=HouseholdCreated(**view.model_dump(), pending_review=pending))


@router.post("/{lead_id}/dismiss", operation_id="leads:dismiss", summary="Dismiss a lead, with the reason",
             response_model=LeadPublic, responses=problems(ONE, BODY, IDEMPOTENT, IF_MATCH, CONFLICT))
async def dismiss_lead(lead_id: LeadId, body: LeadDismiss, _caller: Deciders, _idem: Idempotency, ctx: Ctx,
                       request: Request, response: Response) -> LeadPublic:
    expected = expected_version(request)
    lead = await service.load_in_scope(ctx, lead_id, for_update=True)
    check_version(expected, lead.version)
    service.dismiss(ctx, lead, body)
    set_etag(response, lead.version)
    return service.public(lead)
