"""Declarations by citizens (主动申报).

Revision ID: registry_0004
Revises: registry_0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0004"
down_revision = "registry_0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "declarations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("citizen_bidx", sa.String(64), nullable=False),
        sa.Column("resident_enc", sa.Text),
        sa.Column("resident_masked", sa.String(18), nullable=False),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("needs", JSON, nullable=False),
        sa.Column("name_enc", sa.Text),
        sa.Column("phone_enc", sa.Text),
        sa.Column("address_enc", sa.Text),
        sa.Column("description_enc", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rejection_reason", sa.String(200)),
        sa.Column("household_id", ID),
        sa.Column("reviewed_by", sa.String(128)),
        sa.Column("reviewed_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_declarations_citizen", "declarations", ["citizen_bidx", "created_at"])
    op.create_index("ix_declarations_area", "declarations", ["area_code"], postgresql_ops={"area_code": "varchar_pattern_ops"})
    op.create_index("ix_declarations_status", "declarations", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("declarations")
