"""Indexes for incremental runs: needs that arrived since the last run, matches closed since.

Revision ID: matching_0004
Revises: matching_0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0004"
down_revision = "matching_0003"
branch_labels = None
depends_on = None

CLOSED = sa.text("closed_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_needs_created", "needs", ["created_at"])
    op.create_index("ix_matches_closed_at", "matches", ["closed_at"], postgresql_where=CLOSED, sqlite_where=CLOSED)


def downgrade() -> None:
    op.drop_index("ix_matches_closed_at", table_name="matches")
    op.drop_index("ix_needs_created", table_name="needs")
