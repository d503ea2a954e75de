"""Areas, read-only: the flat list with filters, a subtree, and one area with its parent chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from servicekit.auth import CurrentCaller
from servicekit.db import TransactionalRoute
from servicekit.errors import NotFound
from servicekit.pagination import Page, Paging, paginate

from registry.areas.schemas import AreaCounts, AreaDetail, AreaNode, AreaPublic
from registry.responses import LIST, ONE, problems
from registry.deps import Profile
from registry.profile.areas import Area, AreaTree, Level

router = APIRouter(prefix="/api/v1/areas", tags=["areas"], route_class=TransactionalRoute)

AreaCode = Annotated[str, Path(pattern=r"^\d{12}$", examples=["330106001001"])]


def public(area: Area) -> AreaPublic:
    return AreaPublic(code=area.code, name=area.name, level=area.level, kind=area.kind,
                      centroid=area.centroid, parent_code=area.parent, children_count=len(area.children))


def node(tree: AreaTree, area: Area, depth: int) -> AreaNode:
    children = [node(tree, tree.get(c), depth - 1) for c in area.children] if depth > 0 else []  # type: ignore[arg-type]
    return AreaNode(code=area.code, name=area.name, level=area.level, kind=area.kind,
                    centroid=area.centroid, children=children)


@router.get("", operation_id="areas:list", summary="List areas, flat, by level or parent",
            response_model=Page[AreaPublic], responses=problems(LIST))
async def list_areas(
    profile: Profile, _caller: CurrentCaller, paging: Paging,
    level: Annotated[Level | None, Query()] = None,
    parent: Annotated[str | None, Query(pattern=r"^\d{12}$", description="Only the children of this area")] = None,
) -> Page[AreaPublic]:
    tree = profile.areas
    if parent is not None:
        parent_area = tree.get(parent)
        candidates = [tree.get(c) for c in parent_area.children] if parent_area else []
    else:
        candidates = tree.by_level[level] if level else [tree.get(tree.city), *(a for lv in Level if lv is not Level.city for a in tree.by_level[lv])]
    after = str(paging.after[0]) if paging.after else ""
    rows = sorted((a for a in candidates if a is not None and (level is None or a.level is level) and a.code > after),
                  key=lambda a: a.code)[: paging.limit + 1]
    page, cursor = paginate(rows, paging, key=lambda a: [a.code])
    return Page[AreaPublic](items=[public(a) for a in page], next_cursor=cursor)


@router.get("/counts", operation_id="areas:counts", summary="How many districts, townships and villages",
            response_model=AreaCounts, responses=problems())
async def count_areas(profile: Profile, _caller: CurrentCaller) -> AreaCounts:
    return AreaCounts(**profile.areas.counts())


@router.get("/tree", operation_id="areas:tree", summary="The area tree below a root, to a depth",
            response_model=AreaNode, responses=problems(ONE))
async def area_tree(
    profile: Profile, _caller: CurrentCaller,
    root: Annotated[str | None, Query(pattern=r"^\d{12}$", description="Default: the city")] = None,
    depth: Annotated[int, Query(ge=0, le=3)] = 1,
) -> AreaNode:
    area = profile.areas.get(root or profile.areas.city)
    if area is None:
        raise NotFound("No area with that code is in the city profile.")
    return node(profile.areas, area, depth)


@router.get("/{code}", operation_id="areas:get", summary="One area with its parent chain and children",
            response_model=AreaDetail, responses=problems(ONE))
async def get_area(code: AreaCode, profile: Profile, _caller: CurrentCaller) -> AreaDetail:
    tree = profile.areas
    area = tree.get(code)
    if area is None:
        raise NotFound("No area with that code is in the city profile.")
    return AreaDetail(**public(area).model_dump(), parents=[public(a) for a in tree.chain(code)],
                      children=[public(tree.get(c)) for c in area.children])  # type: ignore[arg-type]
