"""The living members' ages of each household, as the registry's household.changed sends them
beside the view, kept with the view so every assessment.updated can carry them (matching checks
offers' age limits against them).

Stored as the compact JSON text the events carry (``[45,43,8]``): the rescore reads it in the
same query as the prepared facts and writes it into the payloads without parsing. Rows stored
before have none (null): their assessments say ``[]`` (unknown) until the registry sends again.

Revision ID: scoring_0006
Revises: scoring_0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0006"
down_revision = "scoring_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("household_views", sa.Column("member_ages", sa.Text))


def downgrade() -> None:
    op.drop_column("household_views", "member_ages")
