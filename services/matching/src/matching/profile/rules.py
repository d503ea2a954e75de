"""How matching weighs things (config/matching/matching.yaml): priority from risk level and
urgency, the objective's distance units, what sites can be co-located with, the relay line."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from matching.profile.errors import ProfileError, Strict, parse, read_yaml

CODE = r"^[a-z][a-z0-9_]{1,63}$"
URGENCIES = ("urgent", "normal", "low")


class Priority(Strict):
    """优先级 = level weight x urgency weight."""

    level_weights: dict[int, int] = Field(min_length=1)
    unknown_level_weight: int = Field(ge=1, le=10)
    urgency_weights: dict[str, int]

    @model_validator(mode="after")
    def _complete(self) -> Priority:
        if set(self.urgency_weights) != set(URGENCIES):
            raise ValueError("urgency_weights needs exactly: urgent, normal, low")
        if not all(1 <= w <= 10 for w in [*self.level_weights.values(), *self.urgency_weights.values()]):
            raise ValueError("weights are between 1 and 10")
        return self

    def of(self, level: int | None, urgency: str) -> int:
        weight = self.level_weights.get(level, self.unknown_level_weight) if level is not None else self.unknown_level_weight
        return weight * self.urgency_weights[urgency]

    @property
    def maximum(self) -> int:
        return max([*self.level_weights.values(), self.unknown_level_weight]) * max(self.urgency_weights.values())


class Objective(Strict):
    """A match is worth ``priority x priority_unit - distance``, distance counted in units."""

    priority_unit: int = Field(ge=1, le=100_000)
    distance_unit_km: float = Field(gt=0, le=100)
    distance_cap_km: float = Field(gt=0, le=1000)

    @property
    def distance_cap_units(self) -> int:
        return round(self.distance_cap_km / self.distance_unit_km)


class Named(Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=100)


class Relay(Strict):
    """Partners never get a family's contact: the platform relays (平台转接)."""

    hotline: str = Field(min_length=3, max_length=20)
    note_zh: str = Field(min_length=1, max_length=100)
    note_en: str = Field(min_length=1, max_length=200)


class MatchingRules(Strict):
    version: int = Field(ge=1, le=1)
    timezone: str
    priority: Priority
    objective: Objective
    household_types: list[Named] = Field(min_length=1, max_length=16)
    co_location: list[Named] = Field(min_length=1, max_length=32)
    supermarket: str = Field(pattern=CODE, description="the co-location code of a charity supermarket (幸福超市)")
    micro_wish_service: str = Field(pattern=CODE)
    relay: Relay

    @model_validator(mode="after")
    def _consistent(self) -> MatchingRules:
        if self.objective.priority_unit <= self.objective.distance_cap_units:
            # Otherwise a far offer could be worth less than no match at all.
            raise ValueError("objective.priority_unit must exceed distance_cap_km / distance_unit_km")
        if self.supermarket not in {c.code for c in self.co_location}:
            raise ValueError("supermarket must be one of the co_location codes")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def household_type_codes(self) -> list[str]:
        return [h.code for h in self.household_types]

    @property
    def co_location_codes(self) -> list[str]:
        return [c.code for c in self.co_location]


def load_rules(path: Path) -> MatchingRules:
    rules = parse(MatchingRules, path, read_yaml(path))
    try:
        ZoneInfo(rules.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProfileError(path, "timezone", "not a known IANA time zone") from None
    return rules
