"""The engine against an exact oracle: on small instances its objective equals networkx's
min-cost flow on the plain per-need network, built here independently with plain Python
(no grouping, no hubs, no NumPy); every match is valid, capacities hold, reasons are right."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from matching.engine.model import CAPACITY_EXHAUSTED, NO_AGE, NO_OFFER_IN_AREA, NOT_ELIGIBLE, Problem
from matching.engine.solver import network, solve, solve_whole
from matching.engine.graph import build
from matching.engine.synthetic import problem


def km(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(a, 1.0)))


def plain(p: Problem):
    """Per need: (offers covering its service in its area, of those the eligible ones, allowed)."""
    geo, needs, offers = p.geography, p.needs, p.offers
    covers = {}
    for j, s, a in zip(offers.cover_offer.tolist(), offers.cover_service.tolist(), offers.cover_area.tolist(), strict=True):
        covers.setdefault((int(s), int(a)), set()).add(int(j))
    banned = set(zip(p.excluded_need.tolist(), p.excluded_offer.tolist(), strict=True))
    out = []
    for i in range(len(needs)):
        v, s = int(needs.village[i]), int(needs.service[i])
        chain = [int(a) for a in geo.chain[v] if a >= 0]
        cand = set().union(*(covers.get((s, a), set()) for a in chain))
        ages = [int(a) for a in needs.ages[i] if a != NO_AGE]
        ok = set()
        for j in cand:
            if offers.need_mask[j] and not (int(needs.need_mask[i]) & int(offers.need_mask[j])):
                continue
            if offers.household_mask[j]:
                ht = int(needs.household_type[i])
                if ht < 0 or not (int(offers.household_mask[j]) >> ht) & 1:
                    continue
            lo, hi = int(offers.min_age[j]), int(offers.max_age[j])
            if (lo != NO_AGE or hi != NO_AGE) and not any(
                    (lo == NO_AGE or a >= lo) and (hi == NO_AGE or a <= hi) for a in ages):
                continue
            if (i, j) not in banned:
                ok.add(j)
        out.append((cand, ok))
    return out


def units(p: Problem, i: int, j: int) -> int:
    v = int(p.needs.village[i])
    d = km(p.geography.lat[v], p.geography.lon[v], p.offers.lat[j], p.offers.lon[j])
    return min(round(d / p.weights.distance_unit_km), p.weights.distance_cap_units)


def oracle(p: Problem, elig) -> int:
    """The maximum of sum(priority x unit - distance) by networkx's exact min-cost flow."""
    n = len(p.needs)
    g = nx.DiGraph()
    g.add_node("s", demand=-n)
    g.add_node("t", demand=n)
    w = p.weights.priority_unit
    for i, (_, ok) in enumerate(elig):
        g.add_edge("s", ("n", i), capacity=1, weight=0)
        g.add_edge(("n", i), "t", capacity=1, weight=0)
        for j in ok:
            if p.offers.remaining[j] > 0:
                g.add_edge(("n", i), ("o", j), capacity=1, weight=-(int(p.needs.priority[i]) * w - units(p, i, j)))
    for j in range(len(p.offers)):
        g.add_edge(("o", j), "t", capacity=int(p.offers.remaining[j]), weight=0)
    return -nx.min_cost_flow_cost(g)


def with_exclusions(p: Problem, rng: np.random.Generator, k: int) -> Problem:
    needs = rng.choice(len(p.needs), size=k, replace=False)
    offers = rng.integers(0, len(p.offers), size=k)
    p.excluded_need, p.excluded_offer = needs.astype(np.int64), offers.astype(np.int64)
    return p


CASES = [
    {"seed": 1, "needs": 300, "offers": 12, "districts": 2, "townships": 6, "villages": 24, "capacity_mean": 8},
    {"seed": 2, "needs": 400, "offers": 20, "districts": 3, "townships": 9, "villages": 40, "capacity_mean": 6, "constrained_share": 0.6},
    {"seed": 3, "needs": 250, "offers": 30, "districts": 3, "townships": 12, "villages": 50, "capacity_mean": 12, "services": 8},
    {"seed": 4, "needs": 1400, "offers": 26, "districts": 4, "townships": 14, "villages": 70, "capacity_mean": 25},
    {"seed": 5, "needs": 500, "offers": 40, "districts": 2, "townships": 8, "villages": 30, "capacity_mean": 3,
     "services": 5, "constrained_share": 0.8},
]


@pytest.mark.parametrize("case", CASES, ids=[f"seed{c['seed']}" for c in CASES])
@pytest.mark.parametrize("exclusions", [0, 25])
def test_objective_equals_the_exact_oracle_and_the_solution_is_valid(case, exclusions):
    p = problem(**case)
    if exclusions:
        with_exclusions(p, np.random.default_rng(case["seed"]), exclusions)
    elig = plain(p)
    sol = solve(p)
    assert sol.objective == oracle(p, elig)

    used = np.zeros(len(p.offers), dtype=np.int64)
    total = 0
    for i, (cand, ok) in enumerate(elig):
        j = int(sol.offer_of[i])
        if j >= 0:
            assert j in ok, "matched to an offer it is not eligible for, or that declined it"
            assert sol.reason[i] == 0
            used[j] += 1
            total += int(p.needs.priority[i]) * p.weights.priority_unit - units(p, i, j)
        elif not cand:
            assert sol.reason[i] == NO_OFFER_IN_AREA
        elif not ok:
            assert sol.reason[i] == NOT_ELIGIBLE
        else:
            assert sol.reason[i] == CAPACITY_EXHAUSTED
    assert (used <= p.offers.remaining).all()
    assert total == sol.objective
    for i, (_, ok) in enumerate(elig):  # optimal, so every offer an unmatched need could have had is full
        if sol.reason[i] == CAPACITY_EXHAUSTED:
            assert all(used[j] == p.offers.remaining[j] for j in ok if p.offers.remaining[j] > 0)


def test_deterministic_for_the_same_input():
    p = problem(seed=7, needs=2000, offers=40, districts=3, townships=12, villages=60, capacity_mean=20)
    a, b = solve(p), solve(problem(seed=7, needs=2000, offers=40, districts=3, townships=12, villages=60,
                                   capacity_mean=20))
    assert np.array_equal(a.offer_of, b.offer_of) and np.array_equal(a.reason, b.reason)
    assert a.objective == b.objective


def test_components_solve_like_the_whole_network():
    p = problem(seed=8, needs=3000, offers=60, districts=5, townships=20, villages=100, capacity_mean=15)
    g = build(p)
    net = network(p, g)
    whole, _ = solve_whole(net)
    assert int((whole * net.costs).sum()) == sum(
        int(p.needs.priority[i]) * p.weights.priority_unit for i in range(len(p.needs))
    ) - solve(p).objective


def _tiny(needs: int) -> Problem:
    return problem(seed=9, needs=needs, offers=2, districts=1, townships=1, villages=2, services=1, capacity_mean=1,
                   constrained_share=0.0)


def test_higher_priority_wins_the_last_slot():
    p = _tiny(2)
    p.offers.remaining[:] = [1, 0]
    p.needs.priority[:] = [2, 9]
    sol = solve(p)
    assert sol.offer_of.tolist() == [-1, 0]
    assert sol.reason.tolist() == [CAPACITY_EXHAUSTED, 0]


def test_the_nearer_site_is_preferred():
    p = _tiny(1)
    p.offers.remaining[:] = [1, 1]
    v = int(p.needs.village[0])
    p.offers.lat[:] = [p.geography.lat[v] + 0.2, p.geography.lat[v] + 0.01]
    p.offers.lon[:] = [p.geography.lon[v], p.geography.lon[v]]
    assert solve(p).offer_of.tolist() == [1]
    p.offers.lat[:] = [p.geography.lat[v] + 0.01, p.geography.lat[v] + 0.2]
    assert solve(p).offer_of.tolist() == [0]


def test_empty_inputs():
    p = problem(seed=10, needs=0, offers=3, districts=1, townships=2, villages=3)
    assert solve(p).objective == 0
    p = problem(seed=10, needs=5, offers=0, districts=1, townships=2, villages=3)
    sol = solve(p)
    assert (sol.offer_of == -1).all() and (sol.reason == NO_OFFER_IN_AREA).all()
