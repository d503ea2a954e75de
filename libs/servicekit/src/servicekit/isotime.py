"""Dates and instants in requests: ISO 8601 text, nothing else.

pydantic's own ``date`` and ``datetime`` also take numbers and digit strings as Unix time: a
filter ``raised_from=20261101`` (a day written without its hyphens) read as 1970-08-23, and
``since=0.5`` as the first second of 1970 -- a silent, wrong answer. ``Day`` and ``Instant`` take
only ISO 8601 text (``2026-11-01``; ``2026-11-01T09:00:00+08:00``) or a ``date``/``datetime``
object from code, and refuse anything else with a 422 issue that says what to send (and never
quotes the input). Years run from 1800 to 2999, so that a day's arithmetic stays within what
``date`` holds. What the text means is pydantic's as before: an instant without an offset is
naive, and the routes that need an offset say so.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

DAY_FORMAT = "day_format"
INSTANT_FORMAT = "instant_format"

# Years 1800 to 2999: a day's arithmetic (the day after, a month on) never leaves what ``date``
# holds (year 1 to 9999), where 9999-12-31 plus a day was a 500.
_YEAR = r"(?:18|19|2\d)\d\d"
_DAY = re.compile(_YEAR + r"-\d{2}-\d{2}", re.ASCII)
_INSTANT = re.compile(_YEAR + r"-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}.*)?", re.ASCII | re.DOTALL)


def _day(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DAY.fullmatch(value):
        return value
    raise PydanticCustomError(DAY_FORMAT, "Give a date as YYYY-MM-DD, years 1800 to 2999, e.g. 2026-11-30.")


def _instant(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _INSTANT.fullmatch(value):
        return value
    raise PydanticCustomError(
        INSTANT_FORMAT,
        "Give an ISO 8601 date and time with its offset, years 1800 to 2999, e.g. 2026-11-30T09:00:00+08:00.")


Day = Annotated[date, BeforeValidator(_day)]
"""A calendar day from a request: ``YYYY-MM-DD`` text (or a ``date``)."""

Instant = Annotated[datetime, BeforeValidator(_instant)]
"""An instant from a request: ISO 8601 text, a date with an optional time (or a ``datetime``)."""
