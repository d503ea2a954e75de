"""The scoring view as scoring reads it: the fields of config/scoring-view.yaml with the ranges of
config/scoring/fields.yaml, and how one household's view becomes a row of numbers.

A row holds one float per field, in the contract's order: numbers as they are, booleans 0/1,
enum values by their index, the district by its 12-digit code, and NaN for a fact that is
unknown. Preparing a view never fails: a missing fact, a value of the wrong type and a value
outside its range are each noted (by field name, never by value) and treated -- unknown, or
clamped to the nearest bound.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from scoring.rules.errors import ConfigError, load_yaml, parse_file

FieldType = Literal["int", "float", "bool", "enum", "date"]
DISTRICTS = "areas.districts"


class _ViewFieldFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    group: str
    type: FieldType
    unit: str | None = None
    nullable: bool = False
    values: list[str] | None = None
    values_from: str | None = None
    description: str = ""


class _ViewFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    groups: dict[str, str]
    fields: list[_ViewFieldFile] = Field(min_length=1)


class _RangesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    defaults: dict[str, tuple[float, float]]
    ranges: dict[str, tuple[float, float]] = {}


@dataclass(frozen=True, slots=True)
class ViewField:
    name: str
    index: int
    group: str
    type: FieldType
    nullable: bool
    description: str
    unit: str | None = None
    values: tuple[str, ...] | None = None  # enum values; None for the district (codes, not a list)
    lo: float | None = None
    hi: float | None = None

    @property
    def is_district(self) -> bool:
        return self.type == "enum" and self.values is None

    @property
    def is_numeric(self) -> bool:
        return self.type in ("int", "float", "date")


@dataclass(frozen=True)
class Prepared:
    """One household's facts, ready to score: the row, and what was done to make it."""

    row: np.ndarray
    missing: tuple[str, ...]  # unknown: absent, null where a value is due, or named by the registry
    invalid: tuple[str, ...]  # a value of the wrong type or outside the enum: treated as unknown
    clamped: tuple[str, ...]  # outside the plausible range: clamped to the nearest bound


@dataclass
class ViewCatalogue:
    """The fields scoring may read, with their types, ranges and encodings."""

    fields: list[ViewField]
    version: int
    district_codes: tuple[str, ...] = ()
    by_name: dict[str, ViewField] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {f.name: f for f in self.fields}
        spec = [(f.name, f.type, f.values, f.lo, f.hi) for f in self.fields]
        self.layout = hashlib.blake2b(json.dumps(spec).encode(), digest_size=6).hexdigest()
        self._enum_index = {f.name: {v: i for i, v in enumerate(f.values)} for f in self.fields if f.values}

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def __len__(self) -> int:
        return len(self.fields)

    # ---- one value ----------------------------------------------------------------------
    def encode_value(self, f: ViewField, value: Any) -> float | None:
        """The number standing for a valid value, or None when it is not a value of the field."""
        if f.type == "bool":
            if isinstance(value, bool):
                return 1.0 if value else 0.0
            if isinstance(value, int) and value in (0, 1):
                return float(value)
            return None
        if f.type == "enum":
            if not isinstance(value, str):
                return None
            if f.values is None:  # the district: its 12-digit code as a number
                return float(value) if len(value) == 12 and value.isdigit() else None
            index = self._enum_index[f.name].get(value)
            return None if index is None else float(index)
        if f.type == "date":
            try:
                return float(date.fromisoformat(value).toordinal()) if isinstance(value, str) else None
            except ValueError:
                return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        number = float(value)
        if not math.isfinite(number) or (f.type == "int" and not number.is_integer()):
            return None
        return number

    def decode_value(self, f: ViewField, number: float) -> Any:
        """The Python value of an encoded number (None for NaN): the reference reads these."""
        if math.isnan(number):
            return None
        if f.type == "bool":
            return number == 1.0
        if f.type == "enum":
            return f"{int(number):012d}" if f.values is None else f.values[int(number)]
        if f.type == "int":
            return int(number)
        if f.type == "date":
            return date.fromordinal(int(number))
        return number

    # ---- one household ------------------------------------------------------------------
    def prepare(self, view: Mapping[str, Any], missing: Iterable[str] = ()) -> Prepared:
        said_missing = set(missing)
        row = np.full(len(self.fields), np.nan)
        unknown: list[str] = []
        invalid: list[str] = []
        clamped: list[str] = []
        for f in self.fields:
            value = view.get(f.name)
            if value is None or f.name in said_missing:
                # A null in a nullable field that the registry does not call missing means "not
                # applicable" (no exit, no disability): unknown to the rules, but not a gap.
                if f.name in said_missing or not f.nullable or f.name not in view:
                    unknown.append(f.name)
                continue
            number = self.encode_value(f, value)
            if number is None:
                invalid.append(f.name)
                continue
            if f.lo is not None and f.hi is not None and not (f.lo <= number <= f.hi):
                number = min(max(number, f.lo), f.hi)
                clamped.append(f.name)
            row[f.index] = number
        return Prepared(row, tuple(unknown), tuple(invalid), tuple(clamped))

    def prepare_many(self, views: Sequence[Mapping[str, Any]], missing: Sequence[Iterable[str]]) -> tuple[np.ndarray, list[Prepared]]:
        """``prepare`` for a batch, field by field: a (fields x households) matrix and each
        household's notes (their ``row`` is a view of the matrix column). Same results as
        ``prepare``; a column of plain numbers is converted by NumPy in one go."""
        n = len(views)
        matrix = np.full((len(self.fields), n), np.nan)
        said_by_field: dict[str, list[int]] = {}  # who said each field missing, in household order
        for i, m in enumerate(missing):
            for name in set(m):
                said_by_field.setdefault(name, []).append(i)
        notes: list[tuple[list[str], list[str], list[str]]] = [([], [], []) for _ in range(n)]
        plain = {int, float, type(None)}
        for f in self.fields:
            name = f.name
            values = [v.get(name) for v in views]
            # Said missing: unknown whatever was sent (None here, so a column of numbers keeps
            # the fast path; a sentinel in it sent every column of a batch down the slow one).
            said_here = said_by_field.get(name, [])
            for i in said_here:
                values[i] = None
            kinds = set(map(type, values))
            column = matrix[f.index]
            if f.type in ("int", "float") and kinds <= plain:
                column[:] = np.array(values, dtype=np.float64)  # None -> NaN
                bad = ~np.isfinite(column) & ~np.isnan(column)
                if f.type == "int":
                    bad |= np.isfinite(column) & (column != np.floor(column))
                for i in np.flatnonzero(bad).tolist():
                    notes[i][1].append(name)
                column[bad] = np.nan
            elif f.type == "bool" and kinds <= {bool, type(None)}:
                column[:] = np.array(values, dtype=np.float64)
            elif f.values is not None and kinds <= {str, type(None)}:
                index = self._enum_index[name]
                codes = [None if v is None else index.get(v, -1.0) for v in values]
                column[:] = np.array(codes, dtype=np.float64)
                for i in np.flatnonzero(column < 0).tolist():
                    notes[i][1].append(name)
                column[column < 0] = np.nan
            else:
                for i, value in enumerate(values):
                    if value is None:
                        continue
                    number = self.encode_value(f, value)
                    if number is None:
                        notes[i][1].append(name)
                    else:
                        column[i] = number
            if type(None) in kinds:
                said_set = set(said_here)
                for i in [i for i, value in enumerate(values) if value is None]:
                    # as in prepare: said missing, or null where a value is due, or absent
                    if i in said_set or not f.nullable or name not in views[i]:
                        notes[i][0].append(name)
            if f.lo is not None and f.hi is not None:
                with np.errstate(invalid="ignore"):
                    outside = (column < f.lo) | (column > f.hi)
                if outside.any():
                    for i in np.flatnonzero(outside).tolist():
                        notes[i][2].append(name)
                    np.clip(column, f.lo, f.hi, out=column, where=outside)
        order = {f.name: f.index for f in self.fields}
        prepared = []
        for i, (unknown, invalid, clamped) in enumerate(notes):
            invalid.sort(key=order.__getitem__)
            prepared.append(Prepared(matrix[:, i], tuple(unknown), tuple(invalid), tuple(clamped)))
        return matrix, prepared

    def decode_row(self, row: Sequence[float]) -> dict[str, Any]:
        return {f.name: self.decode_value(f, float(row[f.index])) for f in self.fields}

    def encode_facts(self, facts: Mapping[str, Any]) -> np.ndarray:
        """A row from already-valid Python facts (None for unknown); used by tests and levers."""
        row = np.full(len(self.fields), np.nan)
        for f in self.fields:
            value = facts.get(f.name)
            if value is not None:
                number = self.encode_value(f, value)
                if number is None:
                    raise ValueError(f"{f.name}: not a value of this field")
                row[f.index] = number
        return row


def canonical_json(view: Mapping[str, Any]) -> str:
    """The view as canonical JSON text (sorted keys, no spaces, UTF-8): what is stored and hashed.

    orjson, 6x faster than the standard library here; an integer past 64 bits, which orjson
    refuses, falls back to it (same text but for the exponent form of small floats)."""
    try:
        return orjson.dumps(view, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:
        return json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def input_hash(view: Mapping[str, Any] | str, missing: Iterable[str]) -> str:
    """The hash of what the registry sent: the canonical view and the sorted missing list."""
    text = view if isinstance(view, str) else canonical_json(view)
    return hashlib.sha256(f"{text}|{','.join(sorted(set(missing)))}".encode()).hexdigest()


def load_catalogue(view_path: Path, ranges_path: Path, district_codes: Sequence[str] = ()) -> ViewCatalogue:
    """Read the view contract and scoring's ranges; a mistake names the file and the field."""
    view = parse_file(_ViewFile, view_path, load_yaml(view_path))
    ranges = parse_file(_RangesFile, ranges_path, load_yaml(ranges_path))
    names = {f.name for f in view.fields}
    for name in ranges.ranges:
        if name not in names:
            raise ConfigError(ranges_path, f"ranges.{name}", "not a field of the scoring view")
    fields: list[ViewField] = []
    for i, f in enumerate(view.fields):
        where = f"fields.{i}"
        if f.group not in view.groups:
            raise ConfigError(view_path, where + ".group", "not one of the declared groups")
        if f.type == "enum" and not f.values and f.values_from != DISTRICTS:
            raise ConfigError(view_path, where, f"an enum needs values or values_from: {DISTRICTS}")
        lo = hi = None
        if f.type in ("int", "float"):
            bounds = ranges.ranges.get(f.name) or ranges.defaults.get(f.unit or "") or ranges.defaults.get(f.type)
            if bounds is None:
                raise ConfigError(ranges_path, "defaults", f"no range for {f.name} (unit {f.unit}, type {f.type})")
            lo, hi = float(bounds[0]), float(bounds[1])
            if lo > hi:
                raise ConfigError(ranges_path, f"ranges.{f.name}", "min is above max")
        values = tuple(f.values) if f.values else None
        fields.append(ViewField(f.name, i, f.group, f.type, f.nullable, f.description, f.unit, values, lo, hi))
    return ViewCatalogue(fields, view.version, tuple(district_codes))


def district_codes_from_areas(path: Path) -> tuple[str, ...]:
    """The district codes of the city profile (config/areas.yaml), for the district enum."""
    data = load_yaml(path)
    districts = data.get("districts") if isinstance(data, dict) else None
    if not isinstance(districts, list):
        raise ConfigError(path, "districts", "a list of districts is required")
    return tuple(str(d.get("code")) for d in districts if isinstance(d, dict))
