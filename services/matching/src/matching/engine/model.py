"""What the engine works on: needs and offers as arrays, independent of the database.

Indices everywhere: a need's village and an offer's covered areas are indices into the area
list of ``Geography``; services and need types are indices into the catalogue's lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

I32 = NDArray[np.int32]
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

NO_AGE = -1  # padding of member ages; also "no bound" for an offer's min/max age


@dataclass(frozen=True)
class Geography:
    """Areas by index, each with the indices of its village, township, district and city.

    ``chain[a]`` holds, at levels 0-3 (village, township, district, city), the area at that level
    that contains ``a`` (``a`` itself at its own level) and -1 below its level.
    """

    codes: list[str]
    lat: F64
    lon: F64
    chain: I32  # (areas, 4)

    @property
    def size(self) -> int:
        return len(self.codes)


@dataclass
class Needs:
    ids: list[str]  # in the order the engine serves ties: oldest first
    village: I32  # area index of the village
    service: I32
    priority: I64
    household_type: I32  # -1: unknown
    need_mask: I64  # bit per need type
    ages: NDArray[np.int16]  # (n, k) padded with NO_AGE

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Offers:
    ids: list[str]
    lat: F64  # the offer's site
    lon: F64
    remaining: I64  # capacity left in the current period
    min_age: I32  # NO_AGE: no bound
    max_age: I32
    need_mask: I64  # 0: any need type
    household_mask: I64  # 0: any household type
    cover_offer: I32  # (offer, service, area) triples: the offer covers this service in this area
    cover_service: I32
    cover_area: I32

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def constrained(self) -> NDArray[np.bool_]:
        return (self.min_age != NO_AGE) | (self.max_age != NO_AGE) | (self.need_mask != 0) | (self.household_mask != 0)


@dataclass
class Weights:
    priority_unit: int
    distance_unit_km: float
    distance_cap_units: int


@dataclass
class Problem:
    geography: Geography
    needs: Needs
    offers: Offers
    weights: Weights
    n_services: int
    excluded_need: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # pairs never to propose again
    excluded_offer: I64 = field(default_factory=lambda: np.zeros(0, np.int64))


# Why a need stays unmatched (the order of these codes is the order of the checks).
NO_OFFER_IN_AREA, NOT_ELIGIBLE, CAPACITY_EXHAUSTED = 1, 2, 3
REASONS = {NO_OFFER_IN_AREA: "no_offer_in_area", NOT_ELIGIBLE: "not_eligible", CAPACITY_EXHAUSTED: "capacity_exhausted"}


@dataclass
class Solution:
    offer_of: I64  # per need: offer index, or -1
    distance_units: I64  # per need: distance in units to its offer, or 0
    distance_km: F64
    reason: NDArray[np.int8]  # per need: 0 when matched, else a code of REASONS
    objective: int  # sum over matches of priority x unit - distance units
    groups: int
    arcs: int
    solver_seconds: float
