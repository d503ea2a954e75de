"""Keeping scoring's copy of the household views and rescoring what changed.

A batch of household.changed events is applied in the consumer's one transaction: the newest
version of each household wins (an older one never replaces a newer), the views are prepared
once, and the changed households are scored together by the kernel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.events import Event, publish
from scoring.assessments import repository as assessments
from scoring.assessments.service import Outcome, Wake, pending, triggers_json, write
from scoring.engine.records import Previous
from scoring.engine.runtime import SMALL_BATCH
from scoring.engine.runtimes import NoActiveModel, Runtimes
from scoring.households import repository as repo
from scoring.households.digest import Digested, digest
from scoring.households.repository import SubjectRow
from scoring.households.schemas import HouseholdChanged
from scoring.settings import ScoringSettings

log = logging.getLogger(__name__)
EVENT_TYPE = "household.changed"
WITHDRAWN = "assessment.withdrawn"


def parse_events(events: Sequence[Event]) -> list[HouseholdChanged | Digested]:
    out = []
    for e in events:
        if e.type != EVENT_TYPE:
            continue
        if isinstance(e.data, HouseholdChanged | Digested):  # read with the page (HouseholdPage, read_page)
            out.append(e.data)
            continue
        try:
            out.append(HouseholdChanged.model_validate(e.data))
        except ValidationError as exc:
            # A malformed event must not stop the feed for every other household: it is logged
            # (type and position, never its content) and skipped.
            log.error("skipping a malformed %s event at position %s (%d problems)", e.type, e.position,
                      len(exc.errors()))
    return out


async def apply(session: AsyncSession, runtimes: Runtimes, changes: Sequence[HouseholdChanged | Digested],
                settings: ScoringSettings, *, wake: Wake = None) -> Outcome:
    """Store the newer views and assess the households whose facts changed."""
    if not changes:
        return Outcome()
    try:
        rt = await runtimes.active(session, lock="share")
    except NoActiveModel:
        rt = None
    newest: dict[str, HouseholdChanged | Digested] = {}
    triggers: dict[str, list[dict]] = {}
    for c in changes:
        triggers.setdefault(c.household_id, []).extend(c.triggers)
        if c.household_id not in newest or c.version > newest[c.household_id].version:
            newest[c.household_id] = c
    stored, previous = await assessments.known(session, list(newest))
    fresh = [c for c in newest.values() if c.household_id not in stored or c.version > stored[c.household_id]]
    if not fresh:
        return Outcome()
    ctx = runtimes.ctx
    now = datetime.now(UTC)
    # Digested in the page reader's worker (a page fetched behind a backlog), or here.
    here = iter(digest(ctx.view, [c for c in fresh if isinstance(c, HouseholdChanged)]))
    rows, subjects, closed = [], [], []
    for c in fresh:
        d = c if isinstance(c, Digested) else next(here)
        is_closed = d.change == "closed"
        rows.append({
            "household_id": d.household_id, "version": d.version, "area_code": d.area_code,
            "township_code": d.township_code, "district_code": d.district_code, "label_masked": d.label_masked,
            "synthetic": d.synthetic, "closed": is_closed, "view": d.view, "missing": d.missing, "facts": d.facts,
            "features": d.features, "layout": d.layout, "input_hash": d.input_hash, "updated_at": now,
            "member_ages": d.member_ages,
        })
        if is_closed:
            closed.append(d)
            continue
        subjects.append(SubjectRow(d.household_id, d.version, d.area_code, d.township_code, d.district_code,
                                   d.label_masked, d.input_hash, d.facts, d.features, d.layout, d.member_ages))
    if rt is None:
        await repo.store(session, rows, known=stored, copy_threshold=settings.copy_threshold)
        if closed:
            await withdraw(session, closed, previous, now)
        log.warning("no active scoring model: %d household views stored, not scored", len(subjects))
        return Outcome()
    # The facts are in hand (no query needed to score them): a large batch is scored in a worker
    # thread while PostgreSQL takes in its views.
    work = await pending(session, rt, subjects, cause="household_changed", previous=previous,
                         triggers={hid: triggers_json(t) for hid, t in triggers.items() if t})
    storing = repo.store(session, rows, known=stored, copy_threshold=settings.copy_threshold)
    if len(work.rows) > SMALL_BATCH:
        batch, _ = await asyncio.gather(asyncio.to_thread(work.compute), storing)
    else:
        await storing
        batch = work.compute() if work.rows else None
    if closed:
        await withdraw(session, closed, previous, now)
    outcome = await write(session, batch, settings, wake=wake) if batch is not None else Outcome()
    outcome.unchanged = work.unchanged
    # Same facts, perhaps a new place or label: the current assessment follows the household.
    for hid in outcome.unchanged:
        c = newest[hid]
        await assessments.relabel(session, hid, (c.area_code, c.township_code, c.district_code), c.label_masked)
    return outcome


async def withdraw(session: AsyncSession, closed: Sequence[Digested],
                   previous: Mapping[str, Previous], now: datetime) -> None:
    """Closed households leave the current lists, and each one that had an assessment is
    announced as ``assessment.withdrawn`` (docs/events.md), so that alerts stop following it."""
    await assessments.drop_current(session, [c.household_id for c in closed])
    for c in closed:
        p = previous.get(c.household_id)
        if p is None:
            continue
        publish(session, WITHDRAWN, c.household_id, withdrawal(c, p.assessment_id, p.effective_level, now))


def withdrawal(household: Any, assessment_id: str, level: int, at: datetime) -> dict[str, Any]:
    """The data of an ``assessment.withdrawn`` (docs/events.md) of a household (a ``Digested``, or
    a row of ``repository.withdrawn_page``): on the feed, and in the snapshot of withdrawals for
    a consumer that resynchronises."""
    h = household
    return {
        "household_id": h.household_id, "area_code": h.area_code, "township_code": h.township_code,
        "district_code": h.district_code, "label_masked": h.label_masked, "household_version": h.version,
        "assessment_id": assessment_id, "level": level, "cause": "household_closed",
        "withdrawn_at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
