"""One index less on matches: a partner's matches are found through its offers (the offer index
leads with offer_id), so a full run's 140,000 proposals maintain three indexes, not four.

Revision ID: matching_0006
Revises: matching_0005
Create Date: 2026-11-28
"""

from alembic import op

revision = "matching_0006"
down_revision = "matching_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_matches_org", table_name="matches")


def downgrade() -> None:
    op.create_index("ix_matches_org", "matches", ["organisation_id", "status"])
