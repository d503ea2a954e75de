"""Writing many rows at once (``scoring.bulk``): the outbox rows scoring copies in its own binary
COPY stream are the rows the driver's per-record COPY wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from scoring_fakes import decode_binary_copy
from scoring.bulk import EVENT_TYPE, OUTBOX_COLUMNS, outbox_copy_data, streamed
from servicekit.db import driver_of

EVENTS = [
    ("01a2241b-9c60-7000-8000-08db9aa17c56", "00000000-0000-0000-0000-000000000001",
     json.dumps({"label_masked": "张*明户", "triggers": [{"source": "民政"}]}, ensure_ascii=False)),
    ("01a2241b-9c60-7000-8000-08db9aa17c57", "h-2", json.dumps({"text": "tab\there \"quoted\" back\\slash\nline"})),
    ("e-3", "a-subject-longer-than-thirty-six-characters-0123456789",
     json.dumps({"indicators": [{"code": f"i{i}", "points": -0.5} for i in range(5000)]})),  # > 64 KB
    ("e-4", "h-4", "{}"),
]


@pytest.mark.parametrize("traceparent", [None, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"])
async def test_outbox_rows_in_scorings_binary_copy_are_the_drivers(svc, traceparent):
    created = datetime(2026, 11, 28, 8, 30, 15, 123456, tzinfo=UTC)
    first = 9_000_000_001
    if not svc.db.is_postgres:
        # No COPY here: the stream is read back by the format's definition (PostgreSQL's docs,
        # "Binary Format") and must hold every row's fields, in order, blocks of 3 then 1.
        rows = decode_binary_copy(b"".join(outbox_copy_data(first, EVENTS, traceparent, created, block=3)),
                                  ["int8", "text", "text", "text", "text", "text", "timestamptz"])
        assert rows == [
            (first + i, event_id, EVENT_TYPE, subject, body, traceparent, created)
            for i, (event_id, subject, body) in enumerate(EVENTS)]
        return
    async with svc.db.sessionmaker() as session:
        raw = await driver_of(session)
        async with raw.transaction():  # the temporary tables go with it
            await raw.execute("CREATE TEMP TABLE outbox_driver (LIKE outbox) ON COMMIT DROP; "
                              "CREATE TEMP TABLE outbox_ours (LIKE outbox) ON COMMIT DROP")
            await raw.copy_records_to_table("outbox_driver", columns=OUTBOX_COLUMNS, records=[
                (first + i, event_id, EVENT_TYPE, subject, body, traceparent, created)
                for i, (event_id, subject, body) in enumerate(EVENTS)])
            rows = outbox_copy_data(first, EVENTS, traceparent, created, block=3)  # blocks of 3 rows, then 1
            await raw.copy_to_table("outbox_ours", source=streamed(rows), columns=OUTBOX_COLUMNS, format="binary")
            query = "SELECT position, event_id, type, subject, payload::text, traceparent, created_at FROM {} ORDER BY 1"
            driver, ours = await raw.fetch(query.format("outbox_driver")), await raw.fetch(query.format("outbox_ours"))
    assert [tuple(r) for r in ours] == [tuple(r) for r in driver]
    assert len(ours) == len(EVENTS) and ours[0][4] == EVENTS[0][2] and ours[0][6] == created


async def test_the_tables_a_rescore_writes_carry_only_indexes_that_queries_use(svc):
    """Each index takes every row of a city's rescore: none on the computed level (lists filter on
    the effective level) nor on the model version (no query filters history by it)."""
    from sqlalchemy import inspect

    def indexes(sync_conn) -> dict[str, set[str]]:
        found = inspect(sync_conn)
        return {t: {i["name"] for i in found.get_indexes(t) if not i.get("duplicates_constraint")}
                for t in ("assessments", "current_assessments")}

    async with svc.db.engine.connect() as conn:
        found = await conn.run_sync(indexes)
    assert found == {"assessments": set(), "current_assessments": {"ix_current_assessments_area"}}


async def test_current_rows_keep_room_on_their_pages_for_a_rescores_update(svc):
    """A rescore updates each current row in place; with half of each page free the new version
    stays on the row's page and the update is HOT (no index entry). PostgreSQL only."""
    from sqlalchemy import text

    from servicekit.migrations import VERSION_TABLE

    async with svc.db.engine.connect() as conn:
        if not svc.db.is_postgres:  # no storage parameters: the migration is recorded as applied
            version = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar_one()
            assert version >= "scoring_0009"
            return
        options = (await conn.execute(text(
            "SELECT reloptions FROM pg_class WHERE oid = 'current_assessments'::regclass"))).scalar_one()
    assert "fillfactor=50" in (options or [])

