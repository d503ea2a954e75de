"""The shared catalogues (config/catalogues/): 16 policies in 7 categories, 31 services in 9
categories with the need types each answers. Scoring validates every reference against them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from scoring.rules.errors import ConfigError, load_yaml, parse_file

CODE = r"^[a-z][a-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Policy(_Strict):
    code: str = Field(pattern=CODE)
    name_zh: str
    name_en: str


class _PolicyCategory(_Strict):
    code: str = Field(pattern=CODE)
    name_zh: str
    name_en: str
    policies: list[_Policy] = Field(min_length=1)


class _PoliciesFile(_Strict):
    version: int
    categories: list[_PolicyCategory] = Field(min_length=1)


class _Service(_Strict):
    code: str = Field(pattern=CODE)
    name_zh: str
    name_en: str
    need_types: list[str] = Field(min_length=1)


class _ServiceCategory(_Strict):
    code: str = Field(pattern=CODE)
    name_zh: str
    name_en: str
    services: list[_Service] = Field(min_length=1)


class _ServicesFile(_Strict):
    version: int
    need_types: dict[str, str] = Field(min_length=1)
    categories: list[_ServiceCategory] = Field(min_length=1)


@dataclass(frozen=True)
class CatalogueEntry:
    code: str
    category: str
    name_zh: str
    name_en: str
    need_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalogues:
    policies: dict[str, CatalogueEntry]  # in catalogue order
    services: dict[str, CatalogueEntry]
    need_types: dict[str, str]  # code -> "中文 / English"


def load_catalogues(policies_path: Path, services_path: Path) -> Catalogues:
    pf = parse_file(_PoliciesFile, policies_path, load_yaml(policies_path))
    sf = parse_file(_ServicesFile, services_path, load_yaml(services_path))
    policies: dict[str, CatalogueEntry] = {}
    for ci, cat in enumerate(pf.categories):
        for pi, p in enumerate(cat.policies):
            if p.code in policies:
                raise ConfigError(policies_path, f"categories.{ci}.policies.{pi}.code", "duplicate policy code")
            policies[p.code] = CatalogueEntry(p.code, cat.code, p.name_zh, p.name_en)
    services: dict[str, CatalogueEntry] = {}
    for ci, cat in enumerate(sf.categories):
        for si, s in enumerate(cat.services):
            where = f"categories.{ci}.services.{si}"
            if s.code in services:
                raise ConfigError(services_path, where + ".code", "duplicate service code")
            unknown = [n for n in s.need_types if n not in sf.need_types]
            if unknown:
                raise ConfigError(services_path, where + ".need_types", f"unknown need types {unknown}")
            services[s.code] = CatalogueEntry(s.code, cat.code, s.name_zh, s.name_en, tuple(s.need_types))
    return Catalogues(policies, services, dict(sf.need_types))
