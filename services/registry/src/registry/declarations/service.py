"""Declarations (主动申报): a citizen declares difficulty or a change; a worker accepts it (the
household is created or updated, with the trigger ``declaration_accepted``) or rejects it with a
reason the citizen sees."""

from __future__ import annotations

from servicekit.audit import AuditAction, record
from servicekit.auth import OFFICIALS, Role
from servicekit.crypto import mask_name, mask_phone
from servicekit.errors import Conflict, Forbidden, NotFound
from servicekit.resident_id import InvalidResidentId, mask, validate
from sqlalchemy import ColumnElement, false
from sqlalchemy.orm.attributes import flag_modified

from registry.columns import new_id
from registry.declarations import repository
from registry.declarations.schemas import DeclarationIn, DeclarationPublic, RejectIn
from registry.declarations.tables import Declaration
from registry.deps import Context
from registry.facts import service as facts_service
from registry.facts.triggers import detect, trigger
from registry.facts.vocabulary import FACTS, Provenance, apply
from registry.households import repository as households_repo
from registry.households import service as households
from registry.households.changes import mark, publish_changes
from registry.households.schemas import HouseholdCreate
from registry.members.schemas import MemberCreate
from registry.problems import Problems

TABLE = "declarations"


def _citizen_number(ctx: Context) -> str:
    try:
        return validate(ctx.caller.resident_id or "", today=ctx.today).number
    except InvalidResidentId:
        raise Forbidden("Your token carries no valid resident ID number.") from None


def visible(ctx: Context) -> ColumnElement[bool]:
    """A citizen sees their own declarations; an official those of their jurisdiction."""
    if ctx.caller.role is Role.citizen:
        return Declaration.citizen_bidx == ctx.vault.resident_index(_citizen_number(ctx))
    if ctx.caller.role in OFFICIALS:
        return ctx.caller.scope(Declaration.area_code)
    return false()


async def load(ctx: Context, declaration_id: str, *, for_update: bool = False) -> Declaration:
    declaration = await repository.get(ctx.session, declaration_id, visible(ctx), for_update=for_update)
    if declaration is None:
        raise NotFound("No declaration with that id is yours or in your jurisdiction.")
    return declaration


def _seal(ctx: Context, value: str | None, column: str, row_id: str) -> str | None:
    return ctx.vault.seal(value, table=TABLE, column=column, row_id=row_id)


def _open(ctx: Context, d: Declaration, column: str) -> str | None:
    return ctx.vault.open(getattr(d, f"{column}_enc"), table=TABLE, column=column, row_id=d.id)


async def submit(ctx: Context, body: DeclarationIn) -> Declaration:
    number = _citizen_number(ctx)
    problems = Problems()
    area = body.area_code or ctx.caller.area or ""
    if not ctx.profile.areas.is_village(area):
        problems.add("body.area_code", "unknown_area", "Name the village or community (村社) you live in.")
    for i, need in enumerate(body.needs):
        if need not in ctx.profile.need_types:
            problems.add(f"body.needs.{i}", "unknown_need", "Not a need type of the service catalogue.")
    problems.raise_if_any()
    declaration_id = new_id()
    declaration = Declaration(
        id=declaration_id, citizen_bidx=ctx.vault.resident_index(number),
        resident_enc=_seal(ctx, number, "resident_id", declaration_id), resident_masked=mask(number),
        area_code=area, kind=body.kind.value, needs=sorted(set(body.needs)),
        name_enc=_seal(ctx, body.name, "name", declaration_id), phone_enc=_seal(ctx, body.phone, "phone", declaration_id),
        address_enc=_seal(ctx, body.address, "address", declaration_id),
        description_enc=_seal(ctx, body.description, "description", declaration_id),
        status="submitted", version=1, created_at=ctx.now,
    )
    ctx.session.add(declaration)
    record(ctx.session, ctx.caller, AuditAction.write, "declaration", declaration_id,
           ("name", "phone", "address", "description"), area_code=area)
    return declaration


def public(ctx: Context, d: Declaration) -> DeclarationPublic:
    """The declaration with its description in clear (the citizen's own words, or the reviewer's
    material), so the read is audited as unmasked."""
    record(ctx.session, ctx.caller, AuditAction.read_unmasked, "declaration", d.id, ("description",),
           purpose="own declaration" if ctx.caller.role is Role.citizen else "declaration review", area_code=d.area_code)
    name, phone = _open(ctx, d, "name"), _open(ctx, d, "phone")
    return DeclarationPublic(
        id=d.id, kind=d.kind, area_code=d.area_code, needs=d.needs, status=d.status,
        rejection_reason=d.rejection_reason, description=_open(ctx, d, "description"),
        name_masked=mask_name(name) if name else None, phone_masked=mask_phone(phone) if phone else None,
        resident_id_masked=d.resident_masked, household_id=d.household_id, version=d.version,
        created_at=d.created_at, reviewed_at=d.reviewed_at,
    )


async def accept(ctx: Context, d: Declaration) -> None:
    if d.status != "submitted":
        raise Conflict("This declaration has already been reviewed.")
    accepted = trigger("declaration_accepted", ctx.today.isoformat(), "declaration", detail={"kind": d.kind})
    household = await households_repo.of_member(ctx.session, d.citizen_bidx)
    triggers = [accepted]
    if household is None:
        request = HouseholdCreate(
            area_code=d.area_code, address=_open(ctx, d, "address") or "待核实", register_status="off_register",
            off_register_source="proactive_discovery", channel="declaration",
            members=[MemberCreate(resident_id=ctx.vault.open(d.resident_enc, table=TABLE, column="resident_id", row_id=d.id) or "", name=_open(ctx, d, "name") or "*",
                                  relation="head", phone=_open(ctx, d, "phone"))],
        )
        household, _added, pending = await households.create(ctx, request, extra_triggers=[accepted], publish=False)
        if pending:  # registered elsewhere meanwhile: the city decides first
            await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
            raise Conflict("This declaration needs a city-level check before it can be accepted.")
        change_kind, triggers = "created", []  # create() already carries declaration_accepted
    else:
        change_kind = "updated"
    facts = dict(household.facts)
    if d.kind == "difficulty":
        change = apply(facts, FACTS["declared_difficulty"], True,
                       Provenance("declaration", d.id, ctx.today, ctx.now.isoformat()), ctx.today)
        if change is not None:
            household.facts = facts
            flag_modified(household, "facts")
            await facts_service.remember(ctx.session, facts_service.history([change], household.id, None, ctx.now))
            triggers += detect(ctx.profile.triggers, [change], facts, None)
    mark(ctx.session, household, change_kind, triggers)
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
    d.status, d.household_id, d.reviewed_by, d.reviewed_at = "accepted", household.id, ctx.actor, ctx.now
    d.rejection_reason = None
    d.version += 1


def reject(ctx: Context, d: Declaration, body: RejectIn) -> None:
    if d.status != "submitted":
        raise Conflict("This declaration has already been reviewed.")
    d.status, d.rejection_reason, d.reviewed_by, d.reviewed_at = "rejected", body.reason, ctx.actor, ctx.now
    d.version += 1
