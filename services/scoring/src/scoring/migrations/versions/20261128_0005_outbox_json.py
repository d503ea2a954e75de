"""Scoring's outbox payloads as ``json`` rather than ``jsonb`` (PostgreSQL only).

A first rescore of a city writes 230,000 assessment.updated payloads of ~2.2 KB; PostgreSQL
parsing each into its binary form (and that form being larger to compress and store) was the
largest share of the rescore. Nothing queries inside a payload: the feed reads it back whole.
``json`` only checks the text is valid JSON and stores it as sent; the feed returns the same
JSON values (objects come back with their keys in the order written, not jsonb's order).

Revision ID: scoring_0005
Revises: scoring_0004
Create Date: 2026-11-28
"""

from alembic import op

revision = "scoring_0005"
down_revision = "scoring_0004"
branch_labels = None
depends_on = None


def _payload(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE outbox ALTER COLUMN payload TYPE {kind} USING payload::{kind}")
    # A new type drops the column's compression method: lz4 again where the server has it (0004).
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        "AND 'lz4' = ANY(enumvals)) THEN ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4; END IF; END $$"
    )


def upgrade() -> None:
    _payload("json")


def downgrade() -> None:
    _payload("jsonb")
