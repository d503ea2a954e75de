"""Closing a household releases its members: their blind index moves to ``released_bidx``.

A person belongs to at most one *open* household. Before this, a person of a closed household
could never join another one (the unique blind index counted closed households too), and
department records about them went on updating the closed household. Now closing moves each
member's blind index out of ``resident_bidx`` (nullable from here on) into ``released_bidx``:
lookups by ID number, the feeds and the uniqueness check see only open households, and a
citizen whose household was closed still finds it through ``released_bidx`` (a partial index:
only released rows). Households closed before this revision are released here.

Revision ID: registry_0010
Revises: registry_0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0010"
down_revision = "registry_0009"
branch_labels = None
depends_on = None

RELEASED = sa.text("released_bidx IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.alter_column("resident_bidx", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("released_bidx", sa.String(64), nullable=True))
    op.create_index("ix_members_released", "members", ["released_bidx"], postgresql_where=RELEASED,
                    sqlite_where=RELEASED)
    op.execute("UPDATE members SET released_bidx = resident_bidx, resident_bidx = NULL "
               "WHERE household_id IN (SELECT id FROM households WHERE closed_on IS NOT NULL)")


def downgrade() -> None:
    # A released person who has joined another household since cannot take the index back, so
    # resident_bidx stays nullable.
    op.execute("UPDATE members SET resident_bidx = released_bidx, released_bidx = NULL "
               "WHERE released_bidx IS NOT NULL AND released_bidx NOT IN "
               "(SELECT resident_bidx FROM members WHERE resident_bidx IS NOT NULL)")
    op.drop_index("ix_members_released", "members")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("released_bidx")
