"""``GET /internal/snapshot/alerts`` (service tokens): every alert as the feed describes it, for a
consumer (matching) that fell behind the feed's retention and must resynchronise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from servicekit.auth import ServiceCaller
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import BadRequest, Unauthorized, problem_responses
from servicekit.events.feed import current_head
from servicekit.pagination import decode_cursor, encode_cursor

from alerts.alert import events, repository
from alerts.alert.schemas import Snapshot

router = APIRouter(prefix="/internal/snapshot", tags=["internal"], route_class=TransactionalRoute)


@router.get(
    "/alerts", operation_id="alerts:snapshot", response_model=Snapshot,
    summary="Every alert with its version, status and (when disposed) its referral",
    responses=problem_responses(BadRequest, Unauthorized),
)
async def snapshot(
    request: Request,
    session: Session,
    _caller: ServiceCaller,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Snapshot:
    if cursor:
        after_id, position = decode_cursor(cursor)
    else:
        after_id, position = None, await current_head(request.app.state.db)
    rows = await repository.snapshot_page(session, after_id, limit)
    page = rows[:limit]
    items = []
    for a in page:
        item = {**events.raised_payload(a), "version": a.version, "status": a.status,
                "overdue": a.overdue_at is not None, "escalated_to": a.escalated_to}
        if a.status == "disposed":
            item |= events.disposed_payload(a)
        items.append(item)
    next_cursor = encode_cursor([page[-1].id, position]) if len(rows) > limit and page else None
    return Snapshot(position=int(position), items=items, next_cursor=next_cursor)
