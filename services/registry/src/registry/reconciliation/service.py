"""The city-level reconciliation queue (跨辖区成员冲突): opening a case, deciding it."""

from __future__ import annotations

import json

from registry.columns import new_id
from registry.deps import Context
from registry.members.service import CheckedMember
from registry.reconciliation.tables import ReconciliationCase

TABLE = "reconciliation_cases"


def open_case(ctx: Context, cm: CheckedMember, existing_household_id: str, requested_household_id: str) -> ReconciliationCase:
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
