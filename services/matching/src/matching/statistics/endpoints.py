"""Statistics, each under the resource it counts: /api/v1/needs/statistics,
/api/v1/matches/statistics (partner performance) and /api/v1/points/statistics."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from sqlalchemy import true

from servicekit.auth import Role
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, problem_responses
from servicekit.tables import utcnow

from matching.deps import Anyone, CurrentProfile, Reader
from matching.needs.tables import Need
from matching.points.tables import PointsAccount
from matching.statistics import repository
from matching.statistics.schemas import (
    AreaCount, Durations, MonthPoints, NeedStatistics, PartnerPerformance, PointsStatistics, ServiceCount,
)

needs_router = APIRouter(prefix="/api/v1/needs", tags=["needs"], route_class=TransactionalRoute)
matches_router = APIRouter(prefix="/api/v1/matches", tags=["matches"], route_class=TransactionalRoute)
points_router = APIRouter(prefix="/api/v1/points", tags=["points"], route_class=TransactionalRoute)
DIGITS = {"district": 6, "township": 9, "village": 12}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def durations(days: list[float]) -> Durations:
    if not days:
        return Durations(count=0, mean=None, median=None, p90=None)
    a = np.array(days)
    return Durations(count=len(days), mean=round(float(a.mean()), 2), median=round(float(np.median(a)), 2),
                     p90=round(float(np.percentile(a, 90)), 2))


@needs_router.get("/statistics", operation_id="needs:statistics",
                  summary="Needs of your jurisdiction by status, source, service and area; matching rate; "
                          "days to delivery", response_model=NeedStatistics, responses=problem_responses(Forbidden))
async def need_statistics(session: Session, caller: Reader, profile: CurrentProfile,
                          by: Annotated[Literal["district", "township", "village"], Query()] = "township"
                          ) -> NeedStatistics:
    scope = caller.scope(Need.area_code)
    by_status = await repository.shown_statuses(session, scope)
    total = sum(by_status.values())
    ever = sum(by_status.get(s, 0) for s in ("matched", "accepted", "delivered"))
    digits = DIGITS[by]
    areas = []
    for code, statuses in await repository.by_area(session, scope, digits):
        full = code + "0" * (12 - digits)
        area = profile.areas.get(full)
        areas.append(AreaCount(area_code=full, name=area.name if area else None, total=sum(statuses.values()),
                               **{k: statuses.get(k, 0) for k in ("open", "matched", "accepted", "delivered")}))
    times = await repository.delivery_times(session, scope)
    return NeedStatistics(
        total=total, by_status=by_status, by_source=await repository.counts(session, scope, Need.source),
        unmatched_by_reason=await repository.counts(session, scope, Need.unmatched_reason),
        matching_rate=_rate(ever, total - by_status.get("cancelled", 0)),
        by_service=[ServiceCount(service_code=s, total=t, delivered=d)
                    for s, t, d in await repository.by_service(session, scope)],
        by_area=areas,
        days_to_delivery=durations([(d - c).total_seconds() / 86400 for c, d in times]),
    )


@matches_router.get("/statistics", operation_id="matches:statistics",
                    summary="Partner performance: acceptance, delivery, the families' feedback (a partner: its own)",
                    response_model=list[PartnerPerformance], responses=problem_responses(Forbidden))
async def partner_performance(session: Session, caller: Anyone) -> list[PartnerPerformance]:
    if caller.role in (Role.citizen, Role.department):
        raise Forbidden("Partner performance is for officials and the partners themselves.")
    partner = caller.role is Role.partner
    scope = true() if partner else caller.scope(Need.area_code)
    out = []
    for org, name, proposed, accepted, declined, delivered, revoked, fb_n, fb_avg in await repository.partners(
            session, scope, caller.organisation if partner else None):
        out.append(PartnerPerformance(
            organisation_id=org, name=name, proposed=int(proposed), accepted=int(accepted or 0),
            declined=int(declined or 0), delivered=int(delivered or 0), revoked=int(revoked or 0),
            acceptance_rate=_rate(int(accepted or 0), int(accepted or 0) + int(declined or 0)),
            delivery_rate=_rate(int(delivered or 0), int(accepted or 0)),
            feedback_count=int(fb_n), feedback_mean=round(float(fb_avg), 2) if fb_avg is not None else None,
        ))
    return out


@points_router.get("/statistics", operation_id="points:statistics",
                   summary="Points issued and redeemed in your jurisdiction, by kind and by month (last 12)",
                   response_model=PointsStatistics, responses=problem_responses(Forbidden))
async def points_statistics(session: Session, caller: Reader, profile: CurrentProfile) -> PointsStatistics:
    scope = caller.scope(PointsAccount.area_code)
    total, active, outstanding = await repository.accounts(session, scope)
    by_kind = await repository.points_by_kind(session, scope)
    issued = {k: v for k, v in by_kind.items() if v > 0}
    months = await repository.points_by_month(session, scope, profile.rules.timezone, utcnow() - timedelta(days=366))
    return PointsStatistics(
        accounts=total, active_accounts=active, issued_by_kind=issued, issued=sum(issued.values()),
        redeemed=-sum(v for v in by_kind.values() if v < 0), outstanding=outstanding,
        by_month=[MonthPoints(month=m, issued=int(i or 0), redeemed=int(r or 0)) for m, i, r in months],
    )
