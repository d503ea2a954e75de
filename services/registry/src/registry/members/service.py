"""Members: checking a person's data, sealing it, placing them in exactly one household."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm.attributes import flag_modified

from servicekit.crypto import mask_name, mask_phone
from servicekit.errors import Conflict, NotFound
from servicekit.resident_id import InvalidResidentId, ResidentId, validate

from registry.audit import service as audit
from registry.columns import new_id
from registry.deps import Context
from registry.facts import service as facts_service
from registry.facts.schemas import facts_documents, facts_public
from registry.facts.view import age_on
from registry.facts.vocabulary import Change, value_of
from registry.households import repository as households_repo
from registry.households.tables import Household
from registry.members import repository
from registry.members.schemas import MemberCreate, MemberPublic, MemberUpdate, RevealedMember, RevealIn
from registry.members.tables import Member
from registry.problems import Problems
from registry.vault import Vault

TABLE = "members"


@dataclass
class CheckedMember:
    resident: ResidentId
    index: str
    body: MemberCreate


def check_resident_id(ctx: Context, raw: str, location: str, problems: Problems) -> ResidentId | None:
    try:
        return validate(raw, today=ctx.today)
    except InvalidResidentId as exc:
        problems.add(location, f"resident_id.{exc.code}", exc.message)
        return None


def check_members(ctx: Context, members: list[MemberCreate], where: str, problems: Problems) -> list[CheckedMember]:
    out: list[CheckedMember] = []
    seen: set[str] = set()
    for i, m in enumerate(members):
        loc = f"{where}.{i}"
        resident = check_resident_id(ctx, m.resident_id, f"{loc}.resident_id", problems)
        if resident is None:
            continue
        if m.birth_date is not None and m.birth_date != resident.birth_date:
            problems.add(f"{loc}.birth_date", "birth_date_mismatch", "The birth date disagrees with the ID number.")
            continue
        if m.sex is not None and m.sex != resident.sex:
            problems.add(f"{loc}.sex", "sex_mismatch", "The sex disagrees with the ID number.")
            continue
        if resident.number in seen:
            problems.add(f"{loc}.resident_id", "duplicate_member", "The same person appears twice in this request.")
            continue
        seen.add(resident.number)
        out.append(CheckedMember(resident, ctx.vault.resident_index(resident.number), m))
    return out


def build(ctx: Context, household_id: str, cm: CheckedMember, facts: dict[str, Any], *, synthetic: bool = False) -> Member:
    body = cm.body
    return sealed_member(ctx.vault, ctx.now, household_id, cm.resident, cm.index, body.name, body.phone,
                         body.relation.value, facts, synthetic=synthetic)


def sealed_member(vault: Vault, now: datetime, household_id: str, resident: ResidentId, index: str, name: str | None,
                  phone: str | None, relation: str, facts: dict[str, Any], *, synthetic: bool = False) -> Member:
    """A new member row, its ID number, name and phone sealed to the row: the one way a member is
    made, whether a worker adds them or a department's birth record does (registry.feeds.births)."""
    member_id = new_id()
    seal = vault.seal
    return Member(
        id=member_id, household_id=household_id, resident_bidx=index,
        resident_enc=seal(resident.number, table=TABLE, column="resident_id", row_id=member_id),
        resident_masked=resident.masked,
        name_enc=seal(name, table=TABLE, column="name", row_id=member_id),
        name_masked=mask_name(name) if name is not None else None,
        phone_enc=seal(phone, table=TABLE, column="phone", row_id=member_id),
        phone_masked=mask_phone(phone) if phone else None,
        sex=resident.sex, birth_date=resident.birth_date, relation=relation, facts=facts,
        version=1, synthetic=synthetic, created_at=now, updated_at=now,
    )


def member_facts(ctx: Context, cm: CheckedMember, where: str, problems: Problems) -> tuple[dict[str, Any], list[Change]]:
    facts: dict[str, Any] = {}
    changes = facts_service.apply_inputs(ctx.profile, facts, "person", cm.body.facts, where=where, source="worker",
                                         record=None, received_at=ctx.now, today=ctx.today, problems=problems)
    return facts, changes


async def find_conflicts(ctx: Context, household: Household, checked: list[CheckedMember]) -> dict[str, Household]:
    """Members of this request who already belong to a household the caller cannot see.

    One the caller can see is a plain 409 (they can look it up anyway); one they cannot see goes
    to the city's reconciliation queue, and the caller only learns that a check is needed.
    """
    existing = await repository.by_indexes(ctx.session, [c.index for c in checked])
    elsewhere: dict[str, Household] = {}
    for cm in checked:
        member = existing.get(cm.index)
        if member is None:
            continue
        if member.household_id == household.id:
            raise Conflict("This person is already a member of this household.")
        other = await households_repo.get(ctx.session, member.household_id)
        if other is not None and ctx.caller.can_see_area(other.area_code):
            raise Conflict("This person already belongs to another household in your jurisdiction; "
                           "change that household first.", household_id=other.id)
        if other is not None:
            elsewhere[cm.index] = other
    return elsewhere


def public(m: Member, today: date) -> MemberPublic:
    return MemberPublic(
        id=m.id, household_id=m.household_id, resident_id_masked=m.resident_masked, name_masked=m.name_masked,
        phone_masked=m.phone_masked, sex=m.sex, age=age_on(m.birth_date, today), relation=m.relation,
        deceased=value_of(m.facts, "deceased_on") is not None, facts=facts_public(m.facts), version=m.version,
        synthetic=m.synthetic, updated_at=m.updated_at,
    )


def public_document(m: Any, today: date) -> dict[str, Any]:
    """``public`` as a plain dict (see ``households.present.household_document``)."""
    return {
        "id": m.id, "household_id": m.household_id, "resident_id_masked": m.resident_masked,
        "name_masked": m.name_masked, "phone_masked": m.phone_masked, "sex": m.sex, "age": age_on(m.birth_date, today),
        "relation": m.relation, "deceased": value_of(m.facts, "deceased_on") is not None,
        "facts": facts_documents(m.facts), "version": m.version, "synthetic": m.synthetic, "updated_at": m.updated_at,
    }


async def load_in_scope(ctx: Context, member_id: str, *, for_update: bool = False) -> tuple[Member, Household]:
    found = await repository.get_in_scope(ctx.session, ctx.caller, member_id, for_update=for_update)
    if found is None:
        raise NotFound("No member with that id is in your jurisdiction.")
    return found


async def lookup(ctx: Context, raw: str) -> MemberPublic:
    problems = Problems()
    resident = check_resident_id(ctx, raw, "body.resident_id", problems)
    problems.raise_if_any()
    assert resident is not None
    found = await repository.in_scope_by_index(ctx.session, ctx.caller, ctx.vault.resident_index(resident.number))
    if found is None:
        # The same answer whether the person is unknown or registered elsewhere.
        raise NotFound("No member with that ID number is in your jurisdiction.")
    member, household = found
    audit.member_read(ctx, member.id, household.area_code, lookup=True)
    return public(member, ctx.today)


async def update(ctx: Context, member: Member, household: Household, body: MemberUpdate) -> list[Change]:
    problems = Problems()
    facts = dict(member.facts)
    changes = facts_service.apply_inputs(ctx.profile, facts, "person", body.facts, where="body.facts", source="worker",
                                         record=None, received_at=ctx.now, today=ctx.today, problems=problems)
    problems.raise_if_any()
    seal = ctx.vault.seal
    written = [c.fact for c in changes]
    if body.name is not None:
        member.name_enc = seal(body.name, table=TABLE, column="name", row_id=member.id)
        member.name_masked = mask_name(body.name)
        written.append("name")
    if body.phone is not None:
        member.phone_enc = seal(body.phone, table=TABLE, column="phone", row_id=member.id)
        member.phone_masked = mask_phone(body.phone)
        written.append("phone")
    if body.relation is not None:
        member.relation = body.relation.value
        written.append("relation")
    member.facts = facts
    flag_modified(member, "facts")
    member.version += 1
    member.updated_at = ctx.now
    await facts_service.remember(ctx.session, facts_service.history(changes, household.id, member.id, ctx.now))
    audit.written(ctx, "member", member.id, written, household.area_code)
    return changes


async def reveal(ctx: Context, member: Member, household: Household, body: RevealIn) -> RevealedMember:
    purpose = body.purpose.value + (f": {body.note}" if body.note else "")
    await audit.unmasked_read(ctx, member.id, household.area_code, purpose)
    open_ = ctx.vault.open
    resident = open_(member.resident_enc, table=TABLE, column="resident_id", row_id=member.id)
    assert resident is not None
    return RevealedMember(
        id=member.id, household_id=household.id, resident_id=resident,
        name=open_(member.name_enc, table=TABLE, column="name", row_id=member.id),
        phone=open_(member.phone_enc, table=TABLE, column="phone", row_id=member.id),
        birth_date=member.birth_date,
        address=open_(household.address_enc, table="households", column="address", row_id=household.id),
        purpose=body.purpose,
    )
