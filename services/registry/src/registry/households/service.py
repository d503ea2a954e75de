"""Households: opening one, changing its facts and register status, members, surveys.

Domain code only flushes; the request edge commits. Every change marks the household, and each
operation ends by publishing the marked changes (one household.changed per household).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified

from servicekit import audit as audit_log
from servicekit.auth import Caller
from servicekit.db import Database, unit_of_work
from servicekit.errors import Conflict, NotFound
from servicekit.resident_id import InvalidResidentId, normalize

from registry.audit import service as audit
from registry.columns import new_id
from registry.deps import Context
from registry.facts import service as facts_service
from registry.facts.schemas import FactInput
from registry.facts.triggers import detect, trigger
from registry.facts.vocabulary import FACTS, Change, Provenance, apply, value_of
from registry.households import repository
from registry.households.changes import mark, publish_changes
from registry.households.schemas import (
    CloseIn, HouseholdCreate, HouseholdUpdate, PendingReview, StatusChangeIn, SurveyIn,
)
from registry.households.present import label
from registry.households.tables import Household, StatusChange, Survey
from registry.members import repository as members_repo
from registry.members import service as members
from registry.members.schemas import MemberCreate
from registry.members.tables import Member
from registry.problems import Problems
from registry.reconciliation.service import open_case

TABLE = "households"
ON_REGISTER = ("dibao", "dibian", "tekun")
CLOSED = "closed"  # in the status history: the household was closed (注销)
NOT_IN_SCOPE = "No household with that id is in your jurisdiction."


def check_area(ctx: Context, code: str, location: str, problems: Problems) -> None:
    if not ctx.profile.areas.is_village(code):
        problems.add(location, "unknown_area", "Not a village or community (村社) code of the city profile.")
    elif not ctx.caller.can_see_area(code):
        problems.add(location, "outside_jurisdiction", "The area is outside your jurisdiction.")


def check_status(status: str, source: str | None, location: str, problems: Problems) -> None:
    if status == "off_register" and source is None:
        problems.add(f"{location}.off_register_source", "source_required",
                     "An off-register household needs its source (one of the five high-risk sources).")
    if status in ON_REGISTER and source is not None:
        problems.add(f"{location}.off_register_source", "source_not_allowed",
                     "An on-register status (dibao, dibian, tekun) has no off-register source.")


async def load_in_scope(ctx: Context, household_id: str, *, for_update: bool = False) -> Household:
    household = await repository.get_in_scope(ctx.session, ctx.caller, household_id, for_update=for_update)
    if household is None:
        raise NotFound(NOT_IN_SCOPE)
    return household


async def read_masked(db: Database, caller: Caller, household_id: str) -> tuple[Any, list[Any]]:
    """The masked read by id (the most common call of the product), returned only once its audit
    record is committed. On PostgreSQL the read and its record go with the other reads of the
    moment in one statement and one commit (``repository.read_masked_audited``: a commit per
    read, waiting for its WAL flush, was a third of the database's CPU for a read, and a
    statement per read most of the rest); elsewhere two selects and the INSERT in one
    transaction. 404 outside the caller's jurisdiction, with no record."""
    entry = audit_log.entry(caller, audit_log.AuditAction.read_masked, "household", household_id,
                            audit.HOUSEHOLD_FIELDS, None, None)
    if db.is_postgres:
        found = await repository.read_masked_audited(db, caller, household_id, entry)
    else:
        async with unit_of_work(db) as session:
            found = await repository.read_in_scope(session, caller, household_id)
            if found is not None:
                await audit_log.insert(session, entry | {"area_code": found[0].area_code})
    if found is None:
        raise NotFound(NOT_IN_SCOPE)
    return found


async def flush(ctx: Context) -> None:
    try:
        await ctx.session.flush()
    except IntegrityError:
        # Two requests placed the same person at once; the unique index kept them apart.
        raise Conflict("Someone changed these records at the same time; read them again and retry.") from None


async def create(ctx: Context, body: HouseholdCreate, *, extra_triggers: list[dict[str, Any]] | None = None,
                 publish: bool = True) -> tuple[Household, list[Member], list[PendingReview]]:
    """Open a household; with ``publish=False`` the caller adds to it and publishes the one event."""
    problems = Problems()
    check_area(ctx, body.area_code, "body.area_code", problems)
    check_status(body.register_status, body.off_register_source, "body", problems)
    checked = members.check_members(ctx, body.members, "body.members", problems)
    if sum(1 for m in body.members if m.relation == "head") != 1:
        problems.add("body.members", "one_head", "A household has exactly one head (户主).")
    household_id = new_id()
    facts: dict[str, Any] = {}
    h_changes = facts_service.apply_inputs(ctx.profile, facts, "household", body.facts, where="body.facts", source="worker",
                                           record=None, received_at=ctx.now, today=ctx.today, problems=problems)
    member_facts = [members.member_facts(ctx, cm, f"body.members.{body.members.index(cm.body)}.facts", problems)
                    for cm in checked]
    problems.raise_if_any()

    head = next(m for m in body.members if m.relation == "head")
    seal = ctx.vault.seal
    household = Household(
        id=household_id, area_code=body.area_code, register_status=body.register_status.value,
        off_register_source=body.off_register_source.value if body.off_register_source else None,
        status_since=body.status_since or ctx.today, channel=body.channel.value, rural_hukou=body.rural_hukou,
        address_enc=seal(body.address, table=TABLE, column="address", row_id=household_id),
        location_enc=seal(_location(body.location), table=TABLE, column="location", row_id=household_id),
        label_masked=label(head.name), facts=facts, version=1, synthetic=False, created_by=ctx.actor,
        created_at=ctx.now, updated_at=ctx.now,
    )
    elsewhere = await members.find_conflicts(ctx, household, checked)
    ctx.session.add(household)
    ctx.session.add(StatusChange(
        id=new_id(), household_id=household_id, to_status=household.register_status,
        to_source=household.off_register_source, effective_date=household.status_since,
        reason="opened", actor=ctx.actor, role=ctx.caller.role.value, at=ctx.now,
    ))
    added: list[Member] = []
    pending: list[PendingReview] = []
    triggers = [trigger("household_created", ctx.today.isoformat(), body.channel.value)] + list(extra_triggers or [])
    triggers += detect(ctx.profile.triggers, h_changes, facts, None)
    history = facts_service.history(h_changes, household_id, None, ctx.now)
    for cm, (m_facts, m_changes) in zip(checked, member_facts, strict=True):
        other = elsewhere.get(cm.index)
        if other is not None:
            case = open_case(ctx, cm, other.id, household_id)
            pending.append(PendingReview(index=body.members.index(cm.body), reconciliation_id=case.id))
            continue
        member = members.build(ctx, household_id, cm, m_facts)
        ctx.session.add(member)
        added.append(member)
        history += facts_service.history(m_changes, household_id, member.id, ctx.now)
        triggers += detect(ctx.profile.triggers, m_changes, facts, member.id)
    await flush(ctx)
    await facts_service.remember(ctx.session, history)
    mark(ctx.session, household, "created", triggers)
    audit.written(ctx, "household", household_id, ["address", "location", "members"], household.area_code)
    if publish:
        await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
    return household, added, pending


def _location(location: tuple[float, float] | None) -> str | None:
    return None if location is None else f"{location[0]:.6f},{location[1]:.6f}"


async def update(ctx: Context, household: Household, body: HouseholdUpdate) -> None:
    problems = Problems()
    facts = dict(household.facts)
    changes = facts_service.apply_inputs(ctx.profile, facts, "household", body.facts, where="body.facts", source="worker",
                                         record=None, received_at=ctx.now, today=ctx.today, problems=problems)
    problems.raise_if_any()
    written = []
    vault = ctx.vault
    for column, value in (("address", body.address), ("location", _location(body.location))):
        current = getattr(household, f"{column}_enc")
        if value is not None and value != vault.open(current, table=TABLE, column=column, row_id=household.id):
            setattr(household, f"{column}_enc", vault.seal(value, table=TABLE, column=column, row_id=household.id))
            written.append(column)
    if written:
        audit.written(ctx, "household", household.id, written, household.area_code)
    if body.rural_hukou is not None and body.rural_hukou != household.rural_hukou:
        household.rural_hukou = body.rural_hukou
        written.append("rural_hukou")
    if not written and not changes:
        return  # nothing changed: no new version, no event
    household.facts = facts
    flag_modified(household, "facts")
    await facts_service.remember(ctx.session, facts_service.history(changes, household.id, None, ctx.now))
    mark(ctx.session, household, "updated", detect(ctx.profile.triggers, changes, facts, None))
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)


async def change_status(ctx: Context, household: Household, body: StatusChangeIn) -> None:
    problems = Problems()
    check_status(body.register_status, body.off_register_source, "body", problems)
    effective = body.effective_date or ctx.today
    if effective > ctx.today:
        problems.add("body.effective_date", "future_date", "The effective date is in the future.")
    problems.raise_if_any()
    source = body.off_register_source.value if body.off_register_source else None
    if (household.register_status, household.off_register_source) == (body.register_status.value, source):
        raise Conflict("The household already has this register status.")
    previous = household.register_status
    ctx.session.add(StatusChange(
        id=new_id(), household_id=household.id, from_status=previous, from_source=household.off_register_source,
        to_status=body.register_status.value, to_source=source, effective_date=effective, reason=body.reason,
        actor=ctx.actor, role=ctx.caller.role.value, at=ctx.now,
    ))
    household.register_status, household.off_register_source, household.status_since = body.register_status.value, source, effective
    triggers = [trigger("register_status_changed", effective.isoformat(), "worker",
                        detail={"from": previous, "to": household.register_status})]
    if previous in ON_REGISTER and source == "assistance_exit":
        # Leaving assistance is itself a fact scoring reads (months since exit).
        facts = dict(household.facts)
        change = apply(facts, FACTS["assistance_exit_on"], effective.isoformat(),
                       Provenance("worker", None, effective, ctx.now.isoformat()), ctx.today)
        household.facts = facts
        flag_modified(household, "facts")
        if change is not None:
            triggers += detect(ctx.profile.triggers, [change], facts, None)
            await facts_service.remember(ctx.session, facts_service.history([change], household.id, None, ctx.now))
    mark(ctx.session, household, "status_changed", triggers)
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)


async def close(ctx: Context, household: Household, body: CloseIn) -> None:
    """Close a household (注销): its history stays, its status history says when and why, and
    household.changed says ``closed``; from then on it is read-only, and its members are released
    (see ``members.repository.release``)."""
    effective = body.effective_date or ctx.today
    if effective > ctx.today:
        problems = Problems()
        problems.add("body.effective_date", "future_date", "The effective date is in the future.")
        problems.raise_if_any()
    ctx.session.add(StatusChange(
        id=new_id(), household_id=household.id, from_status=household.register_status,
        from_source=household.off_register_source, to_status=CLOSED, to_source=None, effective_date=effective,
        reason=body.reason, actor=ctx.actor, role=ctx.caller.role.value, at=ctx.now,
    ))
    household.closed_on, household.closed_reason = effective, body.reason
    # A person belongs to at most one open household: the members are released, free to join
    # another household; records about them are leads from now on.
    await members_repo.release(ctx.session, household.id)
    mark(ctx.session, household, "closed")
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)


async def add_member(ctx: Context, household: Household, body: MemberCreate) -> tuple[Member | None, PendingReview | None]:
    problems = Problems()
    checked = members.check_members(ctx, [body], "body", problems)
    current = await repository.members_of(ctx.session, household.id)
    if body.relation == "head" and any(m.relation == "head" and value_of(m.facts, "deceased_on") is None for m in current):
        problems.add("body.relation", "one_head", "The household already has a living head (户主).")
    facts_changes = [members.member_facts(ctx, cm, "body.facts", problems) for cm in checked]
    problems.raise_if_any()
    cm, (m_facts, m_changes) = checked[0], facts_changes[0]
    elsewhere = await members.find_conflicts(ctx, household, checked)
    if cm.index in elsewhere:
        case = open_case(ctx, cm, elsewhere[cm.index].id, household.id)
        return None, PendingReview(index=0, reconciliation_id=case.id)
    member = members.build(ctx, household.id, cm, m_facts)
    ctx.session.add(member)
    await flush(ctx)
    await facts_service.remember(ctx.session, facts_service.history(m_changes, household.id, member.id, ctx.now))
    triggers = detect(ctx.profile.triggers, m_changes, household.facts, member.id)
    if member.birth_date >= ctx.today - timedelta(days=365):
        triggers.append(trigger("member_born", member.birth_date.isoformat(), "worker", member.id))
    audit.written(ctx, "member", member.id, ["resident_id", "name", "phone", "relation"], household.area_code)
    mark(ctx.session, household, "members_changed", triggers)
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
    return member, None


async def record_survey(ctx: Context, household: Household, body: SurveyIn) -> Survey:
    """A door-to-door visit: its findings become facts with the survey as their record."""
    problems = Problems()
    if body.visited_on > ctx.today:
        problems.add("body.visited_on", "future_date", "The visit date is in the future.")
    survey_id = new_id()
    facts = dict(household.facts)
    inputs = list(body.household_facts) + [
        FactInput(fact="visits", value=0, effective_date=body.visited_on),
        FactInput(fact="worker_concern", value=body.concern, effective_date=body.visited_on),
    ]
    h_changes = facts_service.apply_inputs(ctx.profile, facts, "household", inputs, where="body.household_facts",
                                           source="survey", record=survey_id, received_at=ctx.now,
                                           today=ctx.today, problems=problems)
    by_id = {m.id: m for m in await repository.members_of(ctx.session, household.id)}
    member_changes: list[tuple[Member, list[Change]]] = []
    for k, (member_id, items) in enumerate(body.member_facts.items()):
        member = by_id.get(member_id)
        if member is None:
            problems.add(f"body.member_facts.{member_id[:36]}", "unknown_member", "Not a member of this household.")
            continue
        m_facts = dict(member.facts)
        changes = facts_service.apply_inputs(ctx.profile, m_facts, "person", items, where=f"body.member_facts.{member_id}",
                                             source="survey", record=f"{survey_id}:m{k}", received_at=ctx.now,
                                             today=ctx.today, problems=problems)
        member.facts = m_facts
        flag_modified(member, "facts")
        member_changes.append((member, changes))
    problems.raise_if_any()
    household.facts = facts
    flag_modified(household, "facts")
    survey = Survey(
        id=survey_id, household_id=household.id, visited_on=body.visited_on, actor=ctx.actor,
        role=ctx.caller.role.value, concern=body.concern,
        findings=sorted({c.fact for c in h_changes} | {c.fact for _, cs in member_changes for c in cs}),
        notes_enc=ctx.vault.seal(body.notes, table="surveys", column="notes", row_id=survey_id), created_at=ctx.now,
    )
    ctx.session.add(survey)
    history = facts_service.history(h_changes, household.id, None, ctx.now)
    triggers = detect(ctx.profile.triggers, h_changes, facts, None)
    for member, changes in member_changes:
        history += facts_service.history(changes, household.id, member.id, ctx.now)
        triggers += detect(ctx.profile.triggers, changes, facts, member.id)
        if changes:
            member.version += 1
            member.updated_at = ctx.now
    await facts_service.remember(ctx.session, history)
    mark(ctx.session, household, "updated", triggers)
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
    return survey


async def own_household(ctx: Context) -> Household:
    """A citizen's own household, found by the ID number in their token; 404 otherwise."""
    household = None
    try:
        index = ctx.vault.resident_index(normalize(ctx.caller.resident_id or ""))
        household = await repository.of_member(ctx.session, index, or_closed=True)
    except InvalidResidentId:
        pass
    if household is None:
        raise NotFound("No household is registered for you.")
    return household
