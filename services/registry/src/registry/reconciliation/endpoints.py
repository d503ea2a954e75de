"""The city-level reconciliation queue: list, read and decide cases (city officers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from servicekit.concurrency import check_version, expected_version, set_etag
from servicekit.db import TransactionalRoute
from servicekit.errors import NotFound
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from registry.responses import BODY, CONFLICT, IDEMPOTENT, IF_MATCH, LIST, ONE, problems
from registry.deps import CityOfficers, Ctx
from registry.reconciliation import repository, service
from registry.reconciliation.schemas import CasePublic, ResolveIn

router = APIRouter(prefix="/api/v1/reconciliation", tags=["reconciliation"], route_class=TransactionalRoute)

CaseId = Annotated[str, Path(min_length=36, max_length=36)]


async def _load(ctx: Ctx, case_id: str, *, for_update: bool = False):
    case = await repository.get(ctx.session, case_id, for_update=for_update)
    if case is None:
        raise NotFound("No reconciliation case with that id.")
    return case


@router.get("", operation_id="reconciliation:list", summary="Cases waiting for (or past) a city decision",
            response_model=Page[CasePublic], responses=problems(LIST))
async def list_cases(ctx: Ctx, _caller: CityOfficers, paging: Paging, status: str | None = None) -> Page[CasePublic]:
    rows = await repository.search(ctx.session, status=status, limit=paging.limit, after=paging.after)
    page, cursor = paginate(rows, paging, key=lambda c: [c.created_at.isoformat(), c.id])
    return Page[CasePublic](items=[service.public(c) for c in page], next_cursor=cursor)


@router.get("/{case_id}", operation_id="reconciliation:get", summary="One case", response_model=CasePublic,
            responses=problems(ONE))
async def get_case(case_id: CaseId, ctx: Ctx, _caller: CityOfficers, response: Response) -> CasePublic:
    case = await _load(ctx, case_id)
    set_etag(response, case.version)
    return service.public(case)


@router.post("/{case_id}/resolve", operation_id="reconciliation:resolve",
             summary="Decide a case: move the person, or keep them where they are", response_model=CasePublic,
             responses=problems(ONE, BODY, IDEMPOTENT, IF_MATCH, CONFLICT))
async def resolve_case(case_id: CaseId, body: ResolveIn, _caller: CityOfficers, _idem: Idempotency, ctx: Ctx,
                       request: Request, response: Response) -> CasePublic:
    expected = expected_version(request)
    case = await _load(ctx, case_id, for_update=True)
    check_version(expected, case.version)
    await service.resolve(ctx, case, body)
    set_etag(response, case.version)
    return service.public(case)
