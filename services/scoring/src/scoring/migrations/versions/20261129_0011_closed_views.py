"""An index of the closed households' views, for the snapshot of withdrawals.

A consumer that fell behind scoring's feed (alerts) reads the withdrawals it may have missed
(``GET /internal/snapshot/withdrawn``) besides the current assessments: the closed households,
a few among a city's 230,000. The partial index holds only them, so a page reads those rows and
nothing else, and taking a city's views in costs it nothing.

Revision ID: scoring_0011
Revises: scoring_0010
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0011"
down_revision = "scoring_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    closed = sa.text("closed")
    op.create_index("ix_household_views_closed", "household_views", ["household_id"],
                    postgresql_where=closed, sqlite_where=closed)


def downgrade() -> None:
    op.drop_index("ix_household_views_closed", table_name="household_views")
