"""Capacity periods of offers, counted in the city's time zone: a match holds a slot of the
period it was proposed or accepted in."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"
    once = "once"  # capacity over the offer's whole life


def period_key(period: str, day: date) -> str:
    if period == Period.week:
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == Period.month:
        return f"{day.year}-{day.month:02d}"
    if period == Period.quarter:
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if period == Period.year:
        return str(day.year)
    return "once"


def local_date(zone: ZoneInfo, at: datetime) -> date:
    """The day in the city's calendar of an aware timestamp."""
    return at.astimezone(zone).date()
