"""GET /internal/snapshot/assessments: the latest assessment of every household, for a consumer
of scoring's feed that fell behind its retention (alerts); GET /internal/snapshot/withdrawn: the
withdrawal of every closed household, for the same consumer. Service tokens only."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from servicekit.auth import ServiceCaller
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import BadRequest, Forbidden, Unauthorized, problem_responses
from servicekit.events.feed import current_head
from servicekit.pagination import decode_cursor, encode_cursor
from scoring.assessments import repository as repo
from scoring.deps import Engine
from scoring.engine.records import stored_payload
from scoring.households import repository as households_repo
from scoring.households.service import withdrawal

router = APIRouter(prefix="/internal/snapshot", tags=["internal"], route_class=TransactionalRoute)


class AssessmentSnapshot(BaseModel):
    position: int = Field(description="Scoring's feed head when this page was read: continue the feed from here")
    items: list[dict[str, Any]] = Field(description="assessment.updated payloads, or assessment.withdrawn for "
                                                    "/withdrawn (docs/events.md)")
    next_cursor: str | None


SNAPSHOT = {"response_model": AssessmentSnapshot, "responses": problem_responses(Unauthorized, Forbidden, BadRequest)}


class Page:
    """A page's request: the feed head (read first: events committed while the pages are read are
    delivered again by the feed, and a consumer applying them by version loses nothing), the
    household id it goes on after, and its size."""

    def __init__(self, request: Request, _caller: ServiceCaller,
                 cursor: Annotated[str | None, Query(max_length=512)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> None:
        self.request, self.limit = request, limit
        self.after = str(decode_cursor(cursor)[0]) if cursor else ""

    async def head(self) -> int:
        return await current_head(self.request.app.state.db)


@router.get("/assessments", operation_id="assessments:snapshot",
            summary="The latest assessment of every household, in pages (service tokens only)", **SNAPSHOT)
async def snapshot(page: Annotated[Page, Depends()], session: Session, engine: Engine) -> Any:
    position = await page.head()
    rows = await repo.snapshot_page(session, page.after, page.limit + 1)
    shown = rows[:page.limit]
    items = []
    for a, c, ages in shown:
        rt = await engine.runtimes.get(session, a.model_version)
        if rt is None:
            continue
        items.append(json.loads(stored_payload(rt, a, level=c.effective_level, previous_level=a.previous_level,
                                               previous_score=a.previous_score, cause=a.cause,
                                               member_ages=ages)))
    next_cursor = encode_cursor([shown[-1][1].household_id]) if len(rows) > page.limit and shown else None
    return AssessmentSnapshot(position=position, items=items, next_cursor=next_cursor)


@router.get("/withdrawn", operation_id="assessments:snapshot_withdrawn",
            summary="The withdrawals of every closed household that had an assessment, in pages (service tokens only)",
            **SNAPSHOT)
async def withdrawn(page: Annotated[Page, Depends()], session: Session) -> Any:
    """What a consumer that fell behind the feed may have missed of ``assessment.withdrawn``: the
    assessments snapshot holds open households only, and a household's absence from it is no
    proof that it was closed (an empty snapshot would say so of every one)."""
    position = await page.head()
    rows, last = await households_repo.withdrawn_page(session, page.after, page.limit)
    items = [withdrawal(h, assessment_id, level, h.updated_at) for h, assessment_id, level in rows]
    return AssessmentSnapshot(position=position, items=items, next_cursor=encode_cursor([last]) if last else None)
