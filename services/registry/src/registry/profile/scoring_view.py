"""The scoring-view contract (config/scoring-view.yaml): the fields the registry must compute.

The registry checks at start-up that its view computation yields exactly these fields, and uses
the declared types and enum values to send anything it cannot vouch for as ``missing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.profile.errors import ProfileError, parse, read_yaml


class ViewField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    group: str
    type: Literal["int", "float", "bool", "enum", "date"]
    unit: str | None = None
    nullable: bool = False
    values: list[str] | None = None
    values_from: str | None = None
    description: str = ""


class ScoringViewFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    groups: dict[str, str]
    fields: list[ViewField] = Field(min_length=1)


class ScoringViewSpec:
    def __init__(self, raw: ScoringViewFile, district_codes: list[str]) -> None:
        self.version = raw.version
        self.fields = {f.name: f for f in raw.fields}
        self.names = tuple(f.name for f in raw.fields)
        self.enum_values: dict[str, frozenset[str]] = {}
        for f in raw.fields:
            if f.type == "enum":
                values = district_codes if f.values_from == "areas.districts" else (f.values or [])
                self.enum_values[f.name] = frozenset(values)


def load_scoring_view(path: Path, district_codes: list[str]) -> ScoringViewSpec:
    raw = parse(ScoringViewFile, path, read_yaml(path))
    seen: set[str] = set()
    for i, f in enumerate(raw.fields):
        where = f"fields.{i}"
        if f.name in seen:
            raise ProfileError(path, where + ".name", "duplicate field name")
        seen.add(f.name)
        if f.group not in raw.groups:
            raise ProfileError(path, where + ".group", "not one of the declared groups")
        if f.type == "enum" and not f.values and f.values_from != "areas.districts":
            raise ProfileError(path, where, "an enum needs values or values_from: areas.districts")
    return ScoringViewSpec(raw, district_codes)
