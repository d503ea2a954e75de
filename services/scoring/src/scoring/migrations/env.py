"""Alembic environment of the scoring service, confined to its own schema."""

from servicekit.migrations import run_env
from scoring.tables import metadata

run_env(metadata)
