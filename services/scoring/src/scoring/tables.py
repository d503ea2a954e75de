"""The scoring service's tables (SQLModel, table=True), kept apart from its API schemas."""

from sqlmodel import SQLModel

from servicekit import tables as kit_tables  # noqa: F401  (the kit's tables live in every schema)
from scoring.assessments.tables import Assessment, AssessmentReview, CurrentAssessment
from scoring.households.tables import HouseholdView
from scoring.models.tables import ModelActivation, ScoringModel, ScoringState

metadata = SQLModel.metadata

__all__ = [
    "Assessment", "AssessmentReview", "CurrentAssessment", "HouseholdView", "ModelActivation", "ScoringModel",
    "ScoringState", "metadata",
]
