"""Dates and instants in requests are ISO 8601 text: numbers and digit strings are refused, not
read as Unix time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from servicekit.errors import validation_issues
from servicekit.isotime import DAY_FORMAT, INSTANT_FORMAT, Day, Instant


class Body(BaseModel):
    day: Day | None = None
    at: Instant | None = None


@pytest.mark.parametrize("raw", ["0", "0.5", "1700000000", "20261101", 0, 1_700_000_000, 0.5, True, "now",
                                 "2026-11-01T", "2026-11-1T10:00", " 2026-11-01T10:00:00+08:00",
                                 "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00Z", "1799-12-31T00:00:00Z"])
def test_an_instant_that_is_not_iso_text_is_refused(raw):
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"at": raw})
    assert [e["type"] for e in caught.value.errors()] == [INSTANT_FORMAT]


@pytest.mark.parametrize("raw", ["0", "20261101", 0, 20261101, "2026-11-01T00:00:00", "2026-11-1", "26-11-01",
                                 "9999-12-31", "0000-01-01", "1799-12-31", "3000-01-01"])
def test_a_day_that_is_not_iso_text_is_refused(raw):
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"day": raw})
    assert [e["type"] for e in caught.value.errors()] == [DAY_FORMAT]


def test_iso_text_reads_as_pydantic_reads_it():
    assert Body.model_validate({"day": "1800-01-01"}).day == date(1800, 1, 1)
    assert Body.model_validate({"day": "2999-12-31"}).day + timedelta(days=1) == date(3000, 1, 1)
    body = Body.model_validate({"day": "2026-11-30", "at": "2026-11-30T09:00:00+08:00"})
    assert body.day == date(2026, 11, 30)
    assert body.at == datetime(2026, 11, 30, 1, tzinfo=UTC)
    assert body.at.utcoffset() == timedelta(hours=8)
    # Without an offset it stays naive, as before: the routes that need one say so themselves.
    assert Body.model_validate({"at": "2026-11-30 09:00"}).at == datetime(2026, 11, 30, 9)
    assert Body.model_validate({"at": "2026-11-30"}).at == datetime(2026, 11, 30)
    assert Body.model_validate_json(b'{"at": "2026-11-30T01:00:00Z"}').at == datetime(2026, 11, 30, 1, tzinfo=UTC)


def test_objects_from_code_pass():
    at = datetime(2026, 11, 30, 9, tzinfo=timezone(timedelta(hours=8)))
    body = Body(day=date(2026, 11, 30), at=at)
    assert (body.day, body.at) == (date(2026, 11, 30), at)
    # a datetime is not a day
    with pytest.raises(ValidationError):
        Body(day=at)


def test_the_issue_says_what_to_send_and_never_quotes_the_input():
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"day": "19900307", "at": "330106199003070014"})
    errors = [{**e, "loc": ("body", *e["loc"])} for e in caught.value.errors()]
    issues, malformed = validation_issues(RequestValidationError(errors))
    assert not malformed
    assert [(i.location, i.issue) for i in issues] == [("body.day", DAY_FORMAT), ("body.at", INSTANT_FORMAT)]
    assert "YYYY-MM-DD" in issues[0].message and "+08:00" in issues[1].message
    assert all("19900307" not in i.message and "330106199003070014" not in i.message for i in issues)
