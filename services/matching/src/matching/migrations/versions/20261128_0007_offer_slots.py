"""Slots held per offer and period, kept by the database (PostgreSQL): an incremental run reads
2,600 counters instead of counting 140,000 matches.

``offer_slots`` has, per (offer, period key), the matches that are live (proposed, accepted or
delivered) and those spent (accepted or delivered). Statement-level triggers on ``matches`` add up
each statement's rows before and after (transition tables), so a run's COPY of 140,000 proposals
costs one grouped upsert, and nothing that changes a match can forget to count it. SQLite (the
embedded default, small data) counts the matches instead and has no such table.

Revision ID: matching_0007
Revises: matching_0006
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0007"
down_revision = "matching_0006"
branch_labels = None
depends_on = None

COUNT = """
    INSERT INTO offer_slots AS s (offer_id, period_key, live, spent)
    SELECT offer_id, period_key,
           {sign} count(*) FILTER (WHERE status IN ('proposed', 'accepted', 'delivered')),
           {sign} count(*) FILTER (WHERE status IN ('accepted', 'delivered'))
    FROM {rows} WHERE status IN ('proposed', 'accepted', 'delivered')
    GROUP BY offer_id, period_key ORDER BY offer_id, period_key
    ON CONFLICT (offer_id, period_key) DO UPDATE SET live = s.live + excluded.live, spent = s.spent + excluded.spent;
"""

FUNCTION = f"""
CREATE FUNCTION count_offer_slots() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {COUNT.format(sign="-", rows="old_matches")}
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        {COUNT.format(sign="", rows="new_matches")}
    END IF;
    RETURN NULL;
END $$
"""

TRIGGERS = {
    "INSERT": "REFERENCING NEW TABLE AS new_matches",
    "UPDATE": "REFERENCING OLD TABLE AS old_matches NEW TABLE AS new_matches",
    "DELETE": "REFERENCING OLD TABLE AS old_matches",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "offer_slots",
        sa.Column("offer_id", sa.String(36), primary_key=True),
        sa.Column("period_key", sa.String(10), primary_key=True),
        sa.Column("live", sa.Integer, nullable=False),
        sa.Column("spent", sa.Integer, nullable=False),
    )
    op.execute(FUNCTION)
    for event, referencing in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER matches_count_slots_{event.lower()} AFTER {event} ON matches {referencing} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION count_offer_slots()")
    op.execute(COUNT.format(sign="", rows="matches"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in TRIGGERS:
        op.execute(f"DROP TRIGGER matches_count_slots_{event.lower()} ON matches")
    op.execute("DROP FUNCTION count_offer_slots()")
    op.drop_table("offer_slots")
