"""Scoring's own tables: household views, assessments (history, current, reviews), models,
the active-model row and activations.

Revision ID: scoring_0002
Revises: scoring_0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0002"
down_revision = "scoring_0001"
branch_labels = None
depends_on = None

ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "household_views",
        sa.Column("household_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("label_masked", sa.String(64), nullable=False),
        sa.Column("synthetic", sa.Boolean, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("view", sa.JSON, nullable=False),
        sa.Column("missing", sa.JSON, nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("features", sa.LargeBinary, nullable=False),
        sa.Column("layout", sa.String(16), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    op.create_index("ix_household_views_area", "household_views", ["area_code"])

    op.create_table(
        "assessments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("household_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("household_version", sa.BigInteger, nullable=False),
        sa.Column("model_version", sa.String(40), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("effective_level", sa.SmallInteger, nullable=False),
        sa.Column("previous_id", sa.String(36)),
        sa.Column("previous_score", sa.Float),
        sa.Column("previous_level", sa.SmallInteger),
        sa.Column("dimensions", sa.Text, nullable=False),
        sa.Column("fired", sa.Text, nullable=False),
        sa.Column("difficulty", sa.String(32), nullable=False),
        sa.Column("causes", sa.Text, nullable=False),
        sa.Column("needs", sa.Text, nullable=False),
        sa.Column("five_types", sa.Text, nullable=False),
        sa.Column("eligible", sa.Text, nullable=False),
        sa.Column("receiving", sa.Text, nullable=False),
        sa.Column("services", sa.Text, nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(24), nullable=False),
        sa.Column("triggers", sa.Text, nullable=False),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("label_masked", sa.String(64), nullable=False),
        sa.Column("assessed_at", ts, nullable=False),
        sa.UniqueConstraint("household_id", "number", name="uq_assessments_household_number"),
    )
    op.create_index("ix_assessments_model", "assessments", ["model_version"])

    op.create_table(
        "current_assessments",
        sa.Column("household_id", sa.String(36), primary_key=True),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("household_version", sa.BigInteger, nullable=False),
        sa.Column("model_version", sa.String(40), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("effective_level", sa.SmallInteger, nullable=False),
        sa.Column("difficulty", sa.String(32), nullable=False),
        sa.Column("five_types", sa.String(128), nullable=False),
        sa.Column("needs", sa.String(256), nullable=False),
        sa.Column("unclaimed_policies", sa.String(512), nullable=False),
        sa.Column("area_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(12), nullable=False),
        sa.Column("district_code", sa.String(12), nullable=False),
        sa.Column("label_masked", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("assessed_at", ts, nullable=False),
        sa.Column("etag", sa.Integer, nullable=False),
        sa.Column("reviewed_level", sa.SmallInteger),
        sa.Column("review_id", sa.String(36)),
        sa.Column("review_basis_level", sa.SmallInteger),
    )
    op.create_index("ix_current_assessments_area", "current_assessments", ["area_code"])
    op.create_index("ix_current_assessments_level_score", "current_assessments", ["level", "score"])

    op.create_table(
        "assessment_reviews",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("household_id", sa.String(36), nullable=False),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("computed_level", sa.SmallInteger, nullable=False),
        sa.Column("reviewed_level", sa.SmallInteger, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("reviewer_role", sa.String(32), nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_index("ix_assessment_reviews_household", "assessment_reviews", ["household_id", "created_at"])

    op.create_table(
        "scoring_models",
        sa.Column("version", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title_zh", sa.String(200), nullable=False),
        sa.Column("title_en", sa.String(300), nullable=False),
        sa.Column("notes", sa.String(2000), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("document_hash", sa.String(64), nullable=False),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("activated_at", ts),
        sa.Column("retired_at", ts),
    )
    op.create_table(
        "scoring_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("active_version", sa.String(40)),
        sa.Column("updated_at", ts, nullable=False),
    )
    op.execute("INSERT INTO scoring_state (id, active_version, updated_at) VALUES (1, NULL, CURRENT_TIMESTAMP)")
    op.create_table(
        "model_activations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("model_version", sa.String(40), nullable=False),
        sa.Column("previous_version", sa.String(40)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("finished_at", ts),
        sa.Column("households", sa.Integer, nullable=False),
        sa.Column("assessments_changed", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("levels_before", sa.JSON, nullable=False),
        sa.Column("levels_after", sa.JSON, nullable=False),
        sa.Column("error", sa.String(500)),
    )
    # At most one activation runs: a second insert with status 'running' violates this index.
    op.create_index("uq_model_activations_running", "model_activations", ["status"], unique=True,
                    postgresql_where=sa.text("status = 'running'"), sqlite_where=sa.text("status = 'running'"))
    op.create_index("ix_model_activations_started", "model_activations", ["started_at"])


def downgrade() -> None:
    for table in ("model_activations", "scoring_state", "scoring_models", "assessment_reviews",
                  "current_assessments", "assessments", "household_views"):
        op.drop_table(table)
