"""Routes of alerts: the worker's inbox, one alert, its history, and the three transitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

from servicekit.auth import CurrentCaller
from servicekit.concurrency import expected_version, set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import (
    BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, PreconditionRequired, Unauthorized,
    Unprocessable, problem_responses,
)
from servicekit.idempotency import Idempotency
from servicekit.isotime import Instant
from servicekit.pagination import Page, Paging, encode_cursor

from alerts.alert import repository, service, views
from alerts.alert.auth import AlertReader, AlertWorker
from alerts.alert.schemas import (
    AREA, AcceptRequest, AlertClassName, AlertDetail, AlertHistory, AlertSummary, Disposition, InboxFilters,
    Status, VerificationRequest,
)
from alerts.deps import CurrentProfile
from alerts.profile import Profile

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], route_class=TransactionalRoute)

AlertId = Annotated[str, Path(min_length=1, max_length=36, description="The alert's id")]
# Reading one alert is open to every role: whoever may not see it gets 404, as if it did not exist.
READ_ERRORS = (Unauthorized, NotFound)
CHANGE_ERRORS = (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unprocessable, PreconditionRequired)


@router.get(
    "",
    operation_id="alerts:list",
    summary="The inbox: alerts in your jurisdiction, soonest deadline first",
    response_model=Page[AlertSummary],
    responses=problem_responses(BadRequest, Unauthorized, Forbidden),
)
async def list_alerts(
    session: Session,
    caller: AlertReader,
    paging: Paging,
    profile: CurrentProfile,
    status: Annotated[list[Status] | None, Query(max_length=4, description="Any of these statuses")] = None,
    alert_class: Annotated[AlertClassName | None, Query(alias="class", description="important or general")] = None,
    village: Annotated[str | None, Query(pattern=AREA, description="One village (村社) code")] = None,
    deadline_before: Annotated[Instant | None, Query(description="Deadline before this instant")] = None,
    deadline_after: Annotated[Instant | None, Query(description="Deadline at or after this instant")] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue (true) or not overdue (false)")] = None,
    escalated: Annotated[bool | None, Query(description="Only alerts escalated to the district")] = None,
) -> Page[AlertSummary]:
    for moment in (deadline_before, deadline_after):
        if moment is not None and moment.tzinfo is None:
            raise BadRequest("Give deadline filters with a time zone offset, e.g. 2026-12-01T00:00:00+08:00.")
    filters = InboxFilters(
        status=status, alert_class=alert_class, village=village, deadline_before=deadline_before,
        deadline_after=deadline_after, overdue=overdue, escalated=escalated,
    )
    rows = await repository.inbox(session, caller, filters, paging)
    page = rows[: paging.limit]
    next_cursor = (
        encode_cursor([page[-1].deadline_at.isoformat(), page[-1].id]) if len(rows) > paging.limit and page else None
    )
    return Page[AlertSummary](items=[views.summary(a, profile) for a in page], next_cursor=next_cursor)


async def _detail(session: Session, alert, profile: Profile, response: Response) -> AlertDetail:
    evidence = await repository.evidence(session, alert.id)
    verifications = await repository.verifications(session, alert.id)
    set_etag(response, alert.version)
    return views.detail(alert, evidence, verifications, profile)


@router.get(
    "/{alert_id}",
    operation_id="alerts:get",
    summary="One alert with its evidence, portrait, suggestions, verifications and disposition",
    response_model=AlertDetail,
    responses=problem_responses(*READ_ERRORS),
)
async def get_alert(alert_id: AlertId, session: Session, caller: CurrentCaller, profile: CurrentProfile, response: Response) -> AlertDetail:
    alert = await repository.get_in_scope(session, caller, alert_id)
    if alert is None:
        raise NotFound(service.NOT_FOUND)
    return await _detail(session, alert, profile, response)


@router.get(
    "/{alert_id}/history",
    operation_id="alerts:history",
    summary="Every transition of the alert: who, when, from which status to which",
    response_model=AlertHistory,
    responses=problem_responses(*READ_ERRORS),
)
async def alert_history(alert_id: AlertId, session: Session, caller: CurrentCaller, profile: CurrentProfile) -> AlertHistory:
    alert = await repository.get_in_scope(session, caller, alert_id)
    if alert is None:
        raise NotFound(service.NOT_FOUND)
    return AlertHistory(items=views.transitions(await repository.history(session, alert.id), profile))


@router.post(
    "/{alert_id}/accept",
    operation_id="alerts:accept",
    summary="Accept the alert as its named worker (raised -> accepted)",
    response_model=AlertDetail,
    responses=problem_responses(*CHANGE_ERRORS),
)
async def accept_alert(
    alert_id: AlertId, body: AcceptRequest, session: Session, caller: AlertWorker, profile: CurrentProfile,
    request: Request, response: Response, _idem: Idempotency,
) -> AlertDetail:
    alert = await service.load_for_change(session, caller, alert_id, expected_version(request))
    await service.accept(session, caller, alert, body)
    return await _detail(session, alert, profile, response)


@router.post(
    "/{alert_id}/verification",
    operation_id="alerts:verify",
    summary="Record a verification by phone (电话询问) or home visit (入户走访) (-> verifying)",
    response_model=AlertDetail,
    responses=problem_responses(*CHANGE_ERRORS),
)
async def verify_alert(
    alert_id: AlertId, body: VerificationRequest, session: Session, caller: AlertWorker, profile: CurrentProfile,
    request: Request, response: Response, _idem: Idempotency,
) -> AlertDetail:
    alert = await service.load_for_change(session, caller, alert_id, expected_version(request))
    await service.verify(session, caller, alert, body, profile)
    return await _detail(session, alert, profile, response)


@router.post(
    "/{alert_id}/disposition",
    operation_id="alerts:dispose",
    summary="Dispose: policy referral, service referral, no need or false alarm (-> disposed)",
    response_model=AlertDetail,
    responses=problem_responses(*CHANGE_ERRORS),
)
async def dispose_alert(
    alert_id: AlertId, body: Annotated[Disposition, Body()], session: Session, caller: AlertWorker,
    profile: CurrentProfile, request: Request, response: Response, _idem: Idempotency,
) -> AlertDetail:
    alert = await service.load_for_change(session, caller, alert_id, expected_version(request))
    await service.dispose(session, caller, alert, body, profile)
    return await _detail(session, alert, profile, response)
