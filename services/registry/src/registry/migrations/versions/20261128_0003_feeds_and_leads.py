"""Department feeds (batches, rejected lines) and leads for proactive discovery.

Revision ID: registry_0003
Revises: registry_0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0003"
down_revision = "registry_0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "feed_batches",
        sa.Column("id", ID, primary_key=True),
        sa.Column("department", sa.String(48), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        *[sa.Column(name, sa.Integer, nullable=False)
          for name in ("lines", "applied", "unchanged", "rejected", "leads", "households_changed")],
    )
    op.create_index("ix_feed_batches_department", "feed_batches", ["department", "received_at"])
    op.create_table(
        "feed_rejections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("batch_id", ID, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("record_id", sa.String(64)),
        sa.Column("reason_code", sa.String(48), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_feed_rejections_batch", "feed_rejections", ["batch_id", "line"])
    op.create_table(
        "leads",
        sa.Column("id", ID, primary_key=True),
        sa.Column("department", sa.String(48), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("item", sa.String(48), nullable=False),
        sa.Column("resident_bidx", sa.String(64), nullable=False),
        sa.Column("resident_enc", sa.Text),
        sa.Column("resident_masked", sa.String(18), nullable=False),
        sa.Column("value", JSON),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("area_code", sa.String(12)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("household_id", ID),
        sa.Column("resolution", sa.String(200)),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("resolved_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ux_leads_record", "leads", ["department", "record_id"], unique=True)
    op.create_index("ix_leads_status", "leads", ["status", "received_at"])
    op.create_index("ix_leads_resident", "leads", ["resident_bidx"])
    op.create_index("ix_leads_area", "leads", ["area_code"], postgresql_ops={"area_code": "varchar_pattern_ops"})


def downgrade() -> None:
    for table in ("leads", "feed_rejections", "feed_batches"):
        op.drop_table(table)
