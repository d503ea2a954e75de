"""The rules of the points programme (config/matching/points.yaml): 春风点数 earned by a monthly
allowance by risk level and by rewards, spent on goods at a charity supermarket (幸福超市)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from matching.profile.errors import Strict, parse, read_yaml

CODE = r"^[a-z][a-z0-9_]{1,63}$"


class Allowance(Strict):
    code: str = Field(pattern=CODE)
    by_level: dict[int, int] = Field(min_length=1)
    unknown_level: int = Field(ge=0, le=100_000)

    def amount(self, level: int | None) -> int:
        return self.by_level.get(level, self.unknown_level) if level is not None else self.unknown_level


class Reward(Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=100)
    points: int = Field(ge=1, le=100_000)


class Good(Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=100)
    points: int = Field(ge=1, le=100_000)


class PointsRules(Strict):
    version: int = Field(ge=1, le=1)
    name_zh: str = Field(min_length=1, max_length=20)
    monthly_allowance: Allowance
    rewards: list[Reward] = Field(max_length=100)
    officer_credit_max: int = Field(ge=1, le=100_000)
    redemption_max: int = Field(ge=1, le=1_000_000)
    goods: list[Good] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _unique(self) -> PointsRules:
        for name, items in (("rewards", self.rewards), ("goods", self.goods)):
            codes = [i.code for i in items]
            if len(codes) != len(set(codes)):
                raise ValueError(f"{name} codes must be unique")
        if self.monthly_allowance.code in {r.code for r in self.rewards}:
            raise ValueError("the allowance code must differ from every reward code")
        if any(v < 0 for v in self.monthly_allowance.by_level.values()):
            raise ValueError("allowances are not negative")
        return self

    def reward(self, code: str) -> Reward | None:
        return next((r for r in self.rewards if r.code == code), None)

    def good(self, code: str) -> Good | None:
        return next((g for g in self.goods if g.code == code), None)


def load_points(path: Path) -> PointsRules:
    return parse(PointsRules, path, read_yaml(path))
