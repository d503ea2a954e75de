"""Large JSON values compressed with lz4 instead of pglz, where the server has it.

A whole city's rescore writes 230,000 assessment.updated payloads of ~2 KB into the outbox, and
catching up with the registry as many views: with pglz, compressing them was a quarter of the
time PostgreSQL spent taking the events in (measured 33-41 s against 26-28 s for the same COPY).
Only how values are stored changes; a server built without lz4 keeps pglz.

Revision ID: scoring_0004
Revises: scoring_0003
Create Date: 2026-11-28
"""

from alembic import op

revision = "scoring_0004"
down_revision = "scoring_0003"
branch_labels = None
depends_on = None

COLUMNS = (("outbox", "payload"), ("household_views", "view"), ("household_views", "features"))


def _set(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    alters = "".join(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}; " for table, column in COLUMNS)
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        f"AND 'lz4' = ANY(enumvals)) THEN {alters}END IF; END $$"
    )


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
