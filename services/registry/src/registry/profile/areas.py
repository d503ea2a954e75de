"""The area tree of the city profile (config/areas.yaml): city -> 区县 -> 镇街 -> 村社.

Loaded once at start-up and checked: codes are 12 digits and unique, each code is a prefix-child
of its parent (district ``3301xx000000``, township ``<district 6>ddd000``, village
``<township 9>ddd``), kinds belong to their level and centroids lie on the globe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.profile.errors import ProfileError, parse, read_yaml

Code = Field(pattern=r"^\d{12}$")
Centroid = tuple[float, float]


class Level(StrEnum):
    city = "city"
    district = "district"
    township = "township"
    village = "village"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VillageIn(_Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=40)
    kind: Literal["community", "village"]
    centroid: Centroid


class TownshipIn(_Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=40)
    kind: Literal["street", "town", "township"]
    centroid: Centroid
    villages: list[VillageIn] = Field(min_length=1)


class DistrictIn(_Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=40)
    kind: Literal["district", "county", "county_city"]
    centroid: Centroid
    townships: list[TownshipIn] = Field(min_length=1)


class CityIn(_Strict):
    code: str = Code
    name: str = Field(min_length=1, max_length=40)
    centroid: Centroid


class AreasFile(_Strict):
    version: Literal[1]
    city: CityIn
    districts: list[DistrictIn] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Area:
    code: str
    name: str
    level: Level
    kind: str
    centroid: Centroid
    parent: str | None
    children: tuple[str, ...] = field(default=())


class AreaTree:
    """Every area by code, with its parent and children; read-only after loading."""

    def __init__(self, areas: dict[str, Area], city: str) -> None:
        self._areas = areas
        self.city = city
        self.by_level: dict[Level, list[Area]] = {level: [] for level in Level}
        for area in areas.values():
            self.by_level[area.level].append(area)

    def __contains__(self, code: object) -> bool:
        return code in self._areas

    def get(self, code: str) -> Area | None:
        return self._areas.get(code)

    def chain(self, code: str) -> list[Area]:
        """The area's ancestors from the city down, the area itself excluded."""
        out: list[Area] = []
        area = self._areas.get(code)
        while area is not None and area.parent is not None:
            area = self._areas[area.parent]
            out.append(area)
        return out[::-1]

    def is_village(self, code: str) -> bool:
        area = self._areas.get(code)
        return area is not None and area.level is Level.village

    def township_of(self, village: str) -> str:
        return village[:9] + "000"

    def district_of(self, village: str) -> str:
        return village[:6] + "000000"

    def counts(self) -> dict[str, int]:
        return {level.value: len(items) for level, items in self.by_level.items() if level is not Level.city}

    def districts(self) -> list[str]:
        return [a.code for a in self.by_level[Level.district]]


def load_areas(path: Path) -> AreaTree:
    raw = parse(AreasFile, path, read_yaml(path))
    areas: dict[str, Area] = {}

    def add(area: Area, where: str) -> None:
        if area.code in areas:
            raise ProfileError(path, where, "duplicate area code")
        if not (-90 <= area.centroid[0] <= 90 and -180 <= area.centroid[1] <= 180):
            raise ProfileError(path, where + ".centroid", "not a [latitude, longitude] pair")
        areas[area.code] = area

    city = raw.city
    if city.code[4:] != "0" * 8:
        raise ProfileError(path, "city.code", "a city code ends in eight zeros")
    add(Area(city.code, city.name, Level.city, "city", city.centroid, None,
             tuple(d.code for d in raw.districts)), "city")
    for i, d in enumerate(raw.districts):
        where = f"districts.{i}"
        if d.code[:4] != city.code[:4] or d.code[6:] != "0" * 6 or d.code[4:6] == "00":
            raise ProfileError(path, where + ".code", "not a district code of the city (CCCCdd000000)")
        add(Area(d.code, d.name, Level.district, d.kind, d.centroid, city.code,
                 tuple(t.code for t in d.townships)), where)
        for j, t in enumerate(d.townships):
            tw = f"{where}.townships.{j}"
            if t.code[:6] != d.code[:6] or t.code[9:] != "000" or t.code[6:9] == "000":
                raise ProfileError(path, tw + ".code", "not a township code of its district (DDDDDDttt000)")
            add(Area(t.code, t.name, Level.township, t.kind, t.centroid, d.code,
                     tuple(v.code for v in t.villages)), tw)
            for k, v in enumerate(t.villages):
                vw = f"{tw}.villages.{k}"
                if v.code[:9] != t.code[:9] or v.code[9:] == "000":
                    raise ProfileError(path, vw + ".code", "not a village code of its township (TTTTTTTTTvvv)")
                add(Area(v.code, v.name, Level.village, v.kind, v.centroid, t.code), vw)
    return AreaTree(areas, city.code)
