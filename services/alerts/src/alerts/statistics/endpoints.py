"""Route of the statistics (/api/v1/alerts/statistics)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from servicekit.db import Session, TransactionalRoute
from servicekit.errors import BadRequest, Forbidden, Unauthorized, problem_responses
from servicekit.isotime import Instant

from alerts.alert.auth import AlertReader
from alerts.deps import CurrentProfile
from alerts.statistics import repository, service
from alerts.statistics.schemas import Statistics

router = APIRouter(prefix="/api/v1/alerts", tags=["statistics"], route_class=TransactionalRoute)


@router.get(
    "/statistics",
    operation_id="alerts:statistics",
    summary="Per township or district: open, overdue, on-time verification, dispositions, rule precision",
    response_model=Statistics,
    responses=problem_responses(BadRequest, Unauthorized, Forbidden),
)
async def alert_statistics(
    session: Session,
    caller: AlertReader,
    profile: CurrentProfile,
    group_by: Annotated[Literal["township", "district"], Query()] = "township",
    raised_from: Annotated[Instant | None, Query(description="Alerts raised at or after (with offset)")] = None,
    raised_until: Annotated[Instant | None, Query(description="Alerts raised before (with offset)")] = None,
) -> Statistics:
    for moment in (raised_from, raised_until):
        if moment is not None and moment.tzinfo is None:
            raise BadRequest("Give the period with a time zone offset, e.g. 2026-11-01T00:00:00+08:00.")
    column = f"{group_by}_code"
    facts = await repository.alert_facts(session, caller, column, raised_from, raised_until)
    outcomes = await repository.rule_outcomes(session, caller, column, raised_from, raised_until)
    facts_by, outcomes_by = service.by_area(facts), service.by_area(outcomes)
    items = [service.aggregate(area, facts_by[area], outcomes_by.get(area, []), profile) for area in sorted(facts_by)]
    return Statistics(
        group_by=group_by, raised_from=raised_from, raised_until=raised_until, items=items,
        total=service.aggregate("total", facts, outcomes, profile),
    )
