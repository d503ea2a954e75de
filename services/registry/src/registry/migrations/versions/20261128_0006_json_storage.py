"""The scoring view and the outbox payloads stored as ``json``, large JSON compressed with lz4.

A department batch of 1,000,000 records changes ~95,000 households; each stores its scoring view
(~3.4 KB) on the household row and again in its household.changed event. As ``jsonb`` both were
parsed into PostgreSQL's binary form and compressed with pglz: measured alone, 709 us to update a
household row with its view against 86 us without, 440 us to insert an event against 35 us with
an empty payload -- most of what PostgreSQL spent on a batch. Nothing queries inside a view or a
payload (they are read back whole: the feed, the snapshot, the household read), so ``json``,
which only checks the text and stores it as sent, is enough. The fact documents stay ``jsonb``:
the feed's lookup reads one key of them (``facts -> key``); they, the members' and the views are
compressed with lz4 where the server has it (only how values are stored changes).

Revision ID: registry_0006
Revises: registry_0005
Create Date: 2026-11-28
"""

from alembic import op

revision = "registry_0006"
down_revision = "registry_0005"
branch_labels = None
depends_on = None

AS_JSON = (("outbox", "payload"), ("households", "view"))
COMPRESSED = (*AS_JSON, ("households", "facts"), ("members", "facts"))


def _store(kind: str, compression: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in AS_JSON:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind} USING {column}::{kind}")
    # A new type drops a column's compression method: set on every column after the types.
    alters = "".join(f"ALTER TABLE {t} ALTER COLUMN {c} SET COMPRESSION {compression}; " for t, c in COMPRESSED)
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        f"AND 'lz4' = ANY(enumvals)) THEN {alters}END IF; END $$"
    )


def upgrade() -> None:
    _store("json", "lz4")


def downgrade() -> None:
    _store("jsonb", "pglz")
