"""The consortium: sites, organisations, offers, needs, matches and their steps, runs, points.

Revision ID: matching_0002
Revises: matching_0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

# The kit's own helper for append-only tables (the audit log uses it too).
from servicekit.migrations import _make_append_only

revision = "matching_0002"
down_revision = "matching_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
LIVE = sa.text("status IN ('proposed', 'accepted', 'delivered')")


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("latitude", sa.Float, nullable=False),
        sa.Column("longitude", sa.Float, nullable=False),
        sa.Column("hours", JSON, nullable=False),
        sa.Column("co_located", JSON, nullable=False),
        sa.Column("serves", JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_sites_area", "sites", ["area_code"])
    op.create_index("ix_sites_level", "sites", ["level"])

    op.create_table(
        "organisations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("credit_code", sa.String(18)),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("hotline", sa.String(20)),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("applied_by", sa.String(128), nullable=False),
        sa.Column("applied_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", TS),
        sa.Column("decision_reason", sa.String(500)),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_organisations_status", "organisations", ["status"])
    op.create_index("ix_organisations_area", "organisations", ["area_code"])

    op.create_table(
        "offers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organisation_id", sa.String(64), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("services", JSON, nullable=False),
        sa.Column("areas", JSON, nullable=False),
        sa.Column("site_code", sa.String(32), sa.ForeignKey("sites.code"), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("min_age", sa.Integer),
        sa.Column("max_age", sa.Integer),
        sa.Column("need_types", JSON, nullable=False),
        sa.Column("household_types", JSON, nullable=False),
        sa.Column("contact_route", sa.String(16), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("external_id", sa.String(128)),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("published_at", TS),
        sa.UniqueConstraint("organisation_id", "external_id", name="uq_offers_external"),
        sa.CheckConstraint("capacity > 0", name="ck_offers_capacity"),
    )
    op.create_index("ix_offers_org", "offers", ["organisation_id"])
    op.create_index("ix_offers_status", "offers", ["status"])

    op.create_table(
        "needs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("service_code", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(36)),
        sa.Column("household_id", sa.String(36)),
        sa.Column("requester_digest", sa.String(64)),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("label_masked", sa.String(32)),
        sa.Column("level", sa.Integer),
        sa.Column("urgency", sa.String(8), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("household_type", sa.String(16)),
        sa.Column("member_ages", JSON, nullable=False),
        sa.Column("need_types", JSON, nullable=False),
        sa.Column("wish", sa.String(200)),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("unmatched_reason", sa.String(24)),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("alert_id", "service_code", name="uq_needs_referral"),
    )
    op.create_index("ix_needs_status", "needs", ["status"])
    op.create_index("ix_needs_area", "needs", ["area_code"])
    op.create_index("ix_needs_requester", "needs", ["requester_digest"])

    op.create_table(
        "matches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("need_id", sa.String(36), sa.ForeignKey("needs.id"), nullable=False),
        sa.Column("offer_id", sa.String(36), sa.ForeignKey("offers.id"), nullable=False),
        sa.Column("organisation_id", sa.String(64), nullable=False),
        sa.Column("site_code", sa.String(32), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("period_key", sa.String(10), nullable=False),
        sa.Column("distance_km", sa.Float, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(36)),
        sa.Column("reference", sa.String(16), nullable=False, unique=True),
        sa.Column("proposed_at", TS, nullable=False),
        sa.Column("accepted_at", TS),
        sa.Column("closed_at", TS),
        sa.Column("close_reason", sa.String(24)),
        sa.Column("close_note", sa.String(500)),
        sa.Column("delivered_on", sa.Date),
        sa.Column("delivered_at", TS),
        sa.Column("delivery_notes", sa.String(500)),
        sa.Column("feedback_score", sa.Integer),
        sa.Column("feedback_comment", sa.String(500)),
        sa.Column("feedback_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("feedback_score IS NULL OR feedback_score BETWEEN 1 AND 5", name="ck_matches_feedback"),
    )
    op.create_index("ix_matches_offer_period", "matches", ["offer_id", "period_key", "status"])
    op.create_index("ix_matches_org", "matches", ["organisation_id", "status"])
    op.create_index("ix_matches_need", "matches", ["need_id"])
    op.create_index("uq_matches_live_need", "matches", ["need_id"], unique=True,
                    postgresql_where=LIVE, sqlite_where=LIVE)

    op.create_table(
        "match_steps",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("match_id", sa.String(36), sa.ForeignKey("matches.id"), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("detail", JSON, nullable=False),
    )
    op.create_index("ix_match_steps_match", "match_steps", ["match_id", "id"])
    _make_append_only("match_steps")

    op.create_table(
        "matching_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("mode", sa.String(12), nullable=False),
        sa.Column("triggered_by", sa.String(128), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("needs_considered", sa.Integer, nullable=False),
        sa.Column("offers_considered", sa.Integer, nullable=False),
        sa.Column("proposed", sa.Integer, nullable=False),
        sa.Column("kept", sa.Integer, nullable=False),
        sa.Column("withdrawn", sa.Integer, nullable=False),
        sa.Column("unmatched", JSON, nullable=False),
        sa.Column("objective", BIGID, nullable=False),
        sa.Column("solver_seconds", sa.Float, nullable=False),
        sa.Column("total_seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_matching_runs_started", "matching_runs", ["started_at"])

    op.create_table(
        "points_accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("household_id", sa.String(36), nullable=False),
        sa.Column("holder_digest", sa.String(64)),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("level", sa.Integer),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("balance", sa.Integer, nullable=False),
        sa.Column("enrolled_by", sa.String(128), nullable=False),
        sa.Column("enrolled_at", TS, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("household_id", name="uq_points_accounts_household"),
        sa.UniqueConstraint("holder_digest", name="uq_points_accounts_holder"),
        sa.CheckConstraint("balance >= 0", name="ck_points_accounts_balance"),
    )
    op.create_index("ix_points_accounts_area", "points_accounts", ["area_code"])

    op.create_table(
        "points_entries",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(36), sa.ForeignKey("points_accounts.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.Integer, nullable=False),
        sa.Column("balance_after", sa.Integer, nullable=False),
        sa.Column("rule_code", sa.String(64)),
        sa.Column("period_key", sa.String(10)),
        sa.Column("site_code", sa.String(32)),
        sa.Column("items", JSON),
        sa.Column("note", sa.String(200)),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("account_id", "rule_code", "period_key", name="uq_points_entries_period"),
        sa.CheckConstraint("balance_after >= 0", name="ck_points_entries_balance"),
    )
    op.create_index("ix_points_entries_account", "points_entries", ["account_id", "id"])
    op.create_index("ix_points_entries_at", "points_entries", ["created_at"])
    _make_append_only("points_entries")


def downgrade() -> None:
    for table in ("points_entries", "points_accounts", "matching_runs", "match_steps", "matches", "needs",
                  "offers", "organisations", "sites"):
        op.drop_table(table)
