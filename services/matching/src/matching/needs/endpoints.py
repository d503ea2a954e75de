"""/api/v1/needs: workers record needs after a visit, citizens ask through Zheliban; officials
read the needs of their jurisdiction, citizens their own. Partners see needs through matches."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from servicekit.auth import Role
from servicekit.concurrency import set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, PreconditionFailed, Unprocessable, problem_responses
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from matching.concurrency import check_if_match
from matching.paging import after_time
from matching.deps import Anyone, Citizen, CurrentBlindIndex, CurrentProfile, Official
from matching.needs import repository, service
from matching.needs.schemas import CitizenNeedCreate, NeedCreate, NeedOwn, NeedPublic, NeedSource, NeedStatus
from matching.problems import InvalidTransition, UnknownReference
from matching.schemas import Code

router = APIRouter(prefix="/api/v1/needs", tags=["needs"], route_class=TransactionalRoute)


@router.post("", status_code=201, operation_id="needs:create",
             summary="Record a need after a visit (village and township workers, officers)", response_model=NeedPublic,
             responses=problem_responses(Forbidden, NotFound, UnknownReference, Unprocessable))
async def create_need(body: NeedCreate, session: Session, caller: Official, profile: CurrentProfile,
                      response: Response, _idem: Idempotency) -> NeedPublic:
    need = await service.create_by_worker(session, profile, caller, body)
    set_etag(response, need.version)
    response.headers["Location"] = f"/api/v1/needs/{need.id}"
    return service.public(need, profile)


@router.post("/mine", status_code=201, operation_id="needs:create-mine",
             summary="Ask for help or make a micro-wish (微心愿) through Zheliban (citizens)", response_model=NeedOwn,
             responses=problem_responses(Forbidden, UnknownReference, Unprocessable))
async def create_my_need(body: CitizenNeedCreate, session: Session, caller: Citizen, profile: CurrentProfile,
                         index: CurrentBlindIndex, response: Response,
                         _idem: Idempotency) -> NeedOwn:
    need = await service.create_by_citizen(session, profile, index, caller, body)
    set_etag(response, need.version)
    return service.own(need)


@router.get("", operation_id="needs:list",
            summary="Needs of your jurisdiction (officials), or your own (citizens)",
            response_model=Page[NeedPublic] | Page[NeedOwn], responses=problem_responses(Forbidden))
async def list_needs(session: Session, caller: Anyone, profile: CurrentProfile, index: CurrentBlindIndex,
                     paging: Paging, status: Annotated[NeedStatus | None, Query()] = None,
                     service_code: Annotated[Code | None, Query(alias="service")] = None,
                     source: Annotated[NeedSource | None, Query()] = None,
                     area: Annotated[str | None, Query(pattern=r"^\d{4,12}$")] = None) -> Any:
    if caller.role in (Role.partner, Role.department):
        raise Forbidden("Partners see needs through their matches.")
    citizen = caller.role is Role.citizen
    after = after_time(paging)
    rows = await repository.page(
        session, scope=None if citizen else repository.in_scope(caller),
        requester=service.resident_digest(index, caller.resident_id) if citizen else None,
        status=status.value if status else None, service=service_code, source=source.value if source else None,
        area=area, after=after, limit=paging.limit,
    )
    items, cursor = paginate(rows, paging, lambda n: (n.created_at.isoformat(), n.id))
    if citizen:
        return Page[NeedOwn](items=await service.own_views(session, items), next_cursor=cursor)
    return Page[NeedPublic](items=await service.public_views(session, profile, items), next_cursor=cursor)


@router.get("/{need_id}", operation_id="needs:get", summary="One need", response_model=NeedPublic | NeedOwn,
            responses=problem_responses(Forbidden, NotFound))
async def get_need(need_id: str, session: Session, caller: Anyone, profile: CurrentProfile,
                   index: CurrentBlindIndex, response: Response) -> Any:
    need = await service.visible(session, caller, index, need_id)
    set_etag(response, need.version)
    if caller.role is Role.citizen:
        return (await service.own_views(session, [need]))[0]
    return (await service.public_views(session, profile, [need]))[0]


@router.post("/{need_id}/cancel", operation_id="needs:cancel",
             summary="Cancel an open need, proposal or not (officials of its area, or the citizen who asked)",
             response_model=NeedPublic | NeedOwn,
             responses=problem_responses(Forbidden, NotFound, InvalidTransition, PreconditionFailed))
async def cancel_need(need_id: str, request: Request, session: Session, caller: Anyone,
                      profile: CurrentProfile, index: CurrentBlindIndex, response: Response,
                      _idem: Idempotency) -> Any:
    need = await service.cancel(session, caller, index, need_id, partial(check_if_match, request))
    set_etag(response, need.version)
    return service.own(need) if caller.role is Role.citizen else service.public(need, profile)
