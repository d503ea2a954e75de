"""kit tables and notes"""

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import create_kit_tables_v1

revision = "kitapp_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables_v1()
    op.create_table(
        "notes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notes")
