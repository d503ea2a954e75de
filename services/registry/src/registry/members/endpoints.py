"""Members (家庭成员): read masked, find by ID number (POST), update, reveal (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from servicekit.concurrency import check_version, expected_version, set_etag
from servicekit.db import TransactionalRoute
from servicekit.errors import Conflict

from registry.audit import service as audit
from registry.responses import BODY, CONFLICT, IF_MATCH, LIMITED, ONE, problems
from registry.deps import Ctx, Officials, Revealers
from registry.households.changes import mark, publish_changes
from registry.facts.triggers import detect
from registry.members import service
from registry.members.schemas import LookupIn, MemberPublic, MemberUpdate, RevealedMember, RevealIn

router = APIRouter(prefix="/api/v1/members", tags=["members"], route_class=TransactionalRoute)

MemberId = Annotated[str, Path(min_length=36, max_length=36, description="Member id (UUID)")]


@router.post("/lookup", operation_id="members:lookup",
             summary="Find a member by resident ID number (in the body, never in the URL)",
             response_model=MemberPublic, responses=problems(ONE, BODY))
async def lookup_member(body: LookupIn, ctx: Ctx, _caller: Officials) -> MemberPublic:
    return await service.lookup(ctx, body.resident_id)


@router.get("/{member_id}", operation_id="members:get", summary="One member, masked", response_model=MemberPublic,
            responses=problems(ONE))
async def get_member(member_id: MemberId, ctx: Ctx, _caller: Officials, response: Response) -> MemberPublic:
    member, household = await service.load_in_scope(ctx, member_id)
    audit.member_read(ctx, member.id, household.area_code)
    set_etag(response, member.version)
    return service.public(member, ctx.today)


@router.patch("/{member_id}", operation_id="members:update", summary="Change a member's name, phone, relation or facts",
              response_model=MemberPublic,
              responses=problems(ONE, BODY, IF_MATCH, CONFLICT))
async def update_member(member_id: MemberId, body: MemberUpdate, ctx: Ctx, _caller: Officials, request: Request,
                        response: Response) -> MemberPublic:
    expected = expected_version(request)
    member, household = await service.load_in_scope(ctx, member_id, for_update=True)
    check_version(expected, member.version)
    if household.closed_on is not None:
        raise Conflict("The member's household is closed (注销); its members can be read, not changed.")
    changes = await service.update(ctx, member, household, body)
    mark(ctx.session, household, "updated", detect(ctx.profile.triggers, changes, household.facts, member.id))
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
    audit.member_read(ctx, member.id, household.area_code)
    set_etag(response, member.version)
    return service.public(member, ctx.today)


@router.post("/{member_id}/reveal", operation_id="members:reveal",
             summary="Read a member unmasked, for a stated purpose (audited, rate-limited)",
             response_model=RevealedMember,
             responses=problems(ONE, BODY, LIMITED))
async def reveal_member(member_id: MemberId, body: RevealIn, ctx: Ctx, _caller: Revealers) -> RevealedMember:
    member, household = await service.load_in_scope(ctx, member_id)
    return await service.reveal(ctx, member, household, body)
