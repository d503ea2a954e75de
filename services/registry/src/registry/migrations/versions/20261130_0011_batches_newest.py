"""An index for every department's deliveries, newest first.

An officer who names no department lists the deliveries of all of them, newest first; the
department's own index (department, received_at) cannot give that order, and single records
(``POST /feeds/records``) each add a row, so the table grows by thousands a day.

Revision ID: registry_0011
Revises: registry_0010
Create Date: 2026-11-30
"""

from alembic import op

revision = "registry_0011"
down_revision = "registry_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_feed_batches_received", "feed_batches", ["received_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_feed_batches_received", "feed_batches")
