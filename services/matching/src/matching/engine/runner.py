"""A run of the engine against the database: load, solve, write, in one transaction.

Incremental runs match the open needs to what is left of each published offer this period;
full runs (on demand) reconsider every need not yet accepted, keeping proposals that stay and
withdrawing those that move. One run at a time: on PostgreSQL an advisory lock, which partners'
accepts take in shared mode, so an accept never races a run; SQLite has one writer anyway.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database, unit_of_work
from servicekit.tables import utcnow

from matching.engine import repository as store
from matching.matches import repository as matches
from matching.matches.tables import LIVE, SPENT
from matching.engine.indexing import index_of, mask
from matching.engine.model import NO_AGE, REASONS, Needs, Offers, Problem, Weights
from matching.engine.solver import solve
from matching.locks import lock_exclusive
from matching.periods import local_date, period_key
from matching.profile import Profile

Mode = Literal["incremental", "full"]
# Member ages kept per need for eligibility: the problem's widest family, up to this many (the
# ages come oldest first, so a cut would drop the children an age-limited offer may be for).
AGES = 64


@dataclass
class RunReport:
    id: str
    mode: str
    needs_considered: int
    offers_considered: int
    proposed: int
    kept: int
    withdrawn: int
    unmatched: dict[str, int]
    objective: int
    solver_seconds: float
    total_seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def problem_of(profile: Profile, needs: store.NeedColumns, offers: list[store.OfferRow],
               held: dict[str, int], exclusions: list[tuple[str, str]]) -> Problem:
    ix = index_of(profile)
    need_arrays = Needs(
        ids=needs.ids,
        village=np.array([ix.area.get(c, 0) for c in needs.area_code], dtype=np.int32),
        service=np.array([ix.service.get(c, 0) for c in needs.service_code], dtype=np.int32),
        priority=np.array(needs.priority, dtype=np.int64),
        household_type=np.array([ix.household_type.get(c or "", -1) for c in needs.household_type], dtype=np.int32),
        need_mask=_masks(needs.need_types, ix.need_type),
        ages=_ages(needs.member_ages),
    )
    cover = [(j, ix.service[s], ix.area[a]) for j, o in enumerate(offers) for s in o.services for a in o.areas
             if s in ix.service and a in ix.area]
    cover_arr = np.array(cover, dtype=np.int32).reshape(-1, 3)
    offer_arrays = Offers(
        ids=[o.id for o in offers],
        lat=np.array([o.lat for o in offers], dtype=np.float64), lon=np.array([o.lon for o in offers], dtype=np.float64),
        remaining=np.array([max(o.capacity - held.get(o.id, 0), 0) for o in offers], dtype=np.int64),
        min_age=np.array([NO_AGE if o.min_age is None else o.min_age for o in offers], dtype=np.int32),
        max_age=np.array([NO_AGE if o.max_age is None else o.max_age for o in offers], dtype=np.int32),
        need_mask=np.array([mask(o.need_types, ix.need_type) for o in offers], dtype=np.int64),
        household_mask=np.array([mask(o.household_types, ix.household_type) for o in offers], dtype=np.int64),
        cover_offer=cover_arr[:, 0], cover_service=cover_arr[:, 1], cover_area=cover_arr[:, 2],
    )
    need_pos = {need_id: i for i, need_id in enumerate(needs.ids)} if exclusions else {}
    offer_pos = {o.id: j for j, o in enumerate(offers)}
    pairs = [(need_pos[nid], offer_pos[oid]) for nid, oid in exclusions if nid in need_pos and oid in offer_pos]
    obj = profile.rules.objective
    return Problem(
        geography=ix.geography, needs=need_arrays, offers=offer_arrays, n_services=len(ix.service),
        weights=Weights(obj.priority_unit, obj.distance_unit_km, obj.distance_cap_units),
        excluded_need=np.array([p[0] for p in pairs], dtype=np.int64),
        excluded_offer=np.array([p[1] for p in pairs], dtype=np.int64),
    )


def _masks(texts: list[str], index: dict[str, int]) -> np.ndarray:
    """Bit masks of JSON lists of codes; the lists repeat (a need's types follow its service), so
    each distinct text is decoded once."""
    seen: dict[str, int] = {}
    out = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        m = seen.get(t)
        if m is None:
            m = seen[t] = mask(json.loads(t), index)
        out[i] = m
    return out


def _ages(texts: list[str]) -> np.ndarray:
    """The member ages of each need (the first AGES), padded with NO_AGE to the widest family, from
    their JSON lists of integers: the numbers of all lists are parsed in one call and scattered."""
    lengths = np.fromiter((t.count(",") + 1 if len(t) > 2 else 0 for t in texts), dtype=np.int64, count=len(texts))
    flat = np.fromstring(",".join(t[1:-1] for t in texts if len(t) > 2), dtype=np.int16, sep=",")
    if len(flat) != lengths.sum():
        raise ValueError("member ages are not lists of integers")
    owner = np.repeat(np.arange(len(texts)), lengths)
    place = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    width = int(min(max(lengths.max(initial=0), 1), AGES))
    ages = np.full((len(texts), width), NO_AGE, dtype=np.int16)
    keep = place < width
    ages[owner[keep], place[keep]] = flat[keep]
    return ages


def current_keys(profile: Profile, offers: list[store.OfferRow], now: datetime) -> dict[str, str]:
    today = local_date(profile.rules.zone, now)
    return {o.id: period_key(o.period, today) for o in offers}


async def _moved(session: AsyncSession, profile: Profile, now: datetime) -> tuple[datetime | None, set[str]]:
    """Since when, and the offers whose capacity moved since; (None, {}) when every unmatched
    need must be looked at again (the first run, or a new day: a new period may have begun).

    An incremental run looks at needs that arrived or were let go since the last run, and at the
    needs left unmatched before only in the services and areas of offers that changed or had a
    slot let go: elsewhere the capacity they could have had is still taken, and no offer appeared."""
    last = await store.last_run_started(session)
    if last is None or local_date(profile.rules.zone, last) != local_date(profile.rules.zone, now):
        return None, set()
    return last, await store.offers_moved_since(session, last)


async def run(db: Database, profile: Profile, *, mode: Mode, triggered_by: str, now: datetime | None = None) -> RunReport:
    async with unit_of_work(db) as session:
        return await run_in(session, profile, mode=mode, triggered_by=triggered_by, now=now)


async def run_in(session: AsyncSession, profile: Profile, *, mode: Mode, triggered_by: str,
                 now: datetime | None = None) -> RunReport:
    started, clock = utcnow(), time.perf_counter()
    now = now or started
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        t = time.perf_counter()
        timings[name] = round(t - clock, 4)
        clock = t

    await lock_exclusive(session)
    await store.settle_run(session)
    offers = await store.published_offers(session)
    keys = current_keys(profile, offers, now)
    # Slots already taken this period: accepted and delivered, and (incremental) proposals left in place.
    held = await matches.held(session, keys.items(), SPENT if mode == "full" else LIVE)
    if mode == "full":
        needs = await store.candidate_needs(session, full=True)
    else:
        since, moved = await _moved(session, profile, now)
        needs = await store.candidate_needs(session, full=False, since=since,
                                            also=[o for o in offers if o.id in moved])
    exclusions = await store.exclusions(session)
    proposals = await store.proposals(session) if mode == "full" else {}
    lap("load")
    problem = problem_of(profile, needs, offers, held, exclusions)
    lap("arrays")
    solution = await asyncio.to_thread(solve, problem)
    lap("solve")

    run_id = str(uuid.uuid4())
    offer_of = solution.offer_of
    matched = np.flatnonzero(offer_of >= 0)
    chosen = offer_of[matched].tolist()
    matched_ids = [needs.ids[i] for i in matched.tolist()]
    new = np.ones(len(matched), dtype=bool)
    withdraw: list[str] = []
    if proposals:  # a full run keeps the proposals that stay, withdraws those that move
        offer_ids = [o.id for o in offers]
        for k, (need_id, j) in enumerate(zip(matched_ids, chosen, strict=True)):
            current = proposals.pop(need_id, None)
            if current is not None:
                if current[1] == offer_ids[j]:
                    new[k] = False
                else:
                    withdraw.append(current[0])
        withdraw += [match_id for match_id, _ in proposals.values()]  # proposals of needs now unmatched
    kept = int((~new).sum())
    fresh = np.flatnonzero(new)
    rows = store.proposal_rows(
        [matched_ids[k] for k in fresh.tolist()], problem.needs.priority[matched[fresh]].tolist(), offers,
        [chosen[k] for k in fresh.tolist()], keys, np.round(solution.distance_km[matched[fresh]], 3).tolist(),
        run_id, now)
    await store.withdraw(session, withdraw, now)
    await store.insert_matches(session, rows)
    lap("write_matches")
    reasons = np.array([REASONS.get(c) for c in range(max(REASONS) + 1)], dtype=object)[solution.reason]
    before = np.array(needs.unmatched_reason, dtype=object)
    changed = np.flatnonzero(reasons != before)
    await store.update_reasons(session, [needs.ids[i] for i in changed.tolist()], reasons[changed].tolist(), now)
    lap("write_needs")

    codes, counts = np.unique(solution.reason[solution.reason > 0], return_counts=True)
    unmatched = {REASONS[int(c)]: int(k) for c, k in zip(codes, counts, strict=True)}
    report = RunReport(
        id=run_id, mode=mode, needs_considered=len(needs), offers_considered=len(offers), proposed=len(rows),
        kept=kept, withdrawn=len(withdraw), unmatched=unmatched, objective=solution.objective,
        solver_seconds=round(solution.solver_seconds, 4), total_seconds=0.0, timings=timings,
    )
    report.total_seconds = round(sum(timings.values()), 4)
    await store.record_run(session, report, triggered_by, started, utcnow())
    return report
