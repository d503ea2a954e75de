"""Deadlines on the working calendar: month and year ends, long holidays, make-up Saturdays,
unknown years; and the start-up validation of the city profile."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.deadline.calendar import UnknownYear
from alerts.deadline.rules import compute_deadline
from alerts.profile import ProfileError, load_profile

CONFIG = Path(__file__).resolve().parents[3] / "config"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROFILE = load_profile(CONFIG)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def deadline(raised: datetime, days: int, counting: str):
    return compute_deadline(raised, days, counting=counting, calendar=PROFILE.calendar, zone=SHANGHAI)


@pytest.mark.parametrize(
    ("raised", "days", "counting", "expected_utc", "basis"),
    [
        # the example of docs/events.md: raised on Saturday 2026-11-28, important, 3 calendar days
        (local(2026, 11, 28, 11, 0), 3, "calendar_days", datetime(2026, 12, 1, 16, 0, tzinfo=UTC), "calendar_days"),
        # month end, calendar days
        (local(2026, 1, 30, 10, 0), 7, "calendar_days", datetime(2026, 2, 6, 16, 0, tzinfo=UTC), "calendar_days"),
        # year end, calendar days
        (local(2026, 12, 30, 9, 0), 3, "calendar_days", datetime(2027, 1, 2, 16, 0, tzinfo=UTC), "calendar_days"),
        # year end on working days: 12-31 works, New Year 01-01..03 off, Sunday 01-04 is a make-up day
        (local(2025, 12, 30, 15, 0), 3, "working_days", datetime(2026, 1, 5, 16, 0, tzinfo=UTC), "working_days"),
        # National Day 2026: 10-01..07 off, 10-08 and 10-09 work, Saturday 10-10 is a make-up day
        (local(2026, 9, 30, 10, 0), 3, "working_days", datetime(2026, 10, 10, 16, 0, tzinfo=UTC), "working_days"),
        # Spring Festival 2026 (02-15..23 off) with the make-up Saturdays 02-14 and 02-28, into March
        (local(2026, 2, 13, 16, 0), 7, "working_days", datetime(2026, 3, 2, 16, 0, tzinfo=UTC), "working_days"),
        # 2025: Sunday 09-28 worked before National Day
        (local(2025, 9, 26, 17, 0), 3, "working_days", datetime(2025, 9, 30, 16, 0, tzinfo=UTC), "working_days"),
        # an ordinary week: Friday + 3 working days is Wednesday
        (local(2026, 11, 27, 9, 0), 3, "working_days", datetime(2026, 12, 2, 16, 0, tzinfo=UTC), "working_days"),
        # counting reaches 2027, which the calendar does not know: calendar days, flagged
        (local(2026, 12, 30, 9, 0), 3, "working_days", datetime(2027, 1, 2, 16, 0, tzinfo=UTC), "calendar_days_fallback"),
    ],
)
def test_deadlines(raised, days, counting, expected_utc, basis):
    due = deadline(raised, days, counting)
    assert due.at == expected_utc
    assert due.basis == basis


def test_the_local_date_counts_not_the_utc_one():
    # 17:00 UTC on 12-30 is already 01:00 on 12-31 in Shanghai
    due = deadline(datetime(2025, 12, 30, 17, 0, tzinfo=UTC), 3, "working_days")
    assert due.at == datetime(2026, 1, 6, 16, 0, tzinfo=UTC)
    assert due.at.astimezone(SHANGHAI) == local(2026, 1, 7, 0, 0)


def test_fallback_is_never_later_than_working_days():
    for day in range(1, 29):
        raised = local(2026, 2, day, 12, 0)
        assert deadline(raised, 7, "calendar_days").at <= deadline(raised, 7, "working_days").at


def test_make_up_days_work_and_holidays_do_not():
    cal = PROFILE.calendar
    assert cal.is_working_day(datetime(2026, 10, 10).date())  # Saturday, 调休
    assert not cal.is_working_day(datetime(2026, 10, 5).date())  # Monday, National Day
    assert not cal.is_working_day(datetime(2026, 10, 17).date())  # an ordinary Saturday
    with pytest.raises(UnknownYear):
        cal.is_working_day(datetime(2027, 3, 1).date())


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        deadline(datetime(2026, 1, 1, 10, 0), 3, "calendar_days")


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    shutil.copytree(CONFIG / "alerts", tmp_path / "alerts")
    shutil.copytree(CONFIG / "catalogues", tmp_path / "catalogues")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("calendar.yaml", "2026-01-04, 2026-02-14", "2026-01-05, 2026-02-14", "is not a weekend day"),
        ("calendar.yaml", "from: 2026-02-15, to: 2026-02-23", "from: 2026-02-15, to: 2026-02-10", "`to` is before `from`"),
        ("calendar.yaml", "from: 2026-04-04, to: 2026-04-06", "from: 2026-02-20, to: 2026-04-06", "overlaps"),
        ("deadlines.yaml", "levels: [2, 3]", "levels: [1, 2, 3]", "level 1 is in both"),
        ("deadlines.yaml", "timezone: Asia/Shanghai", "timezone: Mars/Olympus", "timezone"),
        ("deadlines.yaml", "\ncounting: calendar_days", "\ncounting: lunar_days", "counting"),
        ("rules.yaml", "when: {triggers: [member_born]}", "when: {triggers: [member_born], level_entered: 1}", "exactly one condition"),
        ("rules.yaml", "levels: [1, 2]", "levels: [1, 7]", "level 7 is in no class"),
        ("rules.yaml", "code: member_born", "code: major_illness", "repeated: major_illness"),
    ],
)
def test_bad_configuration_names_the_file_and_field(config_copy, file, old, new, message):
    _edit(config_copy / "alerts" / file, old, new)
    with pytest.raises(ProfileError) as err:
        load_profile(config_copy)
    assert file in str(err.value) and message in str(err.value)


def test_missing_file_is_named(config_copy):
    (config_copy / "alerts" / "calendar.yaml").unlink()
    with pytest.raises(ProfileError, match="calendar.yaml: file not found"):
        load_profile(config_copy)


def test_working_days_configuration_is_used_for_new_alerts(config_copy):
    _edit(config_copy / "alerts" / "deadlines.yaml", "\ncounting: calendar_days", "\ncounting: working_days")
    assert load_profile(config_copy).deadlines.counting == "working_days"
