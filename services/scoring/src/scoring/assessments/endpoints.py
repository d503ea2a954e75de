"""/api/v1/assessments: a household's score, its reasons, its history, what would help, and an
officer's review. Reads are scoped to the caller's jurisdiction and audited."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response

from servicekit.audit import AuditAction, record
from servicekit.concurrency import expected_version, set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import (
    BadRequest, Forbidden, NotFound, PreconditionFailed, PreconditionRequired, Unauthorized, Unprocessable,
    problem_responses,
)
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate
from scoring.assessments import repository as repo
from scoring.assessments import service
from scoring.assessments.deps import OUT_OF_SCOPE, HouseholdId, HouseholdInScope
from scoring.assessments.explain import assessment_out
from scoring.assessments.schemas import (
    AssessmentOut, AssessmentSummary, FactChange, HelpOption, LeverOut, ReviewCreate, WhatWouldHelp,
)
from scoring.assessments.tables import CurrentAssessment
from scoring.deps import Engine, Reader, Reviewer
from scoring.engine.help import sentences, what_would_help
from scoring.households import repository as households

router = APIRouter(prefix="/api/v1/assessments", tags=["assessments"], route_class=TransactionalRoute)
ONE = problem_responses(Unauthorized, Forbidden, NotFound)
Code = Annotated[str | None, Query(max_length=48, pattern=r"^[a-z][a-z0-9_]*$")]


def summary(c: CurrentAssessment) -> AssessmentSummary:
    return AssessmentSummary(
        household_id=c.household_id, assessment_id=c.assessment_id, label_masked=c.label_masked,
        area_code=c.area_code, score=c.score, level=c.level, effective_level=c.effective_level,
        difficulty=c.difficulty, five_types=c.five_types.split(), needs=c.needs.split(),
        unclaimed_policies=c.unclaimed_policies.split(), reviewed=c.review_id is not None,
        model_version=c.model_version, assessed_at=c.assessed_at,
    )


@router.get("", operation_id="assessments:list", response_model=Page[AssessmentSummary],
            summary="Current assessments in your jurisdiction, weakest first",
            responses=problem_responses(Unauthorized, Forbidden, BadRequest))
async def list_assessments(
    session: Session, caller: Reader, paging: Paging,
    level: Annotated[int | None, Query(ge=1, le=9, description="Effective level")] = None,
    area_code: Annotated[str | None, Query(pattern=r"^\d{4,12}$", description="Area code prefix")] = None,
    difficulty: Code = None, five_type: Code = None, need: Code = None,
    unclaimed_policy: Annotated[str | None, Query(max_length=48, pattern=r"^[a-z][a-z0-9_]*$",
                                                  description="Eligible for this policy but not receiving it (政策找人)")] = None,
    reviewed: bool | None = None,
) -> Any:
    filters = repo.ListFilters(level, area_code, difficulty, five_type, need, unclaimed_policy, reviewed)
    rows = await repo.list_current(session, caller, filters, paging)
    page, cursor = paginate(rows, paging, key=lambda r: [r.score, r.household_id])
    record(session, caller, AuditAction.read_masked, "assessment_list", caller.scope_prefix or "city",
           ["score", "level", "portrait"], purpose="list", area_code=area_code)
    return Page[AssessmentSummary](items=[summary(r) for r in page], next_cursor=cursor)


@router.get("/{household_id}", operation_id="assessments:get", response_model=AssessmentOut,
            summary="A household's current assessment: score, dimensions, every reason and the facts behind it",
            responses=ONE)
async def get_assessment(found: HouseholdInScope, session: Session, response: Response) -> Any:
    current = found.current
    review = await repo.review(session, current.review_id) if current.review_id else None
    if review is None:
        latest = await repo.reviews(session, current.household_id, limit=1)
        review = latest[0] if latest else None
    before = await repo.assessment(session, found.assessment.previous_id) if found.assessment.previous_id else None
    record(session, found.caller, AuditAction.read_masked, "assessment", current.household_id,
           ["score", "indicators", "facts"], area_code=current.area_code)
    set_etag(response, current.etag)
    return assessment_out(found.runtime, found.assessment, current, found.view, review, before)


@router.get("/{household_id}/history", operation_id="assessments:history", response_model=Page[AssessmentOut],
            summary="Every assessment of a household, newest first, each with its difference from the one before",
            responses=ONE)
async def assessment_history(found: HouseholdInScope, session: Session, engine: Engine, paging: Paging) -> Any:
    rows = await repo.history(session, found.current.household_id, paging)
    page, cursor = paginate(rows, paging, key=lambda r: [r.number])
    by_id = {a.id: a for a in rows}  # the one before each is usually on the page (or one past it)
    items = []
    for a in page:
        rt = await engine.runtimes.get(session, a.model_version)
        before = by_id.get(a.previous_id or "") or (await repo.assessment(session, a.previous_id) if a.previous_id else None)
        if rt is not None:
            items.append(assessment_out(rt, a, found.current, found.view, None, before))
    record(session, found.caller, AuditAction.read_masked, "assessment_history", found.current.household_id,
           ["score", "indicators"], area_code=found.current.area_code)
    return Page[AssessmentOut](items=items, next_cursor=cursor)


@router.get("/{household_id}/what-would-help", operation_id="assessments:what_would_help", response_model=WhatWouldHelp,
            summary="The smallest sets of changes help could bring that lift the household a band", responses=ONE)
async def help_household(found: HouseholdInScope, session: Session, engine: Engine) -> Any:
    if found.view is None:
        raise NotFound(OUT_OF_SCOPE)
    rt = await engine.runtimes.active(session)
    row = np.frombuffer(found.view.features, dtype=np.float64).copy()
    if found.view.layout != rt.ctx.view.layout:
        row = rt.ctx.view.prepare(found.view.view, found.view.missing).row
    result = what_would_help(rt, row, engine.settings.help_max_levers)
    options = []
    for o in result.options:
        zh, en = sentences(rt, o)
        options.append(HelpOption(
            levers=[LeverOut(code=rt.model.levers[j].code, label_zh=rt.model.levers[j].label_zh,
                             label_en=rt.model.levers[j].label_en) for j in o.levers],
            score=o.score, level=o.level, changes=[FactChange(field=f, before=b, after=a) for f, b, a in o.changes],
            indicators_removed=o.removed, indicators_added=o.added, sentence_zh=zh, sentence_en=en,
        ))
    record(session, found.caller, AuditAction.read_masked, "assessment_help", found.current.household_id,
           ["score", "facts"], area_code=found.current.area_code)
    return WhatWouldHelp(
        household_id=found.current.household_id, model_version=rt.version, score=result.score, level=result.level,
        target_level=result.target_level, target_score=result.target_score, lifted=result.lifted, options=options,
        levers_considered=result.levers_considered, max_levers=engine.settings.help_max_levers,
        combinations_scored=result.combinations,
    )


@router.put("/{household_id}/review", operation_id="assessments:review", response_model=AssessmentOut,
            summary="Record an officer's reviewed level beside the computed one (If-Match)",
            responses=problem_responses(Unauthorized, Forbidden, NotFound, PreconditionFailed, PreconditionRequired,
                                        Unprocessable))
async def review_assessment(household_id: HouseholdId, body: ReviewCreate, request: Request, session: Session,
                            caller: Reviewer, engine: Engine, _idem: Idempotency, response: Response) -> Any:
    current = await service.record_review(
        session, engine.runtimes, caller, household_id, expected=expected_version(request), level=body.level,
        reason=body.reason, settings=engine.settings, wake=engine.wake,
    )
    assessment = await repo.assessment(session, current.assessment_id)
    rt = await engine.runtimes.get(session, current.model_version)
    if assessment is None or rt is None:
        raise NotFound(OUT_OF_SCOPE)
    review = await repo.review(session, current.review_id or "")
    view = await households.in_scope(session, caller, household_id)
    before = await repo.assessment(session, assessment.previous_id) if assessment.previous_id else None
    record(session, caller, AuditAction.write, "assessment_review", household_id, ["reviewed_level", "reason"],
           area_code=current.area_code)
    set_etag(response, current.etag)
    return assessment_out(rt, assessment, current, view, review, before)
