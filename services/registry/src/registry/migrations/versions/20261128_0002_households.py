"""Households, members, status history, surveys, fact history, reconciliation queue.

Revision ID: registry_0002
Revises: registry_0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "households",
        sa.Column("id", ID, primary_key=True),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("register_status", sa.String(16), nullable=False),
        sa.Column("off_register_source", sa.String(32)),
        sa.Column("status_since", sa.Date, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("rural_hukou", sa.Boolean, nullable=False),
        sa.Column("address_enc", sa.Text),
        sa.Column("location_enc", sa.Text),
        sa.Column("label_masked", sa.String(40), nullable=False),
        sa.Column("facts", JSON, nullable=False),
        sa.Column("view", JSON),
        sa.Column("missing", JSON),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("synthetic", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_households_area", "households", ["area_code"], postgresql_ops={"area_code": "varchar_pattern_ops"})
    op.create_index("ix_households_status", "households", ["register_status"])
    op.create_index("ix_households_updated", "households", ["updated_at", "id"])

    op.create_table(
        "members",
        sa.Column("id", ID, primary_key=True),
        sa.Column("household_id", ID, sa.ForeignKey("households.id"), nullable=False),
        sa.Column("resident_bidx", sa.String(64), nullable=False),
        sa.Column("resident_enc", sa.Text),
        sa.Column("resident_masked", sa.String(18), nullable=False),
        sa.Column("name_enc", sa.Text),
        sa.Column("name_masked", sa.String(40)),
        sa.Column("phone_enc", sa.Text),
        sa.Column("phone_masked", sa.String(16)),
        sa.Column("sex", sa.String(8), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("relation", sa.String(16), nullable=False),
        sa.Column("facts", JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("synthetic", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    # A person belongs to at most one household: the database holds the line.
    op.create_index("ux_members_resident", "members", ["resident_bidx"], unique=True)
    op.create_index("ix_members_household", "members", ["household_id"])

    op.create_table(
        "status_changes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("household_id", ID, nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("from_source", sa.String(32)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("to_source", sa.String(32)),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_status_changes_household", "status_changes", ["household_id", "at"])

    op.create_table(
        "surveys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("household_id", ID, nullable=False),
        sa.Column("visited_on", sa.Date, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("concern", sa.Boolean, nullable=False),
        sa.Column("findings", JSON, nullable=False),
        sa.Column("notes_enc", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_surveys_household", "surveys", ["household_id", "visited_on"])

    op.create_table(
        "fact_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("household_id", ID, nullable=False),
        sa.Column("member_id", ID),
        sa.Column("fact", sa.String(48), nullable=False),
        sa.Column("value", JSON),
        sa.Column("source", sa.String(48), nullable=False),
        sa.Column("record_id", sa.String(64)),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ux_fact_history_record", "fact_history", ["source", "record_id", "fact"], unique=True)
    op.create_index("ix_fact_history_household", "fact_history", ["household_id", "received_at"])

    op.create_table(
        "reconciliation_cases",
        sa.Column("id", ID, primary_key=True),
        sa.Column("resident_bidx", sa.String(64), nullable=False),
        sa.Column("resident_masked", sa.String(18), nullable=False),
        sa.Column("existing_household_id", ID, nullable=False),
        sa.Column("requested_household_id", ID, nullable=False),
        sa.Column("request_enc", sa.Text),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_role", sa.String(32), nullable=False),
        sa.Column("requested_area", sa.String(12)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.String(200)),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("resolved_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_reconciliation_status", "reconciliation_cases", ["status", "created_at"])


def downgrade() -> None:
    for table in ("reconciliation_cases", "fact_history", "surveys", "status_changes", "members", "households"):
        op.drop_table(table)
