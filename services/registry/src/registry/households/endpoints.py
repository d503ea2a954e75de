"""Households (家庭): create, search, read, update, register status, members, surveys."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute

from servicekit.auth import OFFICIALS, Caller, CurrentCaller, Role, caller_from_claims
from servicekit.concurrency import check_version, etag, expected_version, set_etag
from servicekit.db import TransactionalRoute, unit_of_work
from servicekit.errors import Conflict, Forbidden, NotFound, ProblemError
from servicekit.fastread import FastAnswer, FastRead, FastRequest
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate
from servicekit.tables import utcnow

from registry.audit import service as audit
from registry.columns import city_day
from registry.responses import BODY, CONFLICT, IDEMPOTENT, IF_MATCH, LIST, NEEDS_REVIEW, ONE, problems
from registry.deps import Citizens, Ctx, Deciders, Officials, get_context
from registry.facts import repository as facts_repo
from registry.facts.schemas import FactPublic
from registry.households import present, repository, service
from registry.households.schemas import (
    Channel, CloseIn, HouseholdCreate, HouseholdCreated, HouseholdPublic, HouseholdSummary, HouseholdUpdate, OffRegisterSource,
    OwnHouseholdStatus, RegisterStatus, StatusChangeIn, StatusChangePublic, SurveyIn, SurveyPublic,
)
from registry.households.tables import Household
from registry.members import repository as members_repo
from registry.members.schemas import MemberCreate

router = APIRouter(prefix="/api/v1/households", tags=["households"], route_class=TransactionalRoute)

HouseholdId = Annotated[str, Path(min_length=36, max_length=36, description="Household id (UUID)")]


async def household_in_scope(household_id: HouseholdId, ctx: Ctx, _caller: Officials) -> Household:
    """Load a household within the caller's jurisdiction, or 404 (never 403: no hint it exists)."""
    return await service.load_in_scope(ctx, household_id)


async def household_for_write(household_id: HouseholdId, ctx: Ctx, _caller: Officials, request: Request) -> Household:
    expected = expected_version(request)
    household = await service.load_in_scope(ctx, household_id, for_update=True)
    check_version(expected, household.version)
    if household.closed_on is not None:
        raise Conflict("The household is closed (注销); it can be read, not changed.")
    return household


async def household_to_close(household_id: HouseholdId, ctx: Ctx, caller: Officials, request: Request) -> Household:
    """As ``household_for_write``, with the household's members locked before it: closing
    releases them, and every writer of members locks them before their household (a feed's
    chunk holding a member and waiting for the household would otherwise deadlock with it)."""
    await members_repo.lock_of_household(ctx.session, household_id)  # out of scope: 404 next, nothing written
    return await household_for_write(household_id, ctx, caller, request)


HouseholdInScope = Annotated[Household, Depends(household_in_scope)]
HouseholdForWrite = Annotated[Household, Depends(household_for_write)]
HouseholdToClose = Annotated[Household, Depends(household_to_close)]


async def full_view(ctx: Ctx, household: Household, response: Response) -> HouseholdPublic:
    rows = await repository.members_of(ctx.session, household.id)
    audit.household_read(ctx, household.id, household.area_code)
    set_etag(response, household.version)
    return present.household(household, rows, ctx.profile.areas, ctx.today)


@router.post("", status_code=201, operation_id="households:create", summary="Open a household with its members",
             response_model=HouseholdCreated, responses=problems(BODY, IDEMPOTENT, CONFLICT))
async def create_household(body: HouseholdCreate, ctx: Ctx, _caller: Officials, _idem: Idempotency,
                           response: Response) -> HouseholdCreated:
    household, added, pending = await service.create(ctx, body)
    audit.household_read(ctx, household.id, household.area_code)
    set_etag(response, household.version)
    response.headers["Location"] = f"/api/v1/households/{household.id}"
    view = present.household(household, added, ctx.profile.areas, ctx.today)
    return HouseholdCreated(**view.model_dump(), pending_review=pending)


@router.get("", operation_id="households:list", summary="Search households in your jurisdiction",
            response_model=Page[HouseholdSummary], responses=problems(LIST))
async def list_households(
    ctx: Ctx, _caller: Officials, paging: Paging,
    area_code: Annotated[str | None, Query(pattern=r"^\d{4}(\d{2}(\d{3}(\d{3})?)?)?$", description="Area code prefix")] = None,
    register_status: RegisterStatus | None = None,
    off_register_source: OffRegisterSource | None = None,
    channel: Channel | None = None,
) -> Page[HouseholdSummary]:
    rows = await repository.search(ctx.session, ctx.caller, limit=paging.limit, after=paging.after, area_prefix=area_code,
                                   register_status=register_status, off_register_source=off_register_source,
                                   channel=channel)
    page, cursor = paginate(rows, paging, key=lambda h: [h.updated_at.isoformat(), h.id])
    audit.households_listed(ctx, [(h.id, h.area_code) for h in page])
    return Page[HouseholdSummary](items=[present.summary(h) for h in page], next_cursor=cursor)


def own_status(ctx: Ctx, household: Household) -> OwnHouseholdStatus:
    audit.household_read(ctx, household.id, household.area_code, ("register_status",))
    area = ctx.profile.areas.get(household.area_code)
    return OwnHouseholdStatus(household_id=household.id, register_status=household.register_status,
                              status_since=household.status_since, area_name=area.name if area else "",
                              members_total=(household.view or {}).get("members_total", 0))


@router.get("/mine", operation_id="households:mine", summary="A citizen's own household status (浙里办)",
            response_model=OwnHouseholdStatus, responses=problems(ONE))
async def own_household(ctx: Ctx, _caller: Citizens) -> OwnHouseholdStatus:
    return own_status(ctx, await service.own_household(ctx))


async def get_household(household_id: HouseholdId, caller: CurrentCaller, request: Request) -> OwnHouseholdStatus | Response:
    # The most common call of the product: an official's read is mostly answered by
    # read_fast below; what reaches this route is the rest (a citizen, SQLite, a refusal).
    state = request.app.state
    if caller.role is Role.citizen:
        async with unit_of_work(state.db) as session:
            ctx = await get_context(request, session, caller)
            own = await service.own_household(ctx)
            if own.id != household_id:
                raise NotFound(service.NOT_IN_SCOPE)
            return own_status(ctx, own)
    if caller.role not in OFFICIALS:
        raise Forbidden("Your role may not do this.")
    body, version = await read_document(state, caller, household_id)
    return Response(body, media_type="application/json", headers={"ETag": version})


async def read_document(state: Any, caller: Caller, household_id: str) -> tuple[bytes, str]:
    """The masked read, audited (see service.read_masked), as its JSON and ETag: the document
    is encoded once, the same JSON as HouseholdPublic's without building and re-validating the
    models (a test checks)."""
    household, members = await service.read_masked(state.db, caller, household_id)
    today = city_day(utcnow())
    document = present.household_document(household, members, state.profile.areas, today)
    return orjson.dumps(document, option=orjson.OPT_UTC_Z), etag(household.version)


# A plain route, not TransactionalRoute: the request's transaction is the one statement (or the
# unit of work) inside, and a session opened and committed around it would only cost time.
router.add_api_route(
    "/{household_id}", get_household, methods=["GET"], route_class_override=APIRoute, operation_id="households:get",
    summary="One household, masked, with its members and facts (a citizen: their own status only)",
    response_model=HouseholdPublic | OwnHouseholdStatus, responses=problems(ONE))
READ_ROUTE = router.routes[-1]
_READ_PREFIX = READ_ROUTE.path_format.removesuffix("{household_id}")  # type: ignore[attr-defined]


async def read_fast(request: FastRequest) -> FastAnswer | None:
    """``GET /api/v1/households/{id}`` by an official on PostgreSQL, answered from the server's
    protocol (servicekit.fastread), before the middleware, FastAPI's routing and dependency
    solving, which had come to cost more CPU than the read itself. It answers only a read that
    succeeds; everything else -- a citizen, a token to refuse, an id out of scope, SQLite --
    goes on to the route, which answers as it always has (its problem documents too)."""
    household_id = request.path[len(_READ_PREFIX):]
    state = request.app.state
    if len(household_id) != 36 or "/" in household_id or not state.db.is_postgres:
        return None
    scheme, _, token = (request.header(b"authorization") or b"").decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        caller = caller_from_claims(await state.verifier.verify(token))
        if caller.role not in OFFICIALS:
            return None
        body, version = await read_document(state, caller, household_id)
    except ProblemError:
        return None  # the route answers it, with the problem document it always gave
    return FastAnswer(body, [(b"content-type", b"application/json"), (b"etag", version.encode())])


FAST_READ = FastRead(_READ_PREFIX, READ_ROUTE, read_fast)


@router.patch("/{household_id}", operation_id="households:update", summary="Change address, location or household facts",
              response_model=HouseholdPublic, responses=problems(ONE, BODY, IF_MATCH))
async def update_household(body: HouseholdUpdate, household: HouseholdForWrite, ctx: Ctx, response: Response) -> HouseholdPublic:
    await service.update(ctx, household, body)
    return await full_view(ctx, household, response)


@router.post("/{household_id}/status", operation_id="households:change-status",
             summary="Change the register status (在册状态), with its source and date",
             response_model=HouseholdPublic, responses=problems(ONE, BODY, IDEMPOTENT, IF_MATCH, CONFLICT))
async def change_status(body: StatusChangeIn, _caller: Deciders, _idem: Idempotency, household: HouseholdForWrite,
                        ctx: Ctx, response: Response) -> HouseholdPublic:
    await service.change_status(ctx, household, body)
    return await full_view(ctx, household, response)


@router.post("/{household_id}/close", operation_id="households:close",
             summary="Close a household (注销) with the reason; its history stays, it becomes read-only",
             response_model=HouseholdPublic, responses=problems(ONE, BODY, IDEMPOTENT, IF_MATCH, CONFLICT))
async def close_household(body: CloseIn, _caller: Deciders, _idem: Idempotency, household: HouseholdToClose,
                          ctx: Ctx, response: Response) -> HouseholdPublic:
    await service.close(ctx, household, body)
    return await full_view(ctx, household, response)


@router.get("/{household_id}/status-history", operation_id="households:status-history",
            summary="Every register status change, newest first", response_model=Page[StatusChangePublic],
            responses=problems(ONE, LIST))
async def status_history(household: HouseholdInScope, ctx: Ctx, paging: Paging) -> Page[StatusChangePublic]:
    rows = await repository.status_history(ctx.session, household.id, paging.limit, paging.after)
    page, cursor = paginate(rows, paging, key=lambda s: [s.at.isoformat(), s.id])
    return Page[StatusChangePublic](items=[present.status_change(s) for s in page], next_cursor=cursor)


@router.get("/{household_id}/fact-history", operation_id="households:fact-history",
            summary="Every accepted fact value with its provenance, newest first", response_model=Page[FactPublic],
            responses=problems(ONE, LIST))
async def fact_history(household: HouseholdInScope, ctx: Ctx, paging: Paging) -> Page[FactPublic]:
    rows = await facts_repo.history_of(ctx.session, household.id, paging.limit, paging.after)
    page, cursor = paginate(rows, paging, key=lambda r: [r.id])
    audit.household_read(ctx, household.id, household.area_code, ("fact_history",))
    items = [FactPublic(fact=r.fact, value=r.value, source=r.source, record_id=r.record_id,
                        effective_date=r.effective_date, received_at=r.received_at) for r in page]
    return Page[FactPublic](items=items, next_cursor=cursor)


@router.post("/{household_id}/members", status_code=201, operation_id="households:add-member",
             summary="Add a member (a person belongs to at most one household)",
             response_model=HouseholdCreated, responses=problems(ONE, BODY, IDEMPOTENT, IF_MATCH, CONFLICT, extra=NEEDS_REVIEW))
async def add_member(body: MemberCreate, _idem: Idempotency, household: HouseholdForWrite, ctx: Ctx,
                     response: Response) -> HouseholdCreated:
    member, pending = await service.add_member(ctx, household, body)
    view = await full_view(ctx, household, response)
    if pending is not None:
        response.status_code = 202
    return HouseholdCreated(**view.model_dump(), pending_review=[pending] if pending else [])


@router.post("/{household_id}/surveys", status_code=201, operation_id="households:record-survey",
             summary="Record a door-to-door visit (走访排摸) and its findings", response_model=SurveyPublic,
             responses=problems(ONE, BODY, IDEMPOTENT))
async def record_survey(body: SurveyIn, household_id: HouseholdId, ctx: Ctx, _caller: Officials,
                        _idem: Idempotency) -> SurveyPublic:
    household = await service.load_in_scope(ctx, household_id, for_update=True)
    return present.survey(await service.record_survey(ctx, household, body))


@router.get("/{household_id}/surveys", operation_id="households:list-surveys", summary="Visits, newest first",
            response_model=Page[SurveyPublic], responses=problems(ONE, LIST))
async def list_surveys(household: HouseholdInScope, ctx: Ctx, paging: Paging) -> Page[SurveyPublic]:
    rows = await repository.surveys_of(ctx.session, household.id, paging.limit, paging.after)
    page, cursor = paginate(rows, paging, key=lambda s: [s.created_at.isoformat(), s.id])
    return Page[SurveyPublic](items=[present.survey(s) for s in page], next_cursor=cursor)

