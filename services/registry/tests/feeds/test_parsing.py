"""Checking records: the ID number's fast path gives what servicekit's validate gives."""

from datetime import date, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import registry.feeds.parsing as parsing
from registry.feeds.parsing import RecordChecker
from registry.profile import load_profile
from servicekit.resident_id import InvalidResidentId, check_character, validate

TODAY = date(2026, 11, 28)
PROFILE = load_profile(Path(__file__).resolve().parents[4] / "config")


def _checker() -> RecordChecker:
    return RecordChecker("health", PROFILE.catalogue, PROFILE.areas, TODAY)


def _expected(raw: str):
    try:
        return validate(raw, today=TODAY).number
    except InvalidResidentId as exc:
        return (exc.code, exc.message)


def _numbers():
    """Numbers near valid ones: real and unreal birth dates, future births, other provinces,
    wrong or lower-case check characters, spaces, full-width digits, wrong lengths."""
    area = st.sampled_from(["330106", "110105", "990101", "000000", "710000", "3301O6"])
    day = st.integers(0, 60_000).map(lambda d: date(1870, 1, 1) + timedelta(days=d))
    digits = st.one_of(day.map(lambda d: d.strftime("%Y%m%d")), st.text("0123456789", min_size=8, max_size=8))
    sequence = st.integers(0, 999).map(lambda n: f"{n:03d}")

    def number(a, d, s, how):
        first = a + d + s
        check = check_character(first) if first.isdigit() and first.isascii() and len(first) == 17 else "0"
        return {"right": first + check, "wrong": first + ("0" if check != "0" else "1"), "lower": first + check.lower(),
                "spaced": f" {first}{check} ", "wide": (first + check).replace("1", "１", 1), "short": first}[how]

    how = st.sampled_from(["right", "right", "right", "wrong", "lower", "spaced", "wide", "short"])
    return st.builds(number, area, digits, sequence, how)


@settings(max_examples=3000, deadline=None)
@given(_numbers())
def test_numbers_are_checked_as_validate_checks_them(raw):
    assert _checker()._number(raw) == _expected(raw)


def test_numbers_in_normal_form_skip_validate(monkeypatch):
    """A valid number as departments send it is checked without servicekit's validate (which
    also builds a ResidentId); anything else still goes through it."""
    calls = []
    monkeypatch.setattr(parsing, "validate", lambda raw, today: calls.append(raw) or validate(raw, today=today))
    checker = _checker()
    first = "33010619900307001"
    plain = first + check_character(first)
    assert checker._number(plain) == plain and calls == []
    x_first = next(f for f in (f"33010619900307{n:03d}" for n in range(1000)) if check_character(f) == "X")
    assert checker._number(x_first + "x") == x_first + "X" and calls == [x_first + "x"]
