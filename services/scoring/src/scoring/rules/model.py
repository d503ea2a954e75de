"""A validated scoring model, compiled to the form both implementations read.

Built only by ``scoring.rules.validation.compile_model``; conditions are parsed trees, names are
resolved, enum values checked. Immutable: a model version never changes once stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from scoring.rules.expressions import Node, names_read


@dataclass(frozen=True)
class DimensionSpec:
    code: str
    name_zh: str
    name_en: str
    max: float
    base: float
    rationale: str


@dataclass(frozen=True)
class BandSpec:
    level: int
    lo: float
    hi: float
    top: bool  # the band reaching the total includes it
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class TierSpec:
    condition: Node
    points: float
    reason_zh: str
    reason_en: str


@dataclass(frozen=True)
class IndicatorSpec:
    code: str
    dimension: int  # index into Model.dimensions
    name_zh: str
    name_en: str
    tiers: tuple[TierSpec, ...]

    @property
    def fields(self) -> list[str]:
        seen: dict[str, None] = {}
        for t in self.tiers:
            for n in names_read(t.condition):
                seen.setdefault(n, None)
        return list(seen)


@dataclass(frozen=True)
class RuleSpec:
    code: str
    name_zh: str
    name_en: str
    condition: Node
    reason_zh: str
    reason_en: str


@dataclass(frozen=True)
class PolicySpec:
    code: str
    category: str
    name_zh: str
    name_en: str
    eligible: Node
    receiving: Node
    basis: str
    rule_zh: str
    rule_en: str


@dataclass(frozen=True)
class ServiceSpec:
    need: int  # index into Model.needs
    service: str
    condition: Node | None


@dataclass(frozen=True)
class LeverSpec:
    code: str
    label_zh: str
    label_en: str
    assignments: tuple[tuple[str, Node], ...]  # all evaluated on the facts before the lever


@dataclass(frozen=True)
class Treatment:
    value: Any  # the Python value an unknown fact is taken to have
    note_zh: str
    note_en: str


@dataclass
class Model:
    version: str
    title_zh: str
    title_en: str
    total: float
    dimensions: tuple[DimensionSpec, ...]
    bands: tuple[BandSpec, ...]
    standards_default: dict[str, float]
    standards_by_district: dict[str, dict[str, float]]
    missing: dict[str, Treatment]
    indicators: tuple[IndicatorSpec, ...]
    difficulty: tuple[RuleSpec, ...]
    causes: tuple[RuleSpec, ...]
    needs: tuple[RuleSpec, ...]
    five_types: tuple[RuleSpec, ...]
    policies: tuple[PolicySpec, ...]
    services: tuple[ServiceSpec, ...]
    levers: tuple[LeverSpec, ...]
    document: dict[str, Any] = field(repr=False)

    def __post_init__(self) -> None:
        canonical = json.dumps(self.document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self.document_hash = hashlib.sha256(canonical.encode()).hexdigest()
        self.indicator_index = {ind.code: i for i, ind in enumerate(self.indicators)}
        self.dimension_index = {d.code: i for i, d in enumerate(self.dimensions)}

    def standard(self, district: str | None, name: str) -> float:
        """A district's standard, or the default when the district sets none (or is unknown)."""
        if district is not None:
            own = self.standards_by_district.get(district)
            if own is not None and name in own:
                return own[name]
        return self.standards_default[name]

    def level_of(self, score: float) -> int:
        for band in self.bands:
            if band.lo <= score < band.hi or (band.top and score == band.hi):
                return band.level
        raise AssertionError("validated bands cover the whole scale")

    @property
    def max_level(self) -> int:
        return max(b.level for b in self.bands)

    def band_of_level(self, level: int) -> BandSpec:
        return next(b for b in self.bands if b.level == level)

    def fields_read_by_indicators(self) -> set[str]:
        out: set[str] = set()
        for ind in self.indicators:
            out.update(n for n in ind.fields if "." not in n)
            out.update("district_code" for n in ind.fields if n.startswith("standard."))
        return out
