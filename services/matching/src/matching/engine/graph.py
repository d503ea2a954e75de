"""From needs and offers to a small flow network, without losing optimality.

A need's arcs depend only on its village (its location is the village's centroid), its service
and which offers it is eligible for. So:

* needs alike in village, service and the set of *constrained* offers (age, need type or
  household type) they are eligible for form one group, a node whose supply is its size;
* the offers without constraints are the same for every group of a village and service: they
  hang off one shared hub node per (village, service), reached from each of its groups by one arc;
* priorities stay exact: unmatched needs leave a group by a per-priority bypass arc costing
  ``priority x unit``, so the solver leaves the lowest priorities unmatched first.

Needs with an exclusion (an offer that declined them or was revoked) are groups of their own
with direct arcs only. Everything is vectorised with NumPy; nothing loops over needs in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.engine.model import NO_AGE, NO_OFFER_IN_AREA, NOT_ELIGIBLE, I64, Problem

EARTH_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2):  # type: ignore[no-untyped-def]
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def distance_units(km, unit_km: float, cap: int):  # type: ignore[no-untyped-def]
    return np.minimum(np.rint(np.asarray(km) / unit_km), cap).astype(np.int64)


def eligible(problem: Problem, need: I64, offer: I64) -> np.ndarray:
    """Whether each (need, offer) pair passes the offer's eligibility (vectorised)."""
    n, o = problem.needs, problem.offers
    ok = np.ones(len(need), dtype=bool)
    nm = o.need_mask[offer]
    ok &= (nm == 0) | ((n.need_mask[need] & nm) != 0)
    hm = o.household_mask[offer]
    ht = n.household_type[need]
    ok &= (hm == 0) | ((ht >= 0) & (((hm >> np.maximum(ht, 0)) & 1) == 1))
    lo, hi = o.min_age[offer], o.max_age[offer]
    bounded = (lo != NO_AGE) | (hi != NO_AGE)
    if bounded.any():
        idx = np.flatnonzero(bounded)
        ages = n.ages[need[idx]].astype(np.int32)  # (k, width)
        lo_b = np.where(lo[idx] == NO_AGE, 0, lo[idx])[:, None]
        hi_b = np.where(hi[idx] == NO_AGE, 1000, hi[idx])[:, None]
        inside = (ages != NO_AGE) & (ages >= lo_b) & (ages <= hi_b)
        ok[idx] &= inside.any(axis=1)
    return ok


def expand(starts: I64, counts: I64) -> tuple[I64, I64]:
    """For ranges [start, start+count): (owner of each element, position of each element)."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.arange(owner.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(starts.astype(np.int64), counts) + offsets


def segment_sums(values: np.ndarray, owner: I64, n: int) -> np.ndarray:
    """Sums (modulo 2**64) of ``values`` per owner, ``owner`` sorted ascending."""
    out = np.zeros(n, dtype=np.uint64)
    if owner.size:
        csum = np.cumsum(values, dtype=np.uint64)
        ends = np.flatnonzero(np.r_[owner[1:] != owner[:-1], True])
        totals = np.diff(np.r_[np.uint64(0), csum[ends]])  # wraps, as the sums themselves do
        out[owner[ends]] = totals
    return out


@dataclass
class Graph:
    group_of: I64  # per need
    group_size: I64  # per group
    hub_of_group: I64  # per group: its hub, or -1
    hub_size: I64  # per hub: needs of all its groups
    hub_arc_hub: I64  # hub -> offer arcs
    hub_arc_offer: I64
    hub_arc_units: I64
    hub_arc_km: np.ndarray
    arc_group: I64  # group -> offer arcs (constrained offers; every offer for groups with exclusions)
    arc_offer: I64
    arc_units: I64
    arc_km: np.ndarray
    reason: np.ndarray  # per need, before solving: NO_OFFER_IN_AREA, NOT_ELIGIBLE, or 0
    eligible: I64  # per need: offers it is eligible for (with capacity left or not)

    @property
    def arcs(self) -> int:
        return len(self.hub_arc_hub) + len(self.arc_group) + int((self.hub_of_group >= 0).sum())


def candidates(problem: Problem, village: I64, service: I64) -> tuple[I64, I64]:
    """CSR of the offers covering each (village, service) key: (starts, offers).

    Coverage is first reduced to its top-most areas per (offer, service), so an offer covering a
    township and one of its villages counts once.
    """
    offers, geo = problem.offers, problem.geography
    n_areas = geo.size
    c_offer, c_service, c_area = (offers.cover_offer.astype(np.int64), offers.cover_service.astype(np.int64),
                                  offers.cover_area.astype(np.int64))
    covered = set(zip(c_offer.tolist(), c_service.tolist(), c_area.tolist(), strict=True))
    ancestor_covered = np.zeros(len(c_offer), dtype=bool)
    for level in (1, 2, 3):  # drop an area when one of its ancestors is covered too (rare; few triples)
        anc = geo.chain[c_area, level] if len(c_area) else np.zeros(0, np.int64)
        for k in np.flatnonzero((anc >= 0) & (anc != c_area)):
            if (int(c_offer[k]), int(c_service[k]), int(anc[k])) in covered:
                ancestor_covered[k] = True
    keep = ~ancestor_covered
    key = c_service[keep] * n_areas + c_area[keep]
    order = np.lexsort((c_offer[keep], key))
    cover_key, cover_offer = key[order], c_offer[keep][order]

    n_keys = len(village)
    counts = np.zeros((4, n_keys), dtype=np.int64)
    los = np.zeros((4, n_keys), dtype=np.int64)
    for level in range(4):
        area = geo.chain[village, level].astype(np.int64)
        lookup = np.where(area >= 0, service * n_areas + area, -1)
        lo = np.searchsorted(cover_key, lookup, "left")
        hi = np.searchsorted(cover_key, lookup, "right")
        los[level], counts[level] = lo, np.where(lookup >= 0, hi - lo, 0)
    total = counts.sum(axis=0)
    starts = np.r_[0, np.cumsum(total)].astype(np.int64)
    out = np.empty(int(total.sum()), dtype=np.int64)
    before = np.zeros(n_keys, dtype=np.int64)
    for level in range(4):  # scatter each level's ranges after the previous levels', key by key
        owner, pos = expand(los[level], counts[level])
        local = np.arange(owner.size, dtype=np.int64) - np.repeat(np.cumsum(counts[level]) - counts[level], counts[level])
        out[starts[owner] + before[owner] + local] = cover_offer[pos]
        before += counts[level]
    return starts, out


def build(problem: Problem) -> Graph:
    needs, offers, geo = problem.needs, problem.offers, problem.geography
    n, m = len(needs), len(offers)
    w = problem.weights

    # 1. Needs alike in village and service, and the offers covering them.
    key0 = needs.village.astype(np.int64) * problem.n_services + needs.service
    keys0, g0_of = np.unique(key0, return_inverse=True)
    g0_of = g0_of.reshape(-1).astype(np.int64)
    g0_village, g0_service = keys0 // problem.n_services, keys0 % problem.n_services
    n_g0 = len(keys0)
    starts, cand_offer = candidates(problem, g0_village, g0_service)
    cand_count = np.diff(starts)
    cand_g0 = np.repeat(np.arange(n_g0, dtype=np.int64), cand_count)

    constrained = offers.constrained[cand_offer] if m else np.zeros(0, bool)
    free_g0, free_offer = cand_g0[~constrained], cand_offer[~constrained]
    free_count = np.bincount(free_g0, minlength=n_g0)
    free_start = np.cumsum(free_count) - free_count
    cons_offer = cand_offer[constrained]
    cons_count = np.bincount(cand_g0[constrained], minlength=n_g0)
    cons_start = np.cumsum(cons_count) - cons_count

    special = np.zeros(n, dtype=bool)
    if len(problem.excluded_need):
        special[problem.excluded_need] = True

    # 2. Eligibility against the constrained candidates, need by need (pairs come out sorted by need).
    pn, pos = expand(cons_start[g0_of], cons_count[g0_of])
    p_offer = cons_offer[pos]
    keep = eligible(problem, pn, p_offer)
    pn, p_offer = pn[keep], p_offer[keep]
    cons_eligible = np.bincount(pn, minlength=n)
    salt = np.random.default_rng(0x5EED).integers(1, 2**63 - 1, size=(2, max(m, 1)), dtype=np.int64).astype(np.uint64)
    sig1, sig2 = segment_sums(salt[0, p_offer], pn, n), segment_sums(salt[1, p_offer], pn, n)

    # 3. Groups: (village, service, eligible constrained offers); needs with exclusions alone.
    first_key = g0_of.copy()
    if special.any():
        first_key[special] = n_g0 + np.arange(int(special.sum()))
        sig1[special], sig2[special] = 0, 0
    order = np.lexsort((sig2, sig1, first_key))
    fk, s1, s2 = first_key[order], sig1[order], sig2[order]
    boundary = np.r_[True, (fk[1:] != fk[:-1]) | (s1[1:] != s1[:-1]) | (s2[1:] != s2[:-1])]
    group_sorted = np.cumsum(boundary) - 1
    group_of = np.empty(n, dtype=np.int64)
    group_of[order] = group_sorted
    n_groups = int(group_sorted[-1]) + 1 if n else 0
    rep = order[boundary]  # the first need of each group, in group order
    group_size = np.bincount(group_of, minlength=n_groups).astype(np.int64)
    group_g0 = g0_of[rep]
    group_special = special[rep]

    # 4. Hubs: one per (village, service) with free offers, shared by its ordinary groups.
    has_hub_g0 = free_count > 0
    hub_of_g0 = np.full(n_g0, -1, dtype=np.int64)
    hub_of_g0[has_hub_g0] = np.arange(int(has_hub_g0.sum()))
    hub_of_group = np.where(group_special, -1, hub_of_g0[group_g0])
    hubs_g0 = np.flatnonzero(has_hub_g0)
    hub_size = np.bincount(hub_of_group[hub_of_group >= 0], weights=group_size[hub_of_group >= 0],
                           minlength=len(hubs_g0)).astype(np.int64)
    h_own, h_pos = expand(free_start[hubs_g0], free_count[hubs_g0])
    hub_arc_hub, hub_arc_offer = h_own, free_offer[h_pos]

    # 5. Direct arcs: each ordinary group's eligible constrained offers (from its first need),
    #    every allowed offer for groups with exclusions.
    is_rep = np.zeros(n, dtype=bool)
    is_rep[rep[~group_special]] = True
    sel = is_rep[pn]
    arc_group, arc_offer = [group_of[pn[sel]]], [p_offer[sel]]
    special_eligible = np.zeros(n, dtype=np.int64)
    if special.any():
        sn = np.flatnonzero(special)
        own, spos = expand(free_start[g0_of[sn]], free_count[g0_of[sn]])
        s_need = np.r_[sn[own], pn[special[pn]]]
        s_offer = np.r_[free_offer[spos], p_offer[special[pn]]]
        banned = set(zip(problem.excluded_need.tolist(), problem.excluded_offer.tolist(), strict=True))
        allowed = np.fromiter(((i, j) not in banned for i, j in zip(s_need.tolist(), s_offer.tolist(), strict=True)),
                              dtype=bool, count=len(s_need))
        s_need, s_offer = s_need[allowed], s_offer[allowed]
        special_eligible = np.bincount(s_need, minlength=n)
        arc_group.append(group_of[s_need])
        arc_offer.append(s_offer)
    a_group, a_offer = np.concatenate(arc_group).astype(np.int64), np.concatenate(arc_offer).astype(np.int64)

    # Reasons known before solving.
    eligible_arcs = np.where(special, special_eligible, free_count[g0_of] + cons_eligible)
    reason = np.zeros(n, dtype=np.int8)
    reason[eligible_arcs == 0] = NOT_ELIGIBLE
    reason[cand_count[g0_of] == 0] = NO_OFFER_IN_AREA

    # 6. Only offers with capacity left take part; distances from the village to the site.
    def finish(tail_village: I64, tail: I64, offer: I64) -> tuple[I64, I64, I64, np.ndarray]:
        live = offers.remaining[offer] > 0 if m else np.zeros(0, bool)
        tail, offer, village = tail[live], offer[live], tail_village[live]
        km = haversine_km(geo.lat[village], geo.lon[village], offers.lat[offer], offers.lon[offer])
        return tail, offer, distance_units(km, w.distance_unit_km, w.distance_cap_units), km

    hub_arc_hub, hub_arc_offer, hub_units, hub_km = finish(g0_village[hubs_g0][hub_arc_hub], hub_arc_hub, hub_arc_offer)
    a_group, a_offer, a_units, a_km = finish(g0_village[group_g0][a_group], a_group, a_offer)
    return Graph(group_of=group_of, group_size=group_size, hub_of_group=hub_of_group, hub_size=hub_size,
                 hub_arc_hub=hub_arc_hub, hub_arc_offer=hub_arc_offer, hub_arc_units=hub_units, hub_arc_km=hub_km,
                 arc_group=a_group, arc_offer=a_offer, arc_units=a_units, arc_km=a_km, reason=reason,
                 eligible=eligible_arcs.astype(np.int64))
