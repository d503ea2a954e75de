"""Two indexes no query uses, dropped: every rescore of a city paid for them row by row.

``ix_current_assessments_level_score`` is on the computed ``level``, but lists filter on the
``effective_level`` (a reviewed level stands in for the computed one) and order by score and
household; ``ix_assessments_model`` is on the model version, which no query filters history by.
Taking a city's 230,000 rows in, PostgreSQL spent ~0.3 s of CPU on the first and ~0.2 s on the
second (COPY of the same rows into tables with and without each).

Revision ID: scoring_0008
Revises: scoring_0007
Create Date: 2026-11-28
"""

from alembic import op

revision = "scoring_0008"
down_revision = "scoring_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_current_assessments_level_score", table_name="current_assessments")
    op.drop_index("ix_assessments_model", table_name="assessments")


def downgrade() -> None:
    op.create_index("ix_assessments_model", "assessments", ["model_version"])
    op.create_index("ix_current_assessments_level_score", "current_assessments", ["level", "score"])
