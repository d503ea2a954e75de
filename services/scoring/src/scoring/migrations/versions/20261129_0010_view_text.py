"""Scoring's copy of the household views as ``text`` rather than ``json`` (PostgreSQL only).

Catching up with a registry stores 230,000 views of ~2.6 KB; ``json`` input checks each one's
syntax, which PostgreSQL spent more on than on storing the text itself (COPY of 10,000 such
values: 325-380 ms as ``json``, 187-189 ms as ``text``). Scoring writes the canonical JSON
itself and reads it back through ``households.tables.JSONText``; nothing reads inside a view in
SQL. SQLite keeps the column as it is: it stores JSON as text already.

Revision ID: scoring_0010
Revises: scoring_0009
Create Date: 2026-11-29
"""

from alembic import op

revision = "scoring_0010"
down_revision = "scoring_0009"
branch_labels = None
depends_on = None


def _view(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE household_views ALTER COLUMN view TYPE {kind} USING view::{kind}")
    # A new type drops the column's compression method: lz4 again where the server has it (0004).
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        "AND 'lz4' = ANY(enumvals)) THEN ALTER TABLE household_views ALTER COLUMN view SET COMPRESSION lz4; "
        "END IF; END $$"
    )


def upgrade() -> None:
    _view("text")


def downgrade() -> None:
    _view("json")
