"""Members found by a 64-bit key of their blind index: an expression index on its first 16 hex
digits as a ``bigint``.

A department batch looks every record's person up by blind index (1,000,000 probes for a batch
of as many records). On the 64-character text index each probe spent most of its time comparing
text keys down the B-tree, and the index (51 MB for the 427,000 people of the bench's city) did
not stay in PostgreSQL's buffers; the bigint index is a fifth of that size and compares machine
words. The feed's lookup probes it and checks the full blind index on the row (a collision of 64
bits is not expected, and would only cost a row checked and dropped). The unique index on the
blind index stays: it is what makes a person unique.

Revision ID: registry_0008
Revises: registry_0007
Create Date: 2026-11-28
"""

from alembic import op

revision = "registry_0008"
down_revision = "registry_0007"
branch_labels = None
depends_on = None

# Spelled the same in registry.feeds.repository (the planner matches the expression).
RESIDENT_KEY = "(('x' || left(resident_bidx, 16))::bit(64)::bigint)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_members_resident_key ON members ({RESIDENT_KEY})")
        # Statistics for the expression, so plans know the key is (nearly) unique.
        op.execute("ANALYZE members")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_members_resident_key")
