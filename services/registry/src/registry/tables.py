"""The registry service's tables (SQLModel, table=True), kept apart from its API schemas.

Each domain keeps its tables in its own folder; importing them here registers them all with the
one metadata that the migrations environment reads.
"""

from sqlmodel import SQLModel

from servicekit import tables as kit_tables  # noqa: F401  (the kit's tables live in every schema)
from registry.declarations.tables import Declaration
from registry.facts.tables import FactRecord
from registry.feeds.tables import FeedBatch, FeedRejection
from registry.households.tables import Household, StatusChange, Survey
from registry.leads.tables import Lead
from registry.members.tables import Member
from registry.reconciliation.tables import ReconciliationCase

metadata = SQLModel.metadata

__all__ = ["Declaration", "FactRecord", "FeedBatch", "FeedRejection", "Household", "Lead", "Member", "ReconciliationCase",
           "StatusChange", "Survey", "metadata"]
