"""The city-level reconciliation queue (跨辖区成员冲突): opening a case, deciding it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from servicekit.crypto import mask_name
from servicekit.errors import Conflict

from registry.audit import service as audit
from registry.columns import new_id
from registry.deps import Context
from registry.households import repository as households_repo
from registry.households.changes import mark, publish_changes
from registry.members import repository as members_repo
from registry.reconciliation.schemas import CasePublic, Decision, ResolveIn
from registry.reconciliation.tables import ReconciliationCase

if TYPE_CHECKING:
    from registry.members.service import CheckedMember

TABLE = "reconciliation_cases"


def open_case(ctx: Context, cm: "CheckedMember", existing_household_id: str, requested_household_id: str) -> ReconciliationCase:
    """Queue a member who already belongs to a household the requester cannot see."""
    case_id = new_id()
    request = cm.body.model_dump(mode="json")
    case = ReconciliationCase(
        id=case_id, resident_bidx=cm.index, resident_masked=cm.resident.masked,
        existing_household_id=existing_household_id, requested_household_id=requested_household_id,
        request_enc=ctx.vault.seal(json.dumps(request, ensure_ascii=False), table=TABLE, column="request", row_id=case_id),
        requested_by=ctx.actor, requested_role=ctx.caller.role.value, requested_area=ctx.caller.area,
        status="open", version=1, created_at=ctx.now,
    )
    ctx.session.add(case)
    return case


def public(case: ReconciliationCase) -> CasePublic:
    return CasePublic(
        id=case.id, resident_id_masked=case.resident_masked, existing_household_id=case.existing_household_id,
        requested_household_id=case.requested_household_id, requested_by=case.requested_by,
        requested_role=case.requested_role, requested_area=case.requested_area, status=case.status, note=case.note,
        resolved_by=case.resolved_by, resolved_at=case.resolved_at, version=case.version, created_at=case.created_at,
    )


async def resolve(ctx: Context, case: ReconciliationCase, body: ResolveIn) -> None:
    """Decide a case: move the person to the requesting household, or keep them where they are."""
    if case.status != "open":
        raise Conflict("This case has already been decided.")
    case.status = "moved" if body.decision is Decision.move else "kept"
    case.note, case.resolved_by, case.resolved_at = body.note, ctx.actor, ctx.now
    case.version += 1
    if body.decision is Decision.keep:
        return
    member = await members_repo.by_index(ctx.session, case.resident_bidx, for_update=True)
    # The person first, then both households in id order, as every writer locks them: two moves
    # in opposite directions decided at once wait for each other instead of deadlocking.
    homes = {case.requested_household_id} | ({member.household_id} if member is not None else set())
    locked = {hid: await households_repo.get(ctx.session, hid, for_update=True) for hid in sorted(homes)}
    target = locked[case.requested_household_id]
    if target is None or target.closed_on is not None:
        raise Conflict("The requesting household no longer exists or has been closed; decide 'keep'.")
    raw = ctx.vault.open(case.request_enc, table=TABLE, column="request", row_id=case.id)
    request = json.loads(raw or "{}")
    if member is None:
        # The household they belonged to was closed meanwhile (its members released): nothing
        # to move, they join the requesting household as the request asked.
        from registry.households.service import add_member  # households.service opens cases
        from registry.members.schemas import MemberCreate

        added, _ = await add_member(ctx, target, MemberCreate.model_validate(request))
        if added is None:  # placed in yet another household since
            raise Conflict("The person now belongs to another household; decide 'keep'.")
        return
    source = locked[member.household_id]
    # The member keeps its id (its sealed fields are bound to it) and takes the requested details.
    member.household_id = target.id
    member.relation = request.get("relation", member.relation)
    if request.get("name"):
        member.name_enc = ctx.vault.seal(request["name"], table="members", column="name", row_id=member.id)
        member.name_masked = mask_name(request["name"])
    member.version += 1
    member.updated_at = ctx.now
    audit.written(ctx, "member", member.id, ["household_id", "relation", "name"], target.area_code)
    for household in (source, target):
        if household is not None:
            mark(ctx.session, household, "members_changed")
    await publish_changes(ctx.session, ctx.profile, ctx.today, ctx.now)
