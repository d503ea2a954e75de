"""Applying one chunk of department records in one transaction, set-based.

1. Find the people by blind index and read, for each record, only the current entry of the one
   fact it writes (one query), and try the record on it: most records change nothing
   (``unchanged``) and cost no write at all.
2. A record about a person not in the database becomes a lead (主动发现), once per record id.
3. The records that would change something are checked against the fact history (a re-sent
   record is recognised by its record id even if a newer value came since), then their people
   and households are locked and the records re-applied on the fresh facts, in line order; the
   members of those households are read once, for both the re-apply and the scoring views.
4. Birth records (rare) are applied one by one (registry.feeds.births): a newborn whose parent is
   a member joins the parent's household.
5. Facts, history, scoring views and one household.changed per household are written together,
   so a chunk is all or nothing: a crash loses at most the chunk in flight, and a re-sent batch
   finds the committed chunks unchanged.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from orjson import loads
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.ids import time_ordered_ids
from servicekit.resident_id import mask

from registry.bulk import with_view
from registry.columns import new_id
from registry.facts import repository as facts_repo
from registry.facts.triggers import detect
from registry.facts.view import HouseholdFacts, MemberFacts
from registry.facts.vocabulary import Change, Provenance, apply, value_of
from registry.feeds import repository
from registry.feeds.births import Born, apply_births
from registry.feeds.parsing import Record, Rejection, rejection
from registry.households.changes import event_data, member_ages
from registry.profile import CityProfile
from registry.vault import Vault

SCALAR = frozenset({"int", "float", "bool", "enum", "date"})
VIEWS_BETWEEN_PAUSES = 64  # ~3 ms of views


@dataclass
class Outcome:
    line: int
    record_id: str | None
    outcome: str  # applied | unchanged | rejected | lead
    reason_code: str | None = None
    household_id: str | None = None


@dataclass
class ChunkResult:
    """What a chunk came to: how many records applied, unchanged or leads, and rejections; each
    record's outcome only when asked for (a single record: a batch needs the counts)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("applied", "unchanged", "lead"), 0))
    outcomes: list[Outcome] | None = None
    rejections: list[Rejection] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # ids of the households changed

    @property
    def households_changed(self) -> int:
        return len(self.changed)

    def count(self, outcome: str) -> int:
        return self.counts[outcome]

    def add(self, r: Record | Outcome, outcome: str, household_id: str | None = None) -> None:
        self.counts[outcome] += 1
        if self.outcomes is not None:
            self.outcomes.append(Outcome(r.line, r.record_id, outcome, household_id=household_id))


@dataclass
class FeedContext:
    profile: CityProfile
    vault: Vault
    caller: Caller  # the department delivering: the actor of what the feed writes to the audit log
    now: datetime
    today: date
    on_events: Callable[[int], Any] | None = None  # told the feed's new head after a commit with events
    received_at: str = field(init=False)  # ``now`` as ISO text, as facts record it

    def __post_init__(self) -> None:
        self.received_at = self.now.isoformat()


def _provenance(fc: FeedContext, department: str, r: Record) -> Provenance:
    return Provenance(department, r.record_id, r.effective, fc.received_at)


@dataclass(slots=True)
class LookedUp:
    """The distinct records of a chunk and, per record the database did not settle as unchanged,
    its person (None: not in the database) and the current entry of the fact it writes
    (``repository.current_entries``), read at one moment."""

    records: list[Record]
    repeated: list[Outcome]  # records repeated within the chunk: unchanged
    rejections: list[Rejection]
    rows: list[Any]  # records without a row were settled: unchanged
    settle: bool  # whether the database settled records (rows left out)
    births: list[Record] = field(default_factory=list)  # birth records, applied one by one
    probed: set[str] = field(default_factory=set)  # record ids looked for in the fact history
    seen: set[str] = field(default_factory=set)  # ... and found there


async def look_up(session: AsyncSession, fc: FeedContext, items: list[Record | Rejection],
                  indexes: dict[str, str] | None = None, *, settle: bool = True,
                  department: str | None = None) -> LookedUp:
    """Read what each record of a chunk writes (no lock, no write). ``indexes`` (blind index by
    ID number) may be given when the caller computed them already; ``settle``: let the database
    settle the records that repeat the value held (no row for them, only a count);
    ``department``: also look for the records that came back (those about a member, of one
    value) in the department's fact history (``seen``), here rather than in the chunk's
    transaction, so that on PostgreSQL it is read ahead with the lookup."""
    records: list[Record] = []
    repeated: list[Outcome] = []
    rejections: list[Rejection] = []
    births: list[Record] = []
    seen_ids: set[str] = set()
    for item in items:
        if isinstance(item, Rejection):
            rejections.append(item)
        elif item.record_id in seen_ids:
            repeated.append(Outcome(item.line, item.record_id, "unchanged"))
        else:
            seen_ids.add(item.record_id)
            (births if item.item.type == "birth" else records).append(item)
    rows = await _current_entries(session, fc, records, indexes, settle)
    looked_up = LookedUp(records, repeated, rejections, rows, settle, births)
    if department is not None:
        ids = [r.record_id for n, member_id, *_ in rows if member_id is not None
               and (r := records[n - 1]).spec.type in SCALAR]
        if ids:
            looked_up.probed = set(ids)
            looked_up.seen = await facts_repo.seen_records(session, department, ids)
    return looked_up


async def _current_entries(session: AsyncSession, fc: FeedContext, records: list[Record],
                           indexes: dict[str, str] | None, settle: bool) -> list[Any]:
    index = indexes if indexes is not None else {r.number: fc.vault.resident_index(r.number) for r in records}
    values = _values_json(records) if settle else None
    return await repository.current_entries(
        session, [index[r.number] for r in records], [r.spec.key for r in records],
        [r.spec.subject == "household" for r in records], values)


def _values_json(records: list[Record]) -> list[str | None]:
    """Each record's value as JSON (None for facts that are not one value): a batch repeats a
    few values (true, false, an enum's) thousands of times, each encoded once."""
    known: dict[tuple[type, Any], str] = {}
    out: list[str | None] = []
    for r in records:
        if r.spec.type not in SCALAR:
            out.append(None)
            continue
        key = (type(r.value), r.value)
        text = known.get(key)
        if text is None:
            text = known[key] = repository.dumps(r.value)
        out.append(text)
    return out


@dataclass(slots=True)
class Written:
    """What a chunk changes, as the chunks after it must see it before it has committed (their
    lookups ran meanwhile): the members of the households it changed by blind index (newborns
    among them) with their new facts and their household's, the record ids it applied, and the
    people and households it locked."""

    people: dict[str, Any] = field(default_factory=dict)  # blind index: the member's row (id, household_id)
    m_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by member id (and others' of the chunk)
    h_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by household id (and others' of the chunk)
    seen: set[str] = field(default_factory=set)  # record ids applied
    locked_members: set[str] = field(default_factory=set)
    locked_households: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Pipeline:
    """Where a chunk of a batch stands among the chunks around it (PostgreSQL). ``earlier``:
    what the chunks its lookup may not have seen change (oldest first), the last of them the
    chunk before it, written meanwhile until ``committed`` is done; ``prepared`` hears what this
    chunk will write once it is worked out, before any write goes out."""

    earlier: list[Written]
    committed: asyncio.Future[Any] | None
    prepared: Callable[[Written], None]


def refresh(looked_up: LookedUp, earlier: list[Written], indexes: dict[str, str]) -> None:
    """The records of ``looked_up`` about the members of the households the chunks before it
    changed, read again from what those chunks wrote (their lookup may have run before): every
    record about a household's fact or a person's is about one of its members, so a fact that
    records of the chunk share is read again for all of them or for none. Those records come back
    unsettled (a row each) and are classified as the database's rows are."""
    if not earlier:
        return
    people: dict[str, tuple[Any, Written]] = {}
    for w in earlier:  # a later chunk's facts over an earlier one's
        for bidx, m in w.people.items():
            people[bidx] = (m, w)
    if not people:
        return
    fresh = []
    for n, r in enumerate(looked_up.records, start=1):
        found = people.get(indexes[r.number])
        if found is None:
            continue
        m, w = found
        member_id, household_id = m.id, m.household_id
        m_facts = w.m_facts[member_id]
        entry = (w.h_facts[household_id] if r.spec.subject == "household" else m_facts).get(r.spec.key)
        died = m_facts.get("deceased_on")
        fresh.append((n, member_id, household_id, None if entry is None else repository.dumps(entry),
                      None if died is None else repository.dumps(died)))
    if fresh:
        again = {row[0] for row in fresh}
        looked_up.rows = [row for row in looked_up.rows if row[0] not in again] + fresh


async def apply_chunk(session: AsyncSession, fc: FeedContext, department: str, items: list[Record | Rejection],
                      indexes: dict[str, str] | None = None, looked_up: LookedUp | None = None, *,
                      outcomes: bool = False, pipeline: Pipeline | None = None) -> ChunkResult:
    """What these checked records come to; ``indexes`` (blind index by ID number) may be given
    when the caller computed them already, and ``looked_up`` when the caller read the chunk
    already (``look_up``); ``outcomes``: keep each record's outcome, not only the counts.

    ``pipeline``: this chunk is worked out while the chunk before it is still being written (its
    own transaction). Its lookup is read again where the chunks before changed something
    (``refresh``); the records about what the chunk before locked wait for it to commit, the rest
    are locked, re-applied and their views made meanwhile; nothing is written before it has
    committed, so one chunk at a time has writes in flight."""
    if looked_up is None:
        looked_up = await look_up(session, fc, items, indexes, settle=not outcomes, department=department)
    waiting: asyncio.Future[Any] | None = None
    if pipeline is not None:
        assert indexes is not None
        refresh(looked_up, pipeline.earlier, indexes)
        waiting = pipeline.committed if pipeline.committed is not None and not pipeline.committed.done() else None
    result = ChunkResult(outcomes=[] if outcomes else None, rejections=list(looked_up.rejections))
    for o in looked_up.repeated:
        result.add(o, "unchanged")
    candidates, leads = _classify(fc, department, looked_up, result)
    # A re-sent record the registry already took is unchanged, even if a newer value came since.
    # Most were looked for with the lookup; records read again since (``refresh``) may not have been.
    scalar_ids = [r.record_id for r, _, _ in candidates if r.spec.type in SCALAR]
    unprobed = [i for i in scalar_ids if i not in looked_up.probed]
    seen = looked_up.seen.intersection(scalar_ids)
    if unprobed:
        seen |= await facts_repo.seen_records(session, department, unprobed)
    if pipeline is not None and scalar_ids:
        seen |= {i for w in pipeline.earlier for i in w.seen}.intersection(scalar_ids)
    if seen:
        for r, _, household_id in candidates:
            if r.record_id in seen:
                result.add(r, "unchanged", household_id)
        candidates = [c for c in candidates if c[0].record_id not in seen]

    born: dict[str, Born] = {}
    if looked_up.births:
        if waiting is not None:  # rare: a birth writes a member at once
            await waiting
            waiting = None
        births = await apply_births(session, fc, department, looked_up.births)
        born = births.born
        for r, o, hid in births.outcomes:
            result.add(r, o, hid)
        result.rejections += births.rejections
        leads, candidates = _newborns_records(leads, candidates, births.placed)
        leads += births.leads
    work = _Work()
    later: list[tuple[Record, str, str]] = []
    if waiting is not None and pipeline is not None and pipeline.earlier:
        before = pipeline.earlier[-1]
        held = before.locked_households
        candidates, later = _partition(candidates, lambda c: c[1] in before.locked_members or c[2] in held)
    if candidates or born:
        await _work_out(session, fc, department, candidates, result, born, work)
    if pipeline is not None and pipeline.committed is not None:
        # The chunk before has committed (or its failure is this chunk's): what it locked is free,
        # and this chunk may write.
        await pipeline.committed
    if later:
        await _work_out(session, fc, department, later, result, {}, work)
    leads += work.leads
    lead_rows = _lead_rows(fc, department, leads)
    if pipeline is not None:
        pipeline.prepared(work.written)
    await _write(session, fc, work)
    if lead_rows:
        await repository.insert_leads(session, lead_rows)
        for r in leads:
            result.add(r, "lead")
    result.changed = work.changed
    return result


def _partition(items: list[Any], later: Callable[[Any], bool]) -> tuple[list[Any], list[Any]]:
    now: list[Any] = []
    after: list[Any] = []
    for item in items:
        (after if later(item) else now).append(item)
    return now, after


def _classify(fc: FeedContext, department: str, looked_up: LookedUp,
              result: ChunkResult) -> tuple[list[tuple[Record, str, str]], list[Record]]:
    """Pass 1: classify on the facts as read (a record that changes nothing needs no lock): the
    records that would change something (with their member and household) and the leads; the
    records the database settled (no row) are unchanged. Each person and household gets a
    partial fact document holding only the facts this chunk touches, shared by its records, so
    a later record of the chunk sees an earlier one's change."""
    records = looked_up.records
    rows = sorted(looked_up.rows, key=itemgetter(0))  # in line order
    result.counts["unchanged"] += len(records) - len(rows)
    m_facts: dict[str, dict[str, Any]] = {}
    h_facts: dict[str, dict[str, Any]] = {}
    for n, member_id, household_id, entry, died in rows:
        if member_id is None:
            continue
        r = records[n - 1]
        facts = m_facts.get(member_id)
        if facts is None:
            facts = m_facts[member_id] = {} if died is None else {"deceased_on": loads(died)}
        if entry is not None:
            target = facts if r.spec.subject == "person" else h_facts.setdefault(household_id, {})
            if r.spec.key not in target:
                target[r.spec.key] = loads(entry)
    candidates: list[tuple[Record, str, str]] = []
    leads: list[Record] = []
    for n, member_id, household_id, _, _ in rows:
        r = records[n - 1]
        if member_id is None:
            leads.append(r)
            continue
        facts = m_facts[member_id]
        if r.spec.subject == "person":
            if "deceased_on" in facts and (problem := _after_death(r, facts)) is not None:
                result.rejections.append(problem)
                continue
        else:
            facts = h_facts.setdefault(household_id, {})
        # Most records repeat the value held: decided here as ``apply`` would (same value,
        # nothing changes), without building its provenance.
        entry = facts.get(r.spec.key) if r.spec.type in SCALAR else None
        if (entry is not None and entry["v"] == r.value) or \
                apply(facts, r.spec, r.value, _provenance(fc, department, r), fc.today) is None:
            result.add(r, "unchanged", household_id)
        else:
            candidates.append((r, member_id, household_id))
    return candidates, leads


def _newborns_records(leads: list[Record], candidates: list[tuple[Record, str, str]],
                      placed: dict[str, tuple[str, str]]) -> tuple[list[Record], list[tuple[Record, str, str]]]:
    """Records of the chunk about a newborn it made a member were leads when read: they are the
    newborn's now, applied with the chunk's other changes."""
    if not placed or not leads:
        return leads, candidates
    theirs = [(r, *placed[r.number]) for r in leads if r.number in placed]
    return [r for r in leads if r.number not in placed], candidates + theirs


def _after_death(r: Record, facts: dict[str, Any]) -> Rejection | None:
    if r.spec.subject != "person" or r.spec.key == "deceased_on":
        return None
    died = value_of(facts, "deceased_on")
    if died is not None and r.effective.isoformat() > died:
        return rejection(r.line, r.record_id, "after_death", "The person is recorded as deceased before the effective date.")
    return None


@dataclass(slots=True)
class _Locked:
    """The households of a chunk's changes, locked, with their members' facts read fresh."""

    homes: dict[str, str]  # household of each member a record is about
    households: dict[str, Any]  # the locked rows
    h_facts: dict[str, dict[str, Any]]
    m_facts: dict[str, dict[str, Any]]
    members: dict[str, list[MemberFacts]]  # by household, for the views


@dataclass(slots=True)
class _Work:
    """What a chunk will write, worked out under its locks."""

    members: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    households: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    written: Written = field(default_factory=Written)
    leads: list[Record] = field(default_factory=list)  # about people released since the lookup


async def _work_out(session: AsyncSession, fc: FeedContext, department: str,
                    candidates: list[tuple[Record, str, str]], result: ChunkResult,
                    born: dict[str, Born], work: _Work) -> None:
    """Pass 2: lock, re-apply on fresh facts, and work out the facts, history, views and events
    to write (into ``work``); the households where a newborn was added (``born``) get their view
    and event here too. A household ``work`` holds already (worked out before the chunk before
    committed) is not worked out again: a record about a person found there only now waits for
    a re-send."""
    # The people whose own facts change are locked (members first, as every writer does), and
    # say where they live now. A record about a household's fact writes no member: its person
    # is not locked (a lock writes to the row's page), only the household it was found in; who
    # lives there is read under that lock, and a person gone from it meanwhile gets ``retry``.
    people = {member_id for r, member_id, _ in candidates if r.spec.subject == "person"}
    homes = await repository.lock_members(session, list(people)) if people else {}
    found_in = {household_id for r, _, household_id in candidates if r.spec.subject != "person"}
    locked = await repository.lock_households(session, list(set(homes.values()) | found_in | set(born)))
    done = work.written.locked_households
    member_rows = await repository.members_of_households(session, [h for h in locked if h not in done])
    for m in member_rows:
        homes.setdefault(m.id, m.household_id)
    for mid in [mid for mid, hid in homes.items() if hid in done]:
        del homes[mid]
    fresh = _fresh(homes, locked, member_rows)
    work.written.locked_members |= people
    work.written.locked_households |= set(locked)
    member_changes, household_changes, history = _reapply(fc, department, candidates, result, born, fresh, work.leads)
    if not history:
        return
    changed, rows, events = await _views_and_events(fc, fresh, member_changes, household_changes, born)
    work.members += [{"_id": mid, "_facts": fresh.m_facts[mid], "_patch": _patch(fresh.m_facts[mid], changes),
                      "_at": fc.now} for mid, changes in member_changes.items()]
    work.history += history
    work.households += rows
    work.events += events
    work.changed.update(changed)
    written = work.written
    written.seen.update(h["record_id"] for h in history)
    changed_now = work.changed
    written.people.update({m.resident_bidx: m for m in member_rows if m.household_id in changed_now})
    written.m_facts.update(fresh.m_facts)
    written.h_facts.update(fresh.h_facts)


async def _write(session: AsyncSession, fc: FeedContext, work: _Work) -> None:
    await repository.update_members(session, work.members)
    await repository.insert_history(session, work.history)
    await repository.update_households(session, work.households)
    await repository.insert_events(session, work.events, fc.on_events)


def _patch(facts: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """The entries of a fact document that these changes rewrote (what the stored one lacks)."""
    return {c.fact: facts[c.fact] for c in changes}


def _fresh(homes: dict[str, str], locked: dict[str, Any], member_rows: list[Any]) -> _Locked:
    members: dict[str, list[MemberFacts]] = defaultdict(list)
    m_facts: dict[str, dict[str, Any]] = {}
    for m in member_rows:
        facts = m_facts[m.id] = loads(m.facts)
        members[m.household_id].append(MemberFacts(m.birth_date, m.sex, m.relation, facts))
    return _Locked(homes, locked, {hid: loads(h.facts) for hid, h in locked.items()}, m_facts, members)


def _reapply(fc: FeedContext, department: str, candidates: list[tuple[Record, str, str]], result: ChunkResult,
             born: dict[str, Born], fresh: _Locked, leads: list[Record]
             ) -> tuple[dict[str, list[Change]], dict[str, list[Change]], list[dict[str, Any]]]:
    """The records re-applied on the fresh facts in line order: the changes by member and by
    household, and the history rows. A record about a member of a household closed since the
    lookup goes to ``leads``: the person was released, as the lookup would now find."""
    member_changes: dict[str, list[Change]] = defaultdict(list)
    household_changes: dict[str, list[Change]] = defaultdict(list)
    history: list[dict[str, Any]] = [row for b in born.values() for row in b.history]
    for r, member_id, _ in candidates:
        hid = fresh.homes.get(member_id)
        if hid is None or member_id not in fresh.m_facts:  # removed meanwhile: the record waits for a re-send
            result.rejections.append(rejection(r.line, r.record_id, "retry", "The person changed meanwhile; send again."))
            continue
        if fresh.households[hid].closed_on is not None:
            leads.append(r)
            continue
        if r.spec.subject == "person":
            change = apply(fresh.m_facts[member_id], r.spec, r.value, _provenance(fc, department, r), fc.today)
            target = member_changes[member_id]
        else:
            change = apply(fresh.h_facts[hid], r.spec, r.value, _provenance(fc, department, r), fc.today)
            target = household_changes[hid]
        if change is None:
            result.add(r, "unchanged", hid)
            continue
        target.append(change)
        result.add(r, "applied", hid)
        history.append({"household_id": hid, "member_id": member_id if r.spec.subject == "person" else None,
                        "fact": r.spec.key, "value": change.item_value, "source": department, "record_id": r.record_id,
                        "effective_date": r.effective, "received_at": fc.now})
    return member_changes, household_changes, history


async def _views_and_events(fc: FeedContext, fresh: _Locked, member_changes: dict[str, list[Change]],
                            household_changes: dict[str, list[Change]], born: dict[str, Born]
                            ) -> tuple[list[str], list[dict[str, Any]], list[tuple[str, str, str]]]:
    """The changed households (in id order), their new rows (view, version, facts where one of
    the household's own facts changed) and their household.changed events."""
    homes, h_facts = fresh.homes, fresh.h_facts
    triggers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hid, b in born.items():
        triggers[hid] += b.triggers
    for mid, changes in member_changes.items():
        hid = homes[mid]
        triggers[hid] += detect(fc.profile.triggers, changes, h_facts[hid], mid)
    for hid, changes in household_changes.items():
        triggers[hid] += detect(fc.profile.triggers, changes, h_facts[hid], None)
    changed = sorted({homes[mid] for mid in member_changes} | set(household_changes) | set(born))
    rows = []
    events: list[tuple[str, str, str]] = []
    # Time-ordered event ids: they land at the right edge of the outbox's event id index.
    event_ids = iter(time_ordered_ids(len(changed)))
    for k, hid in enumerate(changed, start=1):
        if k % VIEWS_BETWEEN_PAUSES == 0:
            await asyncio.sleep(0)  # a statement in flight on the session may go on
        h = fresh.households[hid]
        members = fresh.members[hid]
        view, missing = fc.profile.view(HouseholdFacts(h.area_code, h.register_status, h.off_register_source, h.channel,
                                                       h.status_since, h.rural_hukou, h_facts[hid], members),
                                        fc.today)
        version = h.version + 1
        view_json, missing_json = repository.dumps(view), repository.dumps(missing)
        own = household_changes.get(hid)
        rows.append({"_id": hid, "_facts": h_facts[hid] if own else None, "_patch": _patch(h_facts[hid], own) if own else None,
                     "_view": view,
                     "_view_json": view_json, "_missing": missing, "_missing_json": missing_json,
                     "_version": version, "_at": fc.now})
        # The event carries the same view: its text is encoded once, for the row and the event.
        head = repository.dumps(event_data(
            household_id=hid, version=version, area_code=h.area_code, label_masked=h.label_masked,
            synthetic=h.synthetic, change="members_changed" if hid in born else "updated", triggers=triggers.get(hid, []),
            member_ages=member_ages(members, fc.today), view=None, missing=None))
        events.append((next(event_ids), hid, with_view(head, view_json, missing_json)))
    return changed, rows, events


def _lead_rows(fc: FeedContext, department: str, leads: list[Record]) -> list[dict[str, Any]]:
    rows = []
    for r in leads:
        lead_id = new_id()
        rows.append({
            "id": lead_id, "department": department, "record_id": r.record_id, "item": r.item.code,
            "resident_bidx": fc.vault.resident_index(r.number),
            "resident_enc": fc.vault.seal(r.number, table="leads", column="resident_id", row_id=lead_id),
            "resident_masked": mask(r.number), "value": r.value, "effective_date": r.effective,
            "area_code": r.area_code, "status": "open", "version": 1, "received_at": fc.now,
        })
    return rows
