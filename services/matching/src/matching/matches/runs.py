"""/api/v1/matches/runs: start a run of the engine (incremental by officials, full by the city)
and read past runs."""

from __future__ import annotations


from fastapi import APIRouter, Request

from servicekit.auth import Role
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, problem_responses
from servicekit.pagination import Page, Paging, paginate

from matching.paging import after_time
from matching.deps import Official, Reader
from matching.engine.runner import run
from matching.matches import repository
from matching.matches.schemas import RunPublic, RunRequest

router = APIRouter(prefix="/api/v1/matches/runs", tags=["matches"])
reads = APIRouter(prefix="/api/v1/matches/runs", tags=["matches"], route_class=TransactionalRoute)


@router.post("", status_code=201, operation_id="matches:run",
             summary="Run the engine now: incremental (officials) or full (city administrators)",
             response_model=RunPublic, responses=problem_responses(Forbidden))
async def start_run(body: RunRequest, request: Request, caller: Official) -> RunPublic:
    if body.mode == "full" and caller.role is not Role.city_admin:
        raise Forbidden("A full run reconsiders every proposal in the city: city administrators only.")
    app = request.app
    report = await run(app.state.db, app.state.profile, mode=body.mode, triggered_by=f"{caller.role.value}:{caller.subject}")
    async with app.state.db.sessionmaker() as session:
        stored = await repository.run(session, report.id)
    assert stored is not None
    return RunPublic.model_validate(stored, from_attributes=True)


@reads.get("", operation_id="matches:runs", summary="Past runs of the engine, newest first",
           response_model=Page[RunPublic], responses=problem_responses(Forbidden))
async def list_runs(session: Session, _caller: Reader, paging: Paging) -> Page[RunPublic]:
    after = after_time(paging)
    rows = await repository.runs(session, after, paging.limit)
    items, cursor = paginate(rows, paging, lambda r: (r.started_at.isoformat(), r.id))
    return Page(items=[RunPublic.model_validate(r, from_attributes=True) for r in items], next_cursor=cursor)


@reads.get("/{run_id}", operation_id="matches:get-run", summary="One run of the engine", response_model=RunPublic,
           responses=problem_responses(Forbidden, NotFound))
async def get_run(run_id: str, session: Session, _caller: Reader) -> RunPublic:
    found = await repository.run(session, run_id)
    if found is None:
        raise NotFound("No run has that id.")
    return RunPublic.model_validate(found, from_attributes=True)
