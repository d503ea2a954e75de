"""Cheaper engine writes: a full run writes 140,000 proposals at once.

- matches: no foreign keys to needs and offers (neither is ever deleted; on PostgreSQL each key
  check also locked the referenced row), no unique index on the relay reference (it is derived
  from the match's random id), no second index on need_id (the partial unique one on live
  matches serves the lookups); a small partial index for the exclusions the engine reads.
- needs: room on each page (fillfactor 80), so the engine's updates of unmatched_reason, which
  touch no indexed column, stay HOT (no new index entries).

Revision ID: matching_0003
Revises: matching_0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0003"
down_revision = "matching_0002"
branch_labels = None
depends_on = None

CLOSED = sa.text("status IN ('declined', 'revoked')")


def upgrade() -> None:
    op.drop_index("ix_matches_need", table_name="matches")
    op.create_index("ix_matches_closed", "matches", ["need_id", "offer_id"], postgresql_where=CLOSED,
                    sqlite_where=CLOSED)
    if op.get_bind().dialect.name == "postgresql":
        # SQLite keeps its (unnamed, cheap) constraints: dropping them means rebuilding the table.
        op.drop_constraint("matches_need_id_fkey", "matches", type_="foreignkey")
        op.drop_constraint("matches_offer_id_fkey", "matches", type_="foreignkey")
        op.drop_constraint("matches_reference_key", "matches", type_="unique")
        op.execute("ALTER TABLE needs SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE needs RESET (fillfactor)")
        op.create_unique_constraint("matches_reference_key", "matches", ["reference"])
        op.create_foreign_key("matches_offer_id_fkey", "matches", "offers", ["offer_id"], ["id"])
        op.create_foreign_key("matches_need_id_fkey", "matches", "needs", ["need_id"], ["id"])
    op.drop_index("ix_matches_closed", table_name="matches")
    op.create_index("ix_matches_need", "matches", ["need_id"])
