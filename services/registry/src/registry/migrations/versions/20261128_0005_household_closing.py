"""Closing a household (注销): the date and the reason, kept on the household.

Revision ID: registry_0005
Revises: registry_0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0005"
down_revision = "registry_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("households", sa.Column("closed_on", sa.Date, nullable=True))
    op.add_column("households", sa.Column("closed_reason", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("households", "closed_reason")
    op.drop_column("households", "closed_on")
