"""Leads: reviewing department records about people not yet in the database (主动发现), and
opening an off-register household from one in a single step."""

from __future__ import annotations

from sqlalchemy.orm.attributes import flag_modified

from servicekit.errors import Conflict, NotFound

from registry.deps import Context
from registry.facts import service as facts_service
from registry.facts.triggers import detect
from registry.facts.vocabulary import Change, Provenance, apply
from registry.households import service as households
from registry.households.changes import mark, publish_changes
from registry.households.schemas import HouseholdCreate
from registry.leads import repository
from registry.leads.schemas import LeadDismiss, LeadOpen, LeadPublic
from registry.leads.tables import Lead
from registry.members.schemas import MemberCreate
from registry.members.tables import Member
from registry.problems import Problems


def public(lead: Lead) -> LeadPublic:
    return LeadPublic(id=lead.id, department=lead.department, record_id=lead.record_id, item=lead.item,
                      resident_id_masked=lead.resident_masked, value=lead.value, effective_date=lead.effective_date,
                      area_code=lead.area_code, status=lead.status, household_id=lead.household_id,
                      resolution=lead.resolution, version=lead.version, received_at=lead.received_at)


async def load_in_scope(ctx: Context, lead_id: str, *, for_update: bool = False) -> Lead:
    lead = await repository.get_in_scope(ctx.session, ctx.caller, lead_id, for_update=for_update)
    if lead is None:
        raise NotFound("No lead with that id is in your jurisdiction.")
    return lead


async def open_household(ctx: Context, lead: Lead, body: LeadOpen):
    """Open an off-register household for the lead's person, apply every open lead about them."""
    if lead.status != "open":
        raise Conflict("This lead has already been handled.")
    area = body.area_code or lead.area_code
    if area is None:
        problems = Problems()
        problems.add("body.area_code", "area_required", "The lead has no area: name the village.")
        problems.raise_if_any()
    number = ctx.vault.open(lead.resident_enc, table="leads", column="resident_id", row_id=lead.id)
    request = HouseholdCreate(
        area_code=area, address=body.address, register_status="off_register",
        off_register_source=body.off_register_source, channel="big_data", rural_hukou=body.rural_hukou,
        members=[MemberCreate(resident_id=number, name=body.name, relation="head", phone=body.phone)],
    )
    household, added, pending = await households.create(ctx, request, publish=False)
    if pending or not added:
        # The person was registered elsewhere meanwhile; the city decides, the lead stays open.
        await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
        return household, added, pending
    member = added[0]
    await _apply_leads(ctx, household, member, await repository.open_of_person(ctx.session, lead.resident_bidx))
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
    return household, added, pending


async def _apply_leads(ctx: Context, household, member: Member, leads: list[Lead]) -> None:
    m_facts, h_facts = dict(member.facts), dict(household.facts)
    m_changes: list[Change] = []
    h_changes: list[Change] = []
    for lead in leads:
        _, item, spec = ctx.profile.catalogue.items[lead.item]
        target, changes = (m_facts, m_changes) if spec.subject == "person" else (h_facts, h_changes)
        p = Provenance(lead.department, lead.record_id, lead.effective_date, lead.received_at.isoformat())
        change = apply(target, spec, lead.value, p, ctx.today)
        if change is not None:
            changes.append(change)
        lead.status, lead.household_id, lead.resolved_by, lead.resolved_at = "opened", household.id, ctx.actor, ctx.now
        lead.version += 1
    member.facts, household.facts = m_facts, h_facts
    flag_modified(member, "facts")
    flag_modified(household, "facts")
    history = facts_service.history(m_changes, household.id, member.id, ctx.now)
    history += facts_service.history(h_changes, household.id, None, ctx.now)
    await facts_service.remember(ctx.session, history)
    triggers = detect(ctx.profile.triggers, m_changes, h_facts, member.id) + detect(ctx.profile.triggers, h_changes, h_facts, None)
    mark(ctx.session, household, "created", triggers)


def dismiss(ctx: Context, lead: Lead, body: LeadDismiss) -> None:
    if lead.status != "open":
        raise Conflict("This lead has already been handled.")
    lead.status, lead.resolution, lead.resolved_by, lead.resolved_at = "dismissed", body.reason, ctx.actor, ctx.now
    lead.version += 1
