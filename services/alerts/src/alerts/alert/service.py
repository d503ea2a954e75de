"""The workflow of an alert: raised -> accepted (a named worker) -> verifying -> disposed.

Each transition checks the version the worker last read (If-Match: of two workers acting at
once, one wins and the other gets 412), refuses what the state does not allow (409), validates
codes against the shared catalogues, records who and when, and only flushes: the request edge
commits, together with the events and webhook deliveries the change announces.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.concurrency import check_version
from servicekit.db import db_now
from servicekit.errors import Conflict, FieldIssue, NotFound, Unprocessable

from alerts.alert import events, repository
from alerts.alert.schemas import AcceptRequest, Disposition, PolicyReferral, ServiceReferral, VerificationRequest
from alerts.alert.tables import Alert, Verification
from alerts.profile import Profile

NOT_FOUND = "No alert with that id is in your jurisdiction."
# A verification cannot claim to have happened later than now (allowing for clock skew).
FUTURE_TOLERANCE = timedelta(minutes=5)


async def load_for_change(session: AsyncSession, caller: Caller, alert_id: str, expected_version: int) -> Alert:
    alert = await repository.get_in_scope(session, caller, alert_id, for_update=True)
    if alert is None:
        raise NotFound(NOT_FOUND)
    check_version(expected_version, alert.version)
    return alert


def _require(alert: Alert, allowed: tuple[str, ...], doing: str) -> None:
    if alert.status not in allowed:
        raise Conflict(f"An alert that is {alert.status} cannot be {doing}.", status_now=alert.status)


async def _record(session: AsyncSession, alert: Alert, caller: Caller, now: datetime, action: str, before: str, detail: dict[str, Any]) -> None:
    alert.version += 1
    await repository.add_transitions(session, [{
        "alert_id": alert.id, "at": now, "action": action, "from_status": before, "to_status": alert.status,
        "actor": caller.subject, "actor_role": caller.role.value, "detail": detail,
    }])
    await session.flush()


async def accept(session: AsyncSession, caller: Caller, alert: Alert, body: AcceptRequest) -> Alert:
    _require(alert, ("raised",), "accepted")
    now = await db_now(session)
    before, alert.status = alert.status, "accepted"
    alert.accepted_by, alert.worker_name, alert.accepted_at = caller.subject, body.worker_name, now
    await _record(session, alert, caller, now, "accepted", before, {"note": body.note} if body.note else {})
    return alert


async def verify(session: AsyncSession, caller: Caller, alert: Alert, body: VerificationRequest, profile: Profile) -> Alert:
    _require(alert, ("accepted", "verifying"), "verified")
    _known_codes(body.needs_confirmed, profile.need_types, "needs_confirmed", "need type")
    now = await db_now(session)
    performed = body.performed_at
    if performed.tzinfo is None:
        raise Unprocessable("performed_at needs a time zone offset.", errors=[_issue("performed_at", "timezone_required", "Give the offset, e.g. +08:00")])
    if performed > now + FUTURE_TOLERANCE or performed < alert.raised_at - timedelta(days=1):
        raise Unprocessable(
            "performed_at must lie between the raising of the alert and now.",
            errors=[_issue("performed_at", "out_of_range", "Between the raising of the alert and now")],
        )
    session.add(Verification(
        id=str(uuid.uuid4()), alert_id=alert.id, method=body.method, performed_at=performed,
        findings=body.findings, needs_confirmed=list(dict.fromkeys(body.needs_confirmed)),
        recorded_by=caller.subject, recorded_at=now,
    ))
    before, alert.status = alert.status, "verifying"
    if alert.verified_at is None:
        alert.verified_at = now  # the first verification is what the deadline asked for
    await _record(session, alert, caller, now, "verified", before, {"method": body.method})
    return alert


async def dispose(session: AsyncSession, caller: Caller, alert: Alert, body: Disposition, profile: Profile) -> Alert:
    _require(alert, ("verifying",), "disposed (record a verification first)" if alert.is_open else "disposed")
    detail: dict[str, Any] = {"kind": body.kind}
    if isinstance(body, PolicyReferral):
        _known_codes(body.policies, profile.policies, "policies", "policy")
        detail |= {"policies": list(dict.fromkeys(body.policies)), "note": body.note}
    elif isinstance(body, ServiceReferral):
        codes = [s.code for s in body.services]
        _known_codes(codes, profile.services, "services", "service", suffix=".code")
        if len(set(codes)) != len(codes):
            raise Unprocessable("Each service may be chosen once.", errors=[_issue("services", "duplicate", "A service is listed twice")])
        detail |= {"services": [s.model_dump() for s in body.services], "note": body.note}
    else:
        detail |= {"reason": body.reason}
    detail["needs_confirmed"] = await _needs_confirmed(session, alert)
    now = await db_now(session)
    before, alert.status = alert.status, "disposed"
    alert.disposition, alert.disposition_detail = body.kind, detail
    alert.disposed_by, alert.disposed_at = caller.subject, now
    await _record(session, alert, caller, now, "disposed", before, {"kind": body.kind})
    await events.announce_disposed(session, [alert], now)
    return alert


async def _needs_confirmed(session: AsyncSession, alert: Alert) -> list[str]:
    needs: dict[str, None] = {}
    for v in await repository.verifications(session, alert.id):
        needs.update(dict.fromkeys(v.needs_confirmed))
    return list(needs)


def _known_codes(codes: list[str], catalogue: dict[str, Any], field: str, what: str, suffix: str = "") -> None:
    unknown = [i for i, c in enumerate(codes) if c not in catalogue]
    if unknown:
        raise Unprocessable(
            f"{len(unknown)} {what} code{'s are' if len(unknown) != 1 else ' is'} not in the catalogue.",
            errors=[_issue(f"{field}.{i}{suffix}", "unknown_code", f"Not a {what} of the catalogue") for i in unknown],
        )


def _issue(location: str, issue: str, message: str) -> FieldIssue:
    return FieldIssue(location=f"body.{location}", issue=issue, message=message)
