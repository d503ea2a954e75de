"""Alerts, their evidence, rules, transitions and verifications; the latest assessment per
household; webhook subscriptions, secrets and the delivery outbox.

Revision ID: alerts_0002
Revises: alerts_0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0002"
down_revision = "alerts_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("household_id", sa.String(36), nullable=False),
        sa.Column("raised_by_event", sa.String(36), nullable=False, unique=True),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("label_masked", sa.String(64), nullable=False),
        sa.Column("alert_class", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("portrait", JSON, nullable=False),
        sa.Column("suggestions", JSON, nullable=False),
        sa.Column("household_type", sa.String(32)),
        sa.Column("member_ages", JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("deadline_at", TS, nullable=False),
        sa.Column("deadline_basis", sa.String(32), nullable=False),
        sa.Column("warned_at", TS),
        sa.Column("overdue_at", TS),
        sa.Column("escalated_to", sa.String(12)),
        sa.Column("accepted_by", sa.String(128)),
        sa.Column("worker_name", sa.String(64)),
        sa.Column("accepted_at", TS),
        sa.Column("verified_at", TS),
        sa.Column("disposition", sa.String(24)),
        sa.Column("disposition_detail", JSON),
        sa.Column("disposed_by", sa.String(128)),
        sa.Column("disposed_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("status IN ('raised', 'accepted', 'verifying', 'disposed')", name="ck_alerts_status"),
        sa.CheckConstraint("alert_class IN ('important', 'general')", name="ck_alerts_class"),
    )
    op.create_index(
        "uq_alerts_open_household", "alerts", ["household_id"], unique=True,
        sqlite_where=sa.text("status <> 'disposed'"), postgresql_where=sa.text("status <> 'disposed'"),
    )
    op.create_index("ix_alerts_area_deadline", "alerts", ["area_code", "deadline_at", "id"])
    op.create_index("ix_alerts_status_deadline", "alerts", ["status", "deadline_at"])
    op.create_index("ix_alerts_township", "alerts", ["township_code", "raised_at"])
    op.create_index("ix_alerts_district", "alerts", ["district_code", "raised_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Jurisdiction filters are prefix matches (LIKE '330106001%'): a pattern index serves them.
        op.execute("CREATE INDEX ix_alerts_area_prefix ON alerts (area_code varchar_pattern_ops, deadline_at, id)")

    op.create_table(
        "alert_evidence",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("previous_level", sa.Integer),
        sa.Column("score", sa.Float),
        sa.Column("cause", sa.String(32)),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("triggers", JSON, nullable=False),
        sa.Column("observed_at", TS, nullable=False),
    )
    op.create_index("ix_alert_evidence_alert", "alert_evidence", ["alert_id", "id"])
    op.create_table(
        "alert_rules",
        sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), primary_key=True),
        sa.Column("rule_code", sa.String(64), primary_key=True),
    )
    op.create_table(
        "alert_transitions",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("detail", JSON, nullable=False),
    )
    op.create_index("ix_alert_transitions_alert", "alert_transitions", ["alert_id", "id"])
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("performed_at", TS, nullable=False),
        sa.Column("findings", sa.Text, nullable=False),
        sa.Column("needs_confirmed", JSON, nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_index("ix_verifications_alert", "verifications", ["alert_id", "recorded_at"])

    op.create_table(
        "household_assessments",
        sa.Column("household_id", sa.String(36), primary_key=True),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("household_version", sa.Integer, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("scope_prefix", sa.String(12), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(200)),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.String(64)),
        sa.Column("disabled_at", TS),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_subscriptions_status", "subscriptions", ["status", "scope_prefix"])
    op.create_table(
        "subscription_secrets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subscription_id", sa.String(36), sa.ForeignKey("subscriptions.id"), nullable=False),
        sa.Column("secret_encrypted", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS),
    )
    op.create_index("ix_subscription_secrets_sub", "subscription_secrets", ["subscription_id", "created_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subscription_id", sa.String(36), sa.ForeignKey("subscriptions.id"), nullable=False),
        sa.Column("dedupe_key", sa.String(80), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("alert_id", sa.String(36)),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_attempt_at", TS),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.String(128)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS),
        sa.UniqueConstraint("subscription_id", "dedupe_key", name="uq_webhook_deliveries_once"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_sub", "webhook_deliveries", ["subscription_id", "status", "next_attempt_at"])


def downgrade() -> None:
    for table in (
        "webhook_deliveries", "subscription_secrets", "subscriptions", "household_assessments",
        "verifications", "alert_transitions", "alert_rules", "alert_evidence", "alerts",
    ):
        op.drop_table(table)
