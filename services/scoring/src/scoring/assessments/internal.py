"""GET /internal/snapshot/assessments: the latest assessment of every household, for a consumer
of scoring's feed that fell behind its retention (alerts). Service tokens only."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from servicekit.auth import ServiceCaller
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import BadRequest, Forbidden, Unauthorized, problem_responses
from servicekit.events.feed import current_head
from servicekit.pagination import decode_cursor, encode_cursor
from scoring.assessments import repository as repo
from scoring.deps import Engine
from scoring.engine.records import stored_payload

router = APIRouter(prefix="/internal/snapshot", tags=["internal"], route_class=TransactionalRoute)


class AssessmentSnapshot(BaseModel):
    position: int = Field(description="Scoring's feed head when this page was read: continue the feed from here")
    items: list[dict[str, Any]] = Field(description="assessment.updated payloads (docs/events.md)")
    next_cursor: str | None


@router.get("/assessments", operation_id="assessments:snapshot", response_model=AssessmentSnapshot,
            summary="The latest assessment of every household, in pages (service tokens only)",
            responses=problem_responses(Unauthorized, Forbidden, BadRequest))
async def snapshot(request: Request, session: Session, _caller: ServiceCaller, engine: Engine,
                   cursor: Annotated[str | None, Query(max_length=512)] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> Any:
    # The head is read first: events committed while the pages are read are delivered again by
    # the feed, and a consumer applying them by version loses nothing.
    position = await current_head(request.app.state.db)
    after = str(decode_cursor(cursor)[0]) if cursor else ""
    rows = await repo.snapshot_page(session, after, limit + 1)
    page = rows[:limit]
    items = []
    for a, c, ages in page:
        rt = await engine.runtimes.get(session, a.model_version)
        if rt is None:
            continue
        items.append(json.loads(stored_payload(rt, a, level=c.effective_level, previous_level=a.previous_level,
                                               previous_score=a.previous_score, cause=a.cause,
                                               member_ages=ages)))
    next_cursor = encode_cursor([page[-1][1].household_id]) if len(rows) > limit and page else None
    return AssessmentSnapshot(position=position, items=items, next_cursor=next_cursor)
