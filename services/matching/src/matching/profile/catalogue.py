"""The service catalogue (config/catalogues/services.yaml): 9 categories, 31 services of the
service consortium (助联体), shared by scoring, alerts and matching; codes are stable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from matching.profile.errors import ProfileError, Strict, parse, read_yaml

CODE = r"^[a-z][a-z0-9_]{1,63}$"


class _Service(Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=100)
    need_types: list[str] = Field(min_length=1, max_length=9)


class _Category(Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=100)
    services: list[_Service] = Field(min_length=1)


class _CatalogueFile(Strict):
    version: int = Field(ge=1, le=1)
    need_types: dict[str, str] = Field(min_length=1)
    categories: list[_Category] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Service:
    code: str
    name_zh: str
    name_en: str
    category: str
    need_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    services: tuple[Service, ...]


@dataclass(frozen=True)
class Catalogue:
    need_types: dict[str, str]
    categories: tuple[Category, ...]
    services: dict[str, Service]

    def __contains__(self, code: object) -> bool:
        return code in self.services


def load_catalogue(path: Path) -> Catalogue:
    raw = parse(_CatalogueFile, path, read_yaml(path))
    services: dict[str, Service] = {}
    categories = []
    for i, c in enumerate(raw.categories):
        items = []
        for j, s in enumerate(c.services):
            where = f"categories.{i}.services.{j}"
            if s.code in services:
                raise ProfileError(path, where + ".code", "duplicate service code")
            unknown = [t for t in s.need_types if t not in raw.need_types]
            if unknown:
                raise ProfileError(path, where + ".need_types", "names a need type not listed under need_types")
            service = Service(s.code, s.name_zh, s.name_en, c.code, tuple(s.need_types))
            services[s.code] = service
            items.append(service)
        categories.append(Category(c.code, c.name_zh, c.name_en, tuple(items)))
    return Catalogue(dict(raw.need_types), tuple(categories), services)
