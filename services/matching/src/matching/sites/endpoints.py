"""/api/v1/sites: the consortium's sites; everyone signed in reads, administrators write."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from servicekit.concurrency import expected_version, set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, PreconditionFailed, PreconditionRequired, problem_responses
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from matching.paging import after_key
from matching.deps import Administrator, Anyone, CurrentProfile
from matching.problems import UnknownReference
from matching.sites import repository, service
from matching.sites.schemas import SiteCreate, SiteFilters, SitePublic, SiteUpdate

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], route_class=TransactionalRoute)


@router.get("", operation_id="sites:list", summary="List sites (区县助联体, 镇街服务站, 村社服务点)",
            response_model=Page[SitePublic], responses=problem_responses(Forbidden))
async def list_sites(session: Session, _caller: Anyone, profile: CurrentProfile, paging: Paging,
                     filters: Annotated[SiteFilters, Depends()]) -> Page[SitePublic]:
    after = after_key(paging)
    rows = await repository.page(session, filters, after, paging.limit)
    items, cursor = paginate(rows, paging, lambda s: (s.code,))
    return Page(items=[service.public(s, profile) for s in items], next_cursor=cursor)


@router.get("/{code}", operation_id="sites:get", summary="One site", response_model=SitePublic,
            responses=problem_responses(Forbidden, NotFound))
async def get_site(code: str, session: Session, _caller: Anyone, profile: CurrentProfile,
                   response: Response) -> SitePublic:
    site = await repository.get(session, code)
    if site is None:
        raise NotFound("No site has that code.")
    set_etag(response, site.version)
    return service.public(site, profile)


@router.post("", status_code=201, operation_id="sites:create", summary="Add a site (city or district officers)",
             response_model=SitePublic, responses=problem_responses(Forbidden, NotFound, UnknownReference))
async def create_site(body: SiteCreate, session: Session, caller: Administrator, profile: CurrentProfile,
                      response: Response, _idem: Idempotency) -> SitePublic:
    site = await service.create(session, profile, caller, body)
    set_etag(response, site.version)
    response.headers["Location"] = f"/api/v1/sites/{site.code}"
    return service.public(site, profile)


@router.patch("/{code}", operation_id="sites:update", summary="Change a site (needs If-Match)",
              response_model=SitePublic,
              responses=problem_responses(Forbidden, NotFound, PreconditionFailed, PreconditionRequired, UnknownReference))
async def update_site(code: str, body: SiteUpdate, request: Request, session: Session, caller: Administrator,
                      profile: CurrentProfile, response: Response) -> SitePublic:
    site = await service.update(session, profile, caller, code, expected_version(request), body)
    set_etag(response, site.version)
    return service.public(site, profile)
