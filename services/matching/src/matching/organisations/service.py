"""Partners apply; a district or city officer approves, rejects, suspends or reinstates them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller, Role
from servicekit.errors import Forbidden, NotFound
from servicekit.tables import utcnow

from matching.organisations import repository
from matching.organisations.schemas import OrganisationApply, OrganisationPublic, OrganisationStatus
from matching.organisations.tables import Organisation
from matching.problems import AlreadyExists, InvalidTransition, PartnerNotApproved, UnknownReference
from matching.profile import Profile

# decision -> (allowed from, leads to)
DECISIONS = {
    "approve": ({"pending", "suspended"}, OrganisationStatus.approved),
    "reject": ({"pending"}, OrganisationStatus.rejected),
    "suspend": ({"approved"}, OrganisationStatus.suspended),
}


def public(org: Organisation) -> OrganisationPublic:
    return OrganisationPublic.model_validate(org, from_attributes=True)


def organisation_of(caller: Caller) -> str:
    if caller.role is not Role.partner or not caller.organisation:
        raise Forbidden("Only a partner token with an organisation may do this.")
    return caller.organisation


async def apply(session: AsyncSession, profile: Profile, caller: Caller, body: OrganisationApply) -> Organisation:
    org_id = organisation_of(caller)
    if body.area_code not in profile.areas:
        raise UnknownReference("area_code is not an area of the city.")
    if await repository.get(session, org_id) is not None:
        raise AlreadyExists("Your organisation has applied already; see GET /api/v1/organisations/me.")
    now = utcnow()
    org = Organisation(
        id=org_id, name=body.name, kind=body.kind.value, credit_code=body.credit_code, area_code=body.area_code,
        description=body.description, hotline=body.hotline, status=OrganisationStatus.pending.value,
        applied_by=caller.subject, applied_at=now, version=1,
    )
    session.add(org)
    await session.flush()
    return org


async def visible(session: AsyncSession, caller: Caller, org_id: str) -> Organisation:
    """Partners see their own organisation only; officials, auditors and services see all."""
    org = await repository.get(session, org_id)
    if org is None or (caller.role is Role.partner and caller.organisation != org_id) or caller.role is Role.citizen:
        raise NotFound("No organisation with that id is visible to you.")
    return org


async def decide(session: AsyncSession, caller: Caller, org_id: str, decision: str, reason: str | None,
                 if_match: Callable[[int], None]) -> Organisation:
    org = await repository.get(session, org_id, lock=True)
    if org is None or not caller.can_see_area(org.area_code):
        raise NotFound("No organisation with that id is in your jurisdiction.")
    if_match(org.version)
    allowed, to = DECISIONS[decision]
    if org.status not in allowed:
        raise InvalidTransition(f"An organisation that is {org.status} cannot be given '{decision}'.")
    org.status = to.value
    org.decided_by, org.decided_at, org.decision_reason = caller.subject, utcnow(), reason
    org.version += 1
    await session.flush()
    return org


async def approved_partner(session: AsyncSession, caller: Caller) -> Organisation:
    """The caller's organisation, which must be approved to post offers or act on matches."""
    org = await repository.get(session, organisation_of(caller))
    if org is None or org.status != OrganisationStatus.approved.value:
        raise PartnerNotApproved("Your organisation is not an approved partner of the consortium yet.")
    return org


async def ensure_demo_partner(session: AsyncSession, org_id: str, area_code: str) -> bool:
    """Development seed: the demo partner's organisation exists and is approved."""
    org = await repository.get(session, org_id)
    if org is not None:
        return False
    now = utcnow()
    session.add(Organisation(
        id=org_id, name="示例公益服务中心（演示）", kind="social_organisation", credit_code=None, area_code=area_code,
        description="演示用合作伙伴：为困难家庭提供助餐、探访和学业帮扶 (demo partner, synthetic)",
        hotline=None, status="approved", applied_by="seed", applied_at=now, decided_by="seed", decided_at=now,
        decision_reason="development seed", version=1,
    ))
    await session.flush()
    return True
