"""Births delivered by a department (出生医学证明): the newborn joins the household of a parent.

Births are rare, so each is applied on its own (a few reads, the parent's household locked after
its members), in the transaction of its chunk; the household's one household.changed of that
chunk is written by ``apply._work_out`` with the member_born trigger and the new view.

- the newborn is a member already: ``unchanged`` (a re-sent record changes nothing), unless the
  parent lives in an open household and the newborn in another: ``rejected``, saying nothing of
  where (the town checks it);
- the parent is a member of an open household: the newborn is added there (``applied``);
- otherwise (no parent named, parent unknown, parent's household closed: its members are
  released): a ``lead``;
- placed in a household by another writer at that very moment: ``rejected`` as ``retry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.audit import AuditAction, record
from servicekit.resident_id import validate

from registry.facts.triggers import trigger
from registry.feeds import repository
from registry.feeds.parsing import Record, Rejection, rejection
from registry.members import repository as members_repo
from registry.members.schemas import Relation
from registry.members.service import sealed_member

if TYPE_CHECKING:
    from registry.feeds.apply import FeedContext

# The newborn's relation to the head (与户主关系), from the parent's.
NEWBORN_RELATION = {
    Relation.head: Relation.child, Relation.spouse: Relation.child,
    Relation.child: Relation.grandchild, Relation.child_in_law: Relation.grandchild,
}
RECENT_BIRTH = timedelta(days=365)  # as when a worker adds a member: member_born for a birth within a year


@dataclass
class Born:
    """What the births of a chunk did to one household: its triggers and fact history rows."""

    triggers: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Births:
    """What the births of a chunk came to."""

    born: dict[str, Born] = field(default_factory=dict)  # by household changed
    outcomes: list[tuple[Record, str, str]] = field(default_factory=list)  # applied / unchanged, household
    rejections: list[Rejection] = field(default_factory=list)
    leads: list[Record] = field(default_factory=list)
    placed: dict[str, tuple[str, str]] = field(default_factory=dict)  # newborn's ID number: member, household


def newborn_relation(parent_relation: str) -> str:
    return NEWBORN_RELATION.get(Relation(parent_relation), Relation.other).value


async def apply_births(session: AsyncSession, fc: FeedContext, department: str, records: list[Record]) -> Births:
    """Apply these birth records in line order."""
    out = Births()
    for r in records:
        await _apply_birth(session, fc, department, r, out)
    return out


async def _apply_birth(session: AsyncSession, fc: FeedContext, department: str, r: Record, out: Births) -> None:
    newborn = fc.vault.resident_index(r.number)
    parent = fc.vault.resident_index(r.parent) if r.parent is not None else None
    wanted = [newborn] if parent is None else [newborn, parent]
    people = await repository.placed(session, wanted)
    home = _open_home(people, parent)
    if home is not None and newborn not in people:
        # Lock the parent's household -- its members first, as every writer of members locks
        # them (a close, the rest of this chunk) -- then read again: another writer may have
        # placed the newborn, moved the parent or closed the household meanwhile.
        await members_repo.lock_of_household(session, home.household_id)
        await repository.lock_households(session, [home.household_id])
        people = await repository.placed(session, wanted)
        home = _open_home(people, parent)
    child = people.get(newborn)
    if child is not None:
        if home is not None and home.household_id != child.household_id:
            out.rejections.append(_placed_elsewhere(r))
        else:
            out.outcomes.append((r, "unchanged", child.household_id))
        return
    if home is None:
        out.leads.append(r)
        return
    resident = validate(r.number, today=fc.today)  # the date of birth was checked against it with the record
    member = sealed_member(fc.vault, fc.now, home.household_id, resident, newborn, r.name, None,
                           newborn_relation(home.relation), {})
    if not await repository.add_member(session, member):
        out.rejections.append(rejection(r.line, r.record_id, "retry", "The person changed meanwhile; send again."))
        return
    # Personal data written by the department, as a worker adding a member writes it: audited.
    record(session, fc.caller, AuditAction.write, "member", member.id, ["resident_id", "name", "relation"],
           area_code=home.area_code)
    entry = out.born.setdefault(home.household_id, Born())
    if member.birth_date >= fc.today - RECENT_BIRTH:
        entry.triggers.append(trigger("member_born", member.birth_date.isoformat(), department, member.id))
    entry.history.append({"household_id": home.household_id, "member_id": member.id, "fact": r.spec.key,
                          "value": r.value, "source": department, "record_id": r.record_id,
                          "effective_date": r.effective, "received_at": fc.now})
    out.outcomes.append((r, "applied", home.household_id))
    out.placed[r.number] = (member.id, home.household_id)


def _open_home(people: dict[str, Any], parent: str | None) -> Any:
    """The parent's membership, if the parent is named and a member (of an open household: the
    members of a closed one are released, no longer found by their number)."""
    return people.get(parent) if parent is not None else None


def _placed_elsewhere(r: Record) -> Rejection:
    return rejection(r.line, r.record_id, "newborn_placed_elsewhere",
                     "The newborn cannot be placed as recorded; the town will check it.")
