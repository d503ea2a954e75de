"""Alembic environment of the alerts service, confined to its own schema."""

from servicekit.migrations import run_env
from alerts.tables import metadata

run_env(metadata)
