"""The household's type (its register status) on each assessment, as assessment.updated carries it.

Revision ID: scoring_0003
Revises: scoring_0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0003"
down_revision = "scoring_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assessments", sa.Column("household_type", sa.String(16)))


def downgrade() -> None:
    op.drop_column("assessments", "household_type")
