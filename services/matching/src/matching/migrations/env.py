"""Alembic environment of the matching service, confined to its own schema."""

from servicekit.migrations import run_env
from matching.tables import metadata

run_env(metadata)
