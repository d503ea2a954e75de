"""The matching service's tables (SQLModel, table=True), kept apart from its API schemas.

Each domain keeps its tables in its own folder; importing them here registers them all with
the one metadata the migrations environment reads.
"""

from sqlmodel import SQLModel

from servicekit import tables as kit_tables  # noqa: F401  (the kit's tables live in every schema)
from matching.matches.tables import Match, MatchingRun, MatchStep
from matching.needs.tables import Need
from matching.offers.tables import Offer
from matching.organisations.tables import Organisation
from matching.points.tables import PointsAccount, PointsEntry
from matching.sites.tables import Site

metadata = SQLModel.metadata

__all__ = [
    "Match", "MatchStep", "MatchingRun", "Need", "Offer", "Organisation", "PointsAccount", "PointsEntry",
    "Site", "metadata",
]
