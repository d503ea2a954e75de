"""/api/v1/portraits: a household's family portrait (家庭画像) and assistance suggestions
(帮扶建议), each resting on named facts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from servicekit.audit import AuditAction, record
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, Unauthorized, problem_responses
from scoring.assessments.deps import HouseholdInScope
from scoring.portraits.explain import portrait_out
from scoring.portraits.schemas import PortraitOut

router = APIRouter(prefix="/api/v1/portraits", tags=["portraits"], route_class=TransactionalRoute)


@router.get("/{household_id}", operation_id="portraits:get", response_model=PortraitOut,
            summary="Difficulty, causes, needs, the five types, and the policies and services suggested",
            responses=problem_responses(Unauthorized, Forbidden, NotFound))
async def get_portrait(found: HouseholdInScope, session: Session) -> Any:
    record(session, found.caller, AuditAction.read_masked, "portrait", found.current.household_id,
           ["portrait", "suggestions", "facts"], area_code=found.current.area_code)
    return portrait_out(found.runtime, found.assessment, found.current, found.view)
