"""Routes of the working calendar (/api/v1/calendar): what deadlines are counted on."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from servicekit.auth import CurrentCaller
from servicekit.errors import BadRequest, NotFound, Unauthorized, problem_responses
from servicekit.isotime import Instant

from alerts.deadline.rules import compute_deadline, to_local
from alerts.deadline.schemas import CalendarOverview, CalendarYearPublic, ClassDeadline, DeadlinePreview, HolidayPublic
from alerts.deps import CurrentProfile

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])

FALLBACK = "Working days fall back to calendar days (never a later deadline); the alert says calendar_days_fallback."


@router.get("", operation_id="calendar:get", response_model=CalendarOverview, summary="How deadlines are counted",
            responses=problem_responses(Unauthorized))
async def overview(_caller: CurrentCaller, profile: CurrentProfile) -> CalendarOverview:
    d = profile.deadlines
    return CalendarOverview(
        timezone=d.timezone, counting=d.counting,
        classes={k: ClassDeadline(**v.model_dump()) for k, v in d.classes.items()},
        known_years=profile.calendar.known_years, unknown_years=FALLBACK,
    )


@router.get("/deadline", operation_id="calendar:deadline", response_model=DeadlinePreview,
            summary="The deadline an alert raised at a given instant would get",
            responses=problem_responses(BadRequest, Unauthorized))
async def deadline_preview(
    _caller: CurrentCaller,
    profile: CurrentProfile,
    raised_at: Annotated[Instant, Query(description="With its offset, e.g. 2026-09-30T10:00:00+08:00")],
    alert_class: Annotated[Literal["important", "general"], Query(alias="class")] = "important",
) -> DeadlinePreview:
    if raised_at.tzinfo is None:
        raise BadRequest("Give raised_at with a time zone offset.")
    d = profile.deadlines
    due = compute_deadline(raised_at, d.classes[alert_class].days, counting=d.counting, calendar=profile.calendar, zone=profile.zone)
    return DeadlinePreview(raised_at=to_local(raised_at, profile.zone), alert_class=alert_class,
                           deadline_at=to_local(due.at, profile.zone), basis=due.basis)


@router.get("/{year}", operation_id="calendar:year", response_model=CalendarYearPublic,
            summary="One year's public holidays and make-up working days (调休)",
            responses=problem_responses(Unauthorized, NotFound))
async def calendar_year(year: Annotated[int, Path(ge=1900, le=2200)], _caller: CurrentCaller, profile: CurrentProfile) -> CalendarYearPublic:
    spec = profile.calendar_file.years.get(year)
    if spec is None:
        raise NotFound(f"The calendar does not know that year yet. {FALLBACK}")
    return CalendarYearPublic(
        year=year, source=spec.source,
        holidays=[HolidayPublic(name_zh=h.name_zh, name_en=h.name_en, first_day=h.from_, last_day=h.to) for h in spec.holidays],
        make_up_working_days=sorted(spec.make_up_working_days),
    )
