"""Room on the current rows' pages for a rescore's update of each row (PostgreSQL: fillfactor 50).

A rescore updates each household's current row in place (written by PostgreSQL from the
assessment row it has just taken in). No index holds a column a rescore changes, so when the
new version fits on the row's page the update is HOT: no index entry is added and no
uniqueness is checked. A row is written at most once a rescore, so half a page suffices; the
rows a rescore leaves behind are pruned from the page when it is next updated. Pages written
before keep no room until the table is rewritten (the next rescore's updates then move rows).

Revision ID: scoring_0009
Revises: scoring_0008
Create Date: 2026-11-28
"""

from alembic import op

revision = "scoring_0009"
down_revision = "scoring_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE current_assessments SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE current_assessments RESET (fillfactor)")
