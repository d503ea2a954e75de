"""The alerts service's tables (SQLModel, table=True), kept apart from its API schemas: each
domain keeps its own in its tables.py; importing them here registers them with the metadata."""

from sqlmodel import SQLModel

from servicekit import tables as kit_tables  # noqa: F401  (the kit's tables live in every schema)
from alerts.alert import tables as alert_tables  # noqa: F401
from alerts.raising import tables as raising_tables  # noqa: F401
from alerts.subscription import tables as subscription_tables  # noqa: F401

metadata = SQLModel.metadata
