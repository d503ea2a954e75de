"""Alembic environment of the registry service, confined to its own schema."""

from servicekit.migrations import run_env
from registry.tables import metadata

run_env(metadata)
