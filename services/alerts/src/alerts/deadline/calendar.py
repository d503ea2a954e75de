"""Working days on a configured calendar: weekends, public holidays and make-up working days.

Pure logic, no I/O. A date in a year the calendar does not know raises ``UnknownYear``: the
caller decides what that means (deadlines fall back to calendar days and say so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta


class UnknownYear(LookupError):
    def __init__(self, year: int) -> None:
        super().__init__(f"the working calendar does not know the year {year}")
        self.year = year


@dataclass(frozen=True)
class Holiday:
    name_zh: str
    name_en: str
    first: date
    last: date

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class WorkCalendar:
    weekend: frozenset[int]
    # year -> (holidays, make-up working days)
    years: dict[int, tuple[tuple[Holiday, ...], frozenset[date]]]
    _days_off: dict[date, Holiday] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        off: dict[date, Holiday] = {}
        for holidays, _ in self.years.values():
            for h in holidays:
                for d in h.days():
                    off[d] = h
        object.__setattr__(self, "_days_off", off)

    @property
    def known_years(self) -> list[int]:
        return sorted(self.years)

    def knows(self, year: int) -> bool:
        return year in self.years

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.years:
            raise UnknownYear(day.year)
        if day in self.years[day.year][1]:
            return True  # 调休: a Saturday or Sunday worked instead of a holiday
        if day in self._days_off:
            return False
        return day.isoweekday() not in self.weekend

    def holiday_on(self, day: date) -> Holiday | None:
        return self._days_off.get(day)

    def add_working_days(self, start: date, n: int) -> date:
        """The Nth working day after ``start`` (``start`` itself never counts)."""
        day, counted = start, 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day
