"""Synthetic matching problems, for the engine's tests (against an exact oracle) and benchmarks.

Shaped like a city: districts of townships of villages around centroids; offers at sites covering
their township, their district or their district and a neighbour's; needs in villages of skewed
size, asking for services of skewed demand. Seeded: the same arguments give the same problem.
"""

from __future__ import annotations

import numpy as np

from matching.engine.model import NO_AGE, Geography, Needs, Offers, Problem, Weights


def geography(rng: np.random.Generator, districts: int, townships: int, villages: int) -> tuple[Geography, dict]:
    d_xy = np.c_[rng.uniform(29.6, 30.5, districts), rng.uniform(119.0, 120.5, districts)]
    t_d = np.sort(rng.integers(0, districts, townships))
    t_d[:districts] = np.arange(min(districts, townships))  # every district has a township
    t_d.sort()
    t_xy = d_xy[t_d] + rng.normal(0, 0.05, (townships, 2))
    v_t = np.sort(np.r_[np.arange(townships), rng.integers(0, townships, max(villages - townships, 0))])[:villages]
    v_xy = t_xy[v_t] + rng.normal(0, 0.012, (villages, 2))
    # Area indices: city 0, districts 1.., townships, villages.
    city = 0
    d0, t0, v0 = 1, 1 + districts, 1 + districts + townships
    size = v0 + villages
    codes = ["330100000000"] + [f"33{d + 1:04d}000000" for d in range(districts)]
    codes += [f"33{t_d[t] + 1:04d}{t + 1:03d}000" for t in range(townships)]
    codes += [f"33{t_d[v_t[v]] + 1:04d}{v_t[v] + 1:03d}{v + 1:03d}" for v in range(villages)]
    lat = np.r_[30.27, d_xy[:, 0], t_xy[:, 0], v_xy[:, 0]]
    lon = np.r_[120.16, d_xy[:, 1], t_xy[:, 1], v_xy[:, 1]]
    chain = np.full((size, 4), -1, dtype=np.int32)
    chain[:, 3] = city
    chain[d0:t0, 2] = np.arange(d0, t0)
    chain[t0:v0, 1] = np.arange(t0, v0)
    chain[t0:v0, 2] = d0 + t_d
    chain[v0:, 0] = np.arange(v0, size)
    chain[v0:, 1] = t0 + v_t
    chain[v0:, 2] = d0 + t_d[v_t]
    layout = {"d0": d0, "t0": t0, "v0": v0, "t_d": t_d, "v_t": v_t, "d_xy": d_xy, "t_xy": t_xy, "v_xy": v_xy}
    return Geography(codes=codes, lat=lat, lon=lon, chain=chain), layout


def problem(*, seed: int, needs: int, offers: int, districts: int = 14, townships: int = 192, villages: int = 3222,
            services: int = 31, need_types: int = 9, household_types: int = 4, capacity_mean: float = 50.0,
            services_per_offer: int = 3, constrained_share: float = 0.3, priority_unit: int = 100,
            distance_unit_km: float = 0.5, distance_cap_units: int = 60) -> Problem:
    rng = np.random.default_rng(seed)
    geo, lay = geography(rng, districts, townships, villages)
    v0, t0, d0 = lay["v0"], lay["t0"], lay["d0"]
    t_d = lay["t_d"]

    service_p = 1 / np.arange(1, services + 1) ** 1.1
    service_p /= service_p.sum()
    village_p = rng.lognormal(0, 1.0, villages)
    village_p /= village_p.sum()
    service_types = [rng.choice(need_types, size=rng.integers(1, 3), replace=False) for _ in range(services)]

    # Offers: at a township's site, covering the township (55%), the district (35%) or the district
    # and its nearest neighbour (10%).
    o_t = rng.integers(0, townships, offers)
    o_xy = lay["t_xy"][o_t] + rng.normal(0, 0.004, (offers, 2))
    near = np.array([np.argsort(((lay["d_xy"] - lay["d_xy"][d]) ** 2).sum(1))[min(1, districts - 1)]
                     for d in range(districts)])
    kind = rng.choice(3, offers, p=[0.55, 0.35, 0.10])
    cover = []
    for j in range(offers):
        svc = rng.choice(services, size=rng.integers(1, min(services_per_offer, services) + 1), replace=False, p=service_p)
        areas = [t0 + o_t[j]] if kind[j] == 0 else [d0 + t_d[o_t[j]]]
        if kind[j] == 2:
            areas.append(d0 + near[t_d[o_t[j]]])
        cover += [(j, s, a) for s in svc for a in areas]
    cover_arr = np.array(cover, dtype=np.int32).reshape(-1, 3)
    constrained = rng.random(offers) < constrained_share
    min_age = np.where(constrained & (rng.random(offers) < 0.5), rng.choice([0, 6, 16, 60], offers), NO_AGE)
    max_age = np.where(constrained & (rng.random(offers) < 0.5), rng.choice([15, 18, 59, 120], offers), NO_AGE)
    max_age = np.where((max_age != NO_AGE) & (min_age != NO_AGE) & (max_age < min_age), NO_AGE, max_age)
    need_mask = np.where(constrained & (rng.random(offers) < 0.4), 1 << rng.integers(0, need_types, offers), 0)
    hh_mask = np.where(constrained & (rng.random(offers) < 0.4), rng.integers(1, 1 << household_types, offers), 0)
    off = Offers(
        ids=[f"offer-{j:06d}" for j in range(offers)], lat=o_xy[:, 0], lon=o_xy[:, 1],
        remaining=np.maximum(1, rng.poisson(capacity_mean, offers)).astype(np.int64),
        min_age=min_age.astype(np.int32), max_age=max_age.astype(np.int32), need_mask=need_mask.astype(np.int64),
        household_mask=hh_mask.astype(np.int64), cover_offer=cover_arr[:, 0], cover_service=cover_arr[:, 1],
        cover_area=cover_arr[:, 2],
    )

    village = v0 + rng.choice(villages, needs, p=village_p)
    service = rng.choice(services, needs, p=service_p)
    level = rng.choice([1, 2, 3], needs, p=[0.3, 0.4, 0.3])
    urgency = rng.choice([3, 2, 1], needs, p=[0.2, 0.6, 0.2])
    level_weight = np.array([0, 3, 2, 1])[level]
    members = rng.integers(1, 6, needs)
    ages = rng.integers(0, 95, (needs, 5)).astype(np.int16)
    ages[np.arange(5)[None, :] >= members[:, None]] = NO_AGE
    masks = np.array([sum(1 << int(t) for t in service_types[s]) for s in range(services)], dtype=np.int64)
    nd = Needs(
        ids=[f"need-{i:07d}" for i in range(needs)], village=village.astype(np.int32), service=service.astype(np.int32),
        priority=(level_weight * urgency).astype(np.int64),
        household_type=rng.integers(-1, household_types, needs).astype(np.int32), need_mask=masks[service], ages=ages,
    )
    return Problem(geography=geo, needs=nd, offers=off, n_services=services,
                   weights=Weights(priority_unit, distance_unit_km, distance_cap_units))
