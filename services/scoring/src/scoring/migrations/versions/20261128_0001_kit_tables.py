"""The kit's tables: outbox, feed sequence, idempotency keys, consumer cursors, audit log.

Revision ID: scoring_0001
Revises:
Create Date: 2026-11-28
"""

from servicekit.migrations import create_kit_tables_v1

revision = "scoring_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables_v1()


def downgrade() -> None:
    raise NotImplementedError("the first revision is not reversible: drop the schema instead")
