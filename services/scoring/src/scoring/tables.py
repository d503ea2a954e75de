"""The scoring service's tables (SQLModel, table=True), kept apart from its API schemas."""

from sqlmodel import SQLModel

from servicekit import tables as kit_tables  # noqa: F401  (the kit's tables live in every schema)

metadata = SQLModel.metadata
