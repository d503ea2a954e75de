"""Load a household's current assessment within the caller's jurisdiction, or 404."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path

from servicekit.auth import Caller
from servicekit.db import Session
from servicekit.errors import NotFound
from scoring.assessments import repository as repo
from scoring.assessments.tables import Assessment, CurrentAssessment
from scoring.deps import Engine, Reader
from scoring.engine.runtime import ModelRuntime
from scoring.households import repository as households
from scoring.households.tables import HouseholdView

HouseholdId = Annotated[str, Path(min_length=1, max_length=36, examples=["7d3f9c1e-2b4a-4f6e-9a21-5c8b0e6d4a13"])]
OUT_OF_SCOPE = "No assessed household with that id is in your jurisdiction."


@dataclass
class InScope:
    caller: Caller
    current: CurrentAssessment
    assessment: Assessment
    view: HouseholdView | None
    runtime: ModelRuntime


async def household_in_scope(household_id: HouseholdId, session: Session, caller: Reader, engine: Engine) -> InScope:
    current = await repo.current(session, caller, household_id)
    if current is None:
        raise NotFound(OUT_OF_SCOPE)
    assessment = await repo.assessment(session, current.assessment_id)
    runtime = await engine.runtimes.get(session, current.model_version)
    if assessment is None or runtime is None:
        raise NotFound(OUT_OF_SCOPE)
    view = await households.in_scope(session, caller, household_id)
    return InScope(caller, current, assessment, view, runtime)


HouseholdInScope = Annotated[InScope, Depends(household_in_scope)]
