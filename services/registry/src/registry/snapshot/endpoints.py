"""``GET /internal/snapshot/households``: every household's scoring view, for a consumer that
fell behind the feed's retention (docs/events.md). Service tokens only; never routed publicly.
Member ages are those of the day the page is read (the city's calendar day).

A closed household is in it, saying so (``change``: ``closed``), so that a consumer that missed
the household.changed of its closing learns it here.

``position`` is the feed head when the snapshot began, carried in the cursor so every page
reports the same one; a consumer continues the feed from there and keeps the newer ``version``
of anything it sees twice.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from servicekit.auth import ServiceCaller
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import BadRequest
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.tables import utcnow

from registry.columns import city_day
from registry.households import repository
from registry.households.changes import member_ages
from registry.responses import LIST, problems

router = APIRouter(prefix="/internal/snapshot", tags=["internal"], route_class=TransactionalRoute)


class SnapshotItem(BaseModel):
    household_id: str
    version: int
    area_code: str
    township_code: str
    district_code: str
    label_masked: str
    synthetic: bool
    change: str = Field(description="closed: the household was closed (注销), its members released (as the "
                                    "household.changed that said so); updated: it is open", examples=["updated"])
    member_ages: list[int] = Field(description="Living members' ages in whole years, oldest first")
    view: dict[str, Any]
    missing: list[str]


class HouseholdSnapshot(BaseModel):
    position: int = Field(description="Feed head when the snapshot began: continue the feed after it")
    items: list[SnapshotItem]
    next_cursor: str | None


@router.get("/households", operation_id="snapshot:households", summary="All households' scoring views (service tokens)",
            response_model=HouseholdSnapshot, responses=problems(LIST))
async def household_snapshot(
    session: Session, _caller: ServiceCaller,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> HouseholdSnapshot:
    if cursor:
        values = decode_cursor(cursor)
        if len(values) != 2 or not isinstance(values[0], int):
            raise BadRequest("The cursor is not one this API handed out.")
        position, after = values[0], str(values[1])
    else:
        position, after = await repository.feed_head(session), ""
    rows = await repository.snapshot_page(session, after, limit)
    page = rows[:limit]
    members = await repository.member_facts_of(session, [r.id for r in page])
    today = city_day(utcnow())
    items = [SnapshotItem(household_id=r.id, version=r.version, area_code=r.area_code, township_code=r.area_code[:9] + "000",
                          district_code=r.area_code[:6] + "000000", label_masked=r.label_masked, synthetic=r.synthetic,
                          change="closed" if r.closed_on is not None else "updated",
                          member_ages=member_ages(members.get(r.id, []), today), view=r.view, missing=r.missing or [])
             for r in page]
    next_cursor = encode_cursor([position, page[-1].id]) if len(rows) > limit and page else None
    return HouseholdSnapshot(position=position, items=items, next_cursor=next_cursor)
