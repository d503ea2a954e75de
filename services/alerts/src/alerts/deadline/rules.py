"""The verification deadline of an alert: end of the Nth (working) day after it was raised.

Times are UTC in and out; the counting happens on local dates of the configured time zone, and
the deadline is 24:00 local time of the last day. When the working calendar does not know a
year the count reaches, it falls back to calendar days -- never a later deadline -- and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.deadline.calendar import UnknownYear, WorkCalendar

Basis = Literal["calendar_days", "working_days", "calendar_days_fallback"]


@dataclass(frozen=True)
class Deadline:
    at: datetime  # UTC
    basis: Basis


def compute_deadline(
    raised_at: datetime, days: int, *, counting: str, calendar: WorkCalendar, zone: ZoneInfo
) -> Deadline:
    if raised_at.tzinfo is None:
        raise ValueError("raised_at must be timezone-aware")
    local_day = raised_at.astimezone(zone).date()
    basis: Basis = "calendar_days"
    last = local_day + timedelta(days=days)
    if counting == "working_days":
        try:
            last = calendar.add_working_days(local_day, days)
            basis = "working_days"
        except UnknownYear:
            basis = "calendar_days_fallback"
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    return Deadline(at=end.astimezone(UTC), basis=basis)


def to_local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A stored UTC instant as the city's local time (for responses)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)
