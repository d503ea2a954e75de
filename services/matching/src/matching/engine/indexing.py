"""The city profile as engine indices: areas, services, need types and household types, built
once per profile (the profile does not change while the service runs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.engine.model import Geography
from matching.profile import Profile
from matching.profile.areas import Level

LEVEL_COLUMN = {Level.village: 0, Level.township: 1, Level.district: 2, Level.city: 3}


@dataclass(frozen=True)
class Index:
    geography: Geography
    area: dict[str, int]
    service: dict[str, int]
    need_type: dict[str, int]
    household_type: dict[str, int]


_CACHE: dict[int, tuple[Profile, Index]] = {}


def _build(profile: Profile) -> Index:
    areas = sorted((profile.areas.get(c) for c in _codes(profile)), key=lambda a: a.code)  # type: ignore[union-attr]
    area_index = {a.code: i for i, a in enumerate(areas)}
    chain = np.full((len(areas), 4), -1, dtype=np.int32)
    for i, a in enumerate(areas):
        for code in profile.areas.chain(a.code):
            ancestor = profile.areas.get(code)
            assert ancestor is not None
            chain[i, LEVEL_COLUMN[ancestor.level]] = area_index[code]
    geography = Geography(
        codes=[a.code for a in areas], lat=np.array([a.lat for a in areas]), lon=np.array([a.lon for a in areas]),
        chain=chain,
    )
    return Index(
        geography=geography, area=area_index,
        service={code: i for i, code in enumerate(profile.catalogue.services)},
        need_type={code: i for i, code in enumerate(profile.catalogue.need_types)},
        household_type={code: i for i, code in enumerate(profile.rules.household_type_codes)},
    )


def _codes(profile: Profile) -> list[str]:
    out = [profile.areas.city]
    for level in (Level.district, Level.township, Level.village):
        out += [a.code for a in profile.areas.of_level(level)]
    return out


def index_of(profile: Profile) -> Index:
    cached = _CACHE.get(id(profile))
    if cached is None or cached[0] is not profile:  # the profile is kept, so its id is not reused
        cached = (profile, _build(profile))
        _CACHE[id(profile)] = cached
    return cached[1]


def mask(codes: list[str] | None, index: dict[str, int]) -> int:
    return sum(1 << index[c] for c in codes or () if c in index)
