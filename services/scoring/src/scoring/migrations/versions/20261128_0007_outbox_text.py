"""Scoring's outbox payloads as ``text`` rather than ``json`` (PostgreSQL only).

A first rescore writes 230,000 assessment.updated payloads of ~2 KB; ``json`` input checks each
one's syntax, which was a third of what PostgreSQL spent taking the events in (COPY of a city's
events, backend CPU: 2.9 s as ``json``, 2.0 s as ``text``). Scoring writes the JSON itself and
nothing reads inside a payload; the kit's feed parses a payload it gets back as text
(``servicekit.events.outbox.payload_of``), so readers of the feed see the same JSON values.

Revision ID: scoring_0007
Revises: scoring_0006
Create Date: 2026-11-28
"""

from alembic import op

revision = "scoring_0007"
down_revision = "scoring_0006"
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
    _payload("text")


def downgrade() -> None:
    _payload("json")
