"""Declarations (主动申报): citizens submit and follow theirs; workers review them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from servicekit.concurrency import check_version, expected_version, set_etag
from servicekit.db import TransactionalRoute
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from registry.declarations import repository, service
from registry.declarations.schemas import DeclarationIn, DeclarationPublic, RejectIn
from registry.responses import BODY, CONFLICT, IDEMPOTENT, IF_MATCH, LIST, ONE, problems
from registry.deps import Citizens, Ctx, Deciders

router = APIRouter(prefix="/api/v1/declarations", tags=["declarations"], route_class=TransactionalRoute)

DeclarationId = Annotated[str, Path(min_length=36, max_length=36)]


@router.post("", status_code=201, operation_id="declarations:submit",
             summary="Declare difficulty or report a change (citizens, via 浙里办)", response_model=DeclarationPublic,
             responses=problems(BODY, IDEMPOTENT))
async def submit(body: DeclarationIn, _caller: Citizens, _idem: Idempotency, ctx: Ctx, response: Response) -> DeclarationPublic:
    declaration = await service.submit(ctx, body)
    await ctx.session.flush()
    set_etag(response, declaration.version)
    response.headers["Location"] = f"/api/v1/declarations/{declaration.id}"
    return service.public(ctx, declaration)


@router.get("", operation_id="declarations:list",
            summary="A citizen's own declarations, or those in a worker's jurisdiction", response_model=Page[DeclarationPublic],
            responses=problems(LIST))
async def list_declarations(ctx: Ctx, paging: Paging,
                            status: Annotated[str | None, Query(pattern=r"^(submitted|accepted|rejected)$")] = None,
                            ) -> Page[DeclarationPublic]:
    rows = await repository.search(ctx.session, service.visible(ctx), status=status, limit=paging.limit,
                                   after=paging.after)
    page, cursor = paginate(rows, paging, key=lambda d: [d.created_at.isoformat(), d.id])
    return Page[DeclarationPublic](items=[service.public(ctx, d) for d in page], next_cursor=cursor)


@router.get("/{declaration_id}", operation_id="declarations:get", summary="One declaration and its progress",
            response_model=DeclarationPublic, responses=problems(ONE))
async def get_declaration(declaration_id: DeclarationId, ctx: Ctx, response: Response) -> DeclarationPublic:
    declaration = await service.load(ctx, declaration_id)
    set_etag(response, declaration.version)
    return service.public(ctx, declaration)


@router.post("/{declaration_id}/accept", operation_id="declarations:accept",
             summary="Accept: the household is created or updated, with the trigger declaration_accepted",
             response_model=DeclarationPublic, responses=problems(ONE, IDEMPOTENT, IF_MATCH, CONFLICT))
async def accept(declaration_id: DeclarationId, _caller: Deciders, _idem: Idempotency, ctx: Ctx,
                 request: Request, response: Response) -> DeclarationPublic:
    expected = expected_version(request)
    declaration = await service.load(ctx, declaration_id, for_update=True)
    check_version(expected, declaration.version)
    await service.accept(ctx, declaration)
    set_etag(response, declaration.version)
    return service.public(ctx, declaration)


@router.post("/{declaration_id}/reject", operation_id="declarations:reject",
             summary="Reject, with a reason the citizen sees", response_model=DeclarationPublic, responses=problems(ONE, BODY, IDEMPOTENT, IF_MATCH, CONFLICT))
async def reject(declaration_id: DeclarationId, body: RejectIn, _caller: Deciders, _idem: Idempotency, ctx: Ctx,
                 request: Request, response: Response) -> DeclarationPublic:
    expected = expected_version(request)
    declaration = await service.load(ctx, declaration_id, for_update=True)
    check_version(expected, declaration.version)
    service.reject(ctx, declaration, body)
    set_etag(response, declaration.version)
    return service.public(ctx, declaration)
