"""/api/v1/catalogue: the 31 services in 9 categories, read-only, from config/catalogues/."""

from __future__ import annotations

from fastapi import APIRouter

from servicekit.errors import Forbidden, NotFound, problem_responses

from matching.catalogue.schemas import CataloguePublic, CategoryPublic, ServicePublic
from matching.deps import Anyone, CurrentProfile
from matching.profile.catalogue import Service

router = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])


def _service(s: Service) -> ServicePublic:
    return ServicePublic(code=s.code, name_zh=s.name_zh, name_en=s.name_en, category=s.category,
                         need_types=list(s.need_types))


@router.get("", operation_id="catalogue:get", summary="The service catalogue (9大类31项帮扶服务)",
            response_model=CataloguePublic, responses=problem_responses(Forbidden))
async def get_catalogue(_caller: Anyone, profile: CurrentProfile) -> CataloguePublic:
    cat = profile.catalogue
    return CataloguePublic(
        need_types=cat.need_types,
        categories=[CategoryPublic(code=c.code, name_zh=c.name_zh, name_en=c.name_en,
                                   services=[_service(s) for s in c.services]) for c in cat.categories],
    )


@router.get("/{service_code}", operation_id="catalogue:get-service", summary="One service of the catalogue",
            response_model=ServicePublic, responses=problem_responses(Forbidden, NotFound))
async def get_service(service_code: str, _caller: Anyone, profile: CurrentProfile) -> ServicePublic:
    service = profile.catalogue.services.get(service_code)
    if service is None:
        raise NotFound("The catalogue has no service with that code.")
    return _service(service)
