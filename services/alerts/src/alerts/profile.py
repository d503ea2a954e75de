"""The city profile the alerts service runs on: rules, deadlines, the working calendar and the
shared catalogues, loaded from config/ and validated at start-up.

A mistake stops the service with the file and the field named, never with a stack of pydantic
internals; nothing city-specific is written in code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.deadline.calendar import Holiday, WorkCalendar

CODE = r"^[a-z][a-z0-9_]{1,63}$"
AlertClass = Literal["important", "general"]
CLASS_SEVERITY: dict[str, int] = {"general": 1, "important": 2}


class ProfileError(ValueError):
    """The configuration is not usable; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- rules.yaml ---------------------------------------------------------------------------

class RuleWhen(_Strict):
    triggers: list[str] | None = Field(default=None, min_length=1, max_length=50)
    indicators: list[str] | None = Field(default=None, min_length=1, max_length=50)
    level_entered: int | None = Field(default=None, ge=1, le=9)
    level_dropped_by: int | None = Field(default=None, ge=1, le=9)
    score_dropped_by: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> RuleWhen:
        set_ = [k for k, v in self.__dict__.items() if v is not None]
        if len(set_) != 1:
            raise ValueError("`when` needs exactly one condition (triggers, indicators, level_entered, level_dropped_by or score_dropped_by)")
        for codes in (self.triggers, self.indicators):
            for c in codes or ():
                if not _is_code(c):
                    raise ValueError("trigger and indicator codes are lower-case snake_case")
        return self


class Rule(_Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=128)
    when: RuleWhen
    levels: list[int] | None = Field(default=None, min_length=1)
    causes: list[Literal["household_changed", "model_activated", "review"]] | None = Field(default=None, min_length=1)
    enabled: bool = True


class RulesFile(_Strict):
    version: Literal[1]
    rules: list[Rule] = Field(min_length=1, max_length=500)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[Rule]) -> list[Rule]:
        codes = [r.code for r in rules]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"rule codes must be unique; repeated: {', '.join(dup)}")
        return rules


# ---- deadlines.yaml ------------------------------------------------------------------------

class ClassPolicy(_Strict):
    name_zh: str = Field(min_length=1, max_length=16)
    levels: list[int] = Field(min_length=1)
    days: int = Field(ge=1, le=60)
    warn_before_hours: float = Field(ge=0, le=24 * 30)


class DeadlinesFile(_Strict):
    version: Literal[1]
    timezone: str
    counting: Literal["calendar_days", "working_days"]
    classes: dict[AlertClass, ClassPolicy]

    @model_validator(mode="after")
    def _check(self) -> DeadlinesFile:
        _zone(self.timezone)
        if set(self.classes) != {"important", "general"}:
            raise ValueError("classes must define exactly `important` and `general`")
        seen: dict[int, str] = {}
        for name, policy in self.classes.items():
            for level in policy.levels:
                if level in seen:
                    raise ValueError(f"level {level} is in both {seen[level]} and {name}")
                seen[level] = name
        if self.classes["important"].days > self.classes["general"].days:
            raise ValueError("important alerts cannot have a longer deadline than general ones")
        return self


# ---- calendar.yaml -------------------------------------------------------------------------

class HolidayEntry(_Strict):
    name_zh: str = Field(min_length=1, max_length=32)
    name_en: str = Field(min_length=1, max_length=64)
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _order(self) -> HolidayEntry:
        if self.to < self.from_:
            raise ValueError("`to` is before `from`")
        return self


class CalendarYear(_Strict):
    source: str = Field(min_length=1, max_length=300)
    holidays: list[HolidayEntry] = Field(min_length=1)
    make_up_working_days: list[date] = []


class CalendarFile(_Strict):
    version: Literal[1]
    timezone: str
    weekend: list[int] = Field(min_length=0, max_length=7)
    years: dict[int, CalendarYear]

    @model_validator(mode="after")
    def _check(self) -> CalendarFile:
        _zone(self.timezone)
        if any(d < 1 or d > 7 for d in self.weekend):
            raise ValueError("weekend holds ISO weekdays, 1 (Monday) to 7 (Sunday)")
        for year, spec in self.years.items():
            days_off: set[date] = set()
            for h in spec.holidays:
                # a block may start in the year before (a New Year holiday on 12-31), not elsewhere
                if h.to.year != year or h.from_.year not in (year, year - 1):
                    raise ValueError(f"year {year}: holiday {h.name_en} lies outside the year")
                span = {date.fromordinal(o) for o in range(h.from_.toordinal(), h.to.toordinal() + 1)}
                if span & days_off:
                    raise ValueError(f"year {year}: holiday {h.name_en} overlaps another")
                days_off |= span
            for d in spec.make_up_working_days:
                if d.year != year:
                    raise ValueError(f"year {year}: make-up working day {d} lies outside the year")
                if d.isoweekday() not in self.weekend:
                    raise ValueError(f"year {year}: make-up working day {d} is not a weekend day")
                if d in days_off:
                    raise ValueError(f"year {year}: {d} is both a holiday and a make-up working day")
        return self


# ---- catalogues ----------------------------------------------------------------------------

class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CatalogueItem(_Loose):
    code: str = Field(pattern=CODE)
    name_zh: str
    name_en: str
    need_types: list[str] = []


class PolicyCategory(_Loose):
    code: str
    policies: list[CatalogueItem]


class ServiceCategory(_Loose):
    code: str
    services: list[CatalogueItem]


class PoliciesFile(_Loose):
    version: int
    categories: list[PolicyCategory] = Field(min_length=1)


class ServicesFile(_Loose):
    version: int
    need_types: dict[str, str]
    categories: list[ServiceCategory] = Field(min_length=1)


# ---- the profile ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    rules: tuple[Rule, ...]
    deadlines: DeadlinesFile
    calendar: WorkCalendar
    calendar_file: CalendarFile
    policies: dict[str, CatalogueItem]
    services: dict[str, CatalogueItem]
    need_types: dict[str, str]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.deadlines.timezone)

    def rule(self, code: str) -> Rule | None:
        return next((r for r in self.rules if r.code == code), None)

    def class_for_level(self, level: int) -> AlertClass:
        for name, policy in self.deadlines.classes.items():
            if level in policy.levels:
                return name
        # a level the model produces but the file forgot: treat it as the safer class
        return "important"


M = TypeVar("M", bound=BaseModel)


def load_profile(config_dir: Path) -> Profile:
    alerts_dir = config_dir / "alerts"
    rules = _load(alerts_dir / "rules.yaml", RulesFile)
    deadlines = _load(alerts_dir / "deadlines.yaml", DeadlinesFile)
    calendar_file = _load(alerts_dir / "calendar.yaml", CalendarFile)
    policies = _load(config_dir / "catalogues" / "policies.yaml", PoliciesFile)
    services = _load(config_dir / "catalogues" / "services.yaml", ServicesFile)
    if calendar_file.timezone != deadlines.timezone:
        raise ProfileError(f"{alerts_dir / 'calendar.yaml'}: timezone differs from deadlines.yaml")
    levels_known = {lvl for p in deadlines.classes.values() for lvl in p.levels}
    for rule in rules.rules:
        for lvl in rule.levels or ():
            if lvl not in levels_known:
                raise ProfileError(f"{alerts_dir / 'rules.yaml'}: rule {rule.code}: level {lvl} is in no class of deadlines.yaml")
    calendar = WorkCalendar(
        weekend=frozenset(calendar_file.weekend),
        years={
            year: (
                tuple(Holiday(h.name_zh, h.name_en, h.from_, h.to) for h in spec.holidays),
                frozenset(spec.make_up_working_days),
            )
            for year, spec in calendar_file.years.items()
        },
    )
    service_items = {s.code: s for c in services.categories for s in c.services}
    for item in service_items.values():
        unknown = set(item.need_types) - set(services.need_types)
        if unknown:
            raise ProfileError(f"{config_dir / 'catalogues' / 'services.yaml'}: service {item.code} names an unknown need type")
    return Profile(
        rules=tuple(rules.rules),
        deadlines=deadlines,
        calendar=calendar,
        calendar_file=calendar_file,
        policies={p.code: p for c in policies.categories for p in c.policies},
        services=service_items,
        need_types=dict(services.need_types),
    )


def _load(path: Path, model: type[M]) -> M:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProfileError(f"{path}: file not found (CONFIG_DIR points at the city profile)") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise ProfileError(f"{path}: " + "; ".join(lines)) from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("timezone is not an IANA time zone name") from exc


def _is_code(value: str) -> bool:
    return re.fullmatch(CODE, value) is not None
