"""The area tree (config/areas.yaml): city -> 区县 district -> 镇街 township -> 村社 village.

Matching needs it to check that offers cover areas of the city, to place needs at their
village's centroid (the de-identified location of a family) and to measure distances to sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import Field

from matching.profile.errors import ProfileError, Strict, parse, read_yaml

CODE = r"^\d{12}$"
Centroid = tuple[float, float]


class Level(StrEnum):
    city = "city"
    district = "district"
    township = "township"
    village = "village"


class _Village(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=40)
    kind: str = Field(min_length=1, max_length=20)
    centroid: Centroid


class _Township(_Village):
    villages: list[_Village] = Field(min_length=1)


class _District(_Village):
    townships: list[_Township] = Field(min_length=1)


class _City(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=40)
    centroid: Centroid


class _AreasFile(Strict):
    version: int = Field(ge=1, le=1)
    city: _City
    districts: list[_District] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Area:
    code: str
    name: str
    level: Level
    lat: float
    lon: float
    parent: str | None


class AreaTree:
    """Every area by code; read-only once loaded."""

    def __init__(self, city: str, areas: dict[str, Area]) -> None:
        self.city = city
        self._areas = areas
        self.villages = [a for a in areas.values() if a.level is Level.village]

    def __contains__(self, code: object) -> bool:
        return code in self._areas

    def __len__(self) -> int:
        return len(self._areas)

    def get(self, code: str) -> Area | None:
        return self._areas.get(code)

    def is_village(self, code: str) -> bool:
        area = self._areas.get(code)
        return area is not None and area.level is Level.village

    def chain(self, code: str) -> list[str]:
        """The codes from the area itself up to the city (village, township, district, city)."""
        out = []
        area = self._areas.get(code)
        while area is not None:
            out.append(area.code)
            area = self._areas.get(area.parent) if area.parent else None
        return out

    def of_level(self, level: Level) -> list[Area]:
        return [a for a in self._areas.values() if a.level is level]


def load_areas(path: Path) -> AreaTree:
    raw = parse(_AreasFile, path, read_yaml(path))
    areas: dict[str, Area] = {}

    def add(where: str, code: str, name: str, level: Level, centroid: Centroid, parent: str | None) -> None:
        if code in areas:
            raise ProfileError(path, where + ".code", "duplicate area code")
        lat, lon = centroid
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ProfileError(path, where + ".centroid", "not a [latitude, longitude] pair")
        areas[code] = Area(code, name, level, lat, lon, parent)

    city = raw.city
    add("city", city.code, city.name, Level.city, city.centroid, None)
    for i, d in enumerate(raw.districts):
        wd = f"districts.{i}"
        if d.code[:4] != city.code[:4] or d.code[6:] != "000000":
            raise ProfileError(path, wd + ".code", "not a district code of the city")
        add(wd, d.code, d.name, Level.district, d.centroid, city.code)
        for j, t in enumerate(d.townships):
            wt = f"{wd}.townships.{j}"
            if t.code[:6] != d.code[:6] or t.code[9:] != "000" or t.code[6:9] == "000":
                raise ProfileError(path, wt + ".code", "not a township code of its district")
            add(wt, t.code, t.name, Level.township, t.centroid, d.code)
            for k, v in enumerate(t.villages):
                wv = f"{wt}.villages.{k}"
                if v.code[:9] != t.code[:9] or v.code[9:] == "000":
                    raise ProfileError(path, wv + ".code", "not a village code of its township")
                add(wv, v.code, v.name, Level.village, v.centroid, t.code)
    return AreaTree(city.code, areas)
