"""Needs by service and area: an incremental run finds the unmatched needs an offer that changed
could serve by an index range (service, area prefix), not by reading every need.

Revision ID: matching_0005
Revises: matching_0004
Create Date: 2026-11-28
"""

from alembic import op

revision = "matching_0005"
down_revision = "matching_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_needs_service_area", "needs", ["service_code", "area_code"])


def downgrade() -> None:
    op.drop_index("ix_needs_service_area", table_name="needs")
