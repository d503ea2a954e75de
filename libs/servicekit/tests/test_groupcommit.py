"""Group commit (servicekit.groupcommit), with audit records as the rows it writes: a write
returns only once its row is committed, concurrent rows share a statement, a row the table refuses fails only its own caller (the rest of its group is written),
a statement that fails otherwise fails its whole group and writes none of its rows, a
cancelled caller's row is still written, closing writes what is queued; a statement that reads
answers each caller with its own row, at most its concurrency at once. On PostgreSQL; on SQLite
group statements are refused (its hot paths use a session there)."""

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import text

from servicekit.audit import RECORD_COLUMNS, AuditAction, entry
from servicekit.auth import Caller, Role
from servicekit.db import Database
from servicekit.groupcommit import GroupStatement, GroupWriteFailed

# Audit records of the group's rows, as a service writing records in a group would.
GROUP_INSERT = (f"INSERT INTO audit_log ({', '.join(RECORD_COLUMNS)}) SELECT {', '.join(RECORD_COLUMNS)} "
                "FROM json_populate_recordset(NULL::audit_log, $1::json)")
READER = Caller(subject="group-reader", role=Role.town_worker, area="330106001000")


def record(resource_id: str) -> dict:
    return entry(READER, AuditAction.read_masked, "household", resource_id, ("members", "address"), None, "330106001001")


async def written(db: Database, prefix: str) -> list[tuple]:
    async with db.reading() as connection:
        result = await connection.execute(
            text("SELECT resource_id, actor, area_code, fields FROM audit_log WHERE resource_id LIKE :p "
                 "ORDER BY resource_id"), {"p": prefix + "%"})
        return [tuple(r) for r in result]


async def test_sqlite_has_no_group_statements(kit):
    if kit.db.is_postgres:
        return
    with pytest.raises(RuntimeError):
        kit.db.group_statement(GROUP_INSERT, name="audit log")


async def test_concurrent_records_share_commits_and_each_is_committed_when_its_write_returns(kit):
    db = kit.db
    if not db.is_postgres:
        return
    prefix = f"gc-{uuid.uuid4().hex[:8]}-"
    seen_at_return: list[bool] = []

    async def read_and_audit(i: int) -> None:
        rid = f"{prefix}{i:03d}"
        assert await db.group_statement(GROUP_INSERT, name="audit log").one(record(rid)) is None
        # Another connection sees it at once: committed, not merely sent.
        async with db.reading() as connection:
            found = await connection.execute(text("SELECT count(*) FROM audit_log WHERE resource_id = :r"), {"r": rid})
            seen_at_return.append(found.scalar_one() == 1)

    group = db.group_statement(GROUP_INSERT, name="audit log")  # the one read_and_audit uses
    before = group.groups
    await asyncio.gather(*(read_and_audit(i) for i in range(60)))
    rows = await written(db, prefix)
    assert [r[0] for r in rows] == [f"{prefix}{i:03d}" for i in range(60)]  # each once
    assert {(r[1], r[2]) for r in rows} == {("group-reader", "330106001001")}
    assert all(r[3] == ["address", "members"] for r in rows)
    assert seen_at_return == [True] * 60
    assert 1 <= group.groups - before < 60  # they went in groups, not a commit each


async def test_a_refused_row_fails_only_its_own_caller_and_the_rest_of_its_group_is_written(kit):
    db = kit.db
    if not db.is_postgres:
        return
    prefix = f"gf-{uuid.uuid4().hex[:8]}-"
    group = GroupStatement(db.driver_connection, GROUP_INSERT, name="test group")
    rows = [record(f"{prefix}a{i}") for i in range(3)]
    rows.insert(1, record(f"{prefix}a-bad") | {"actor": None})  # NOT NULL: the row is refused
    rows.append(record(f"{prefix}a-long") | {"request_id": "r" * 65})  # varchar(64): refused too
    outcomes = await asyncio.gather(*(group.one(r) for r in rows), return_exceptions=True)
    assert outcomes[0] is None and outcomes[2:4] == [None, None], outcomes
    assert isinstance(outcomes[1], GroupWriteFailed) and "NotNullViolation" in str(outcomes[1])
    assert isinstance(outcomes[4], GroupWriteFailed) and "StringDataRightTruncation" in str(outcomes[4])
    assert all(prefix not in str(o) for o in outcomes)  # no values in it
    assert [r[0] for r in await written(db, prefix)] == [f"{prefix}a{i}" for i in range(3)]
    # The next group is tried afresh.
    await asyncio.gather(*(group.one(record(f"{prefix}b{i}")) for i in range(3)))
    assert [r[0] for r in await written(db, prefix)] == [f"{prefix}a{i}" for i in range(3)] + [
        f"{prefix}b{i}" for i in range(3)]
    await group.close()
    with pytest.raises(GroupWriteFailed):
        await group.one(record(f"{prefix}late"))


async def test_a_statement_that_fails_for_the_server_fails_its_whole_group_at_once(kit):
    db = kit.db
    if not db.is_postgres:
        return
    prefix = f"gs-{uuid.uuid4().hex[:8]}-"
    tries = []

    def connect():
        tries.append(1)
        return db.driver_connection()

    # A statement the server cannot run (no such table): not a row's fault, not tried row by row.
    group = GroupStatement(connect, GROUP_INSERT.replace("INSERT INTO audit_log", "INSERT INTO no_such_log"),
                        name="test group")
    outcomes = await asyncio.gather(*(group.one(record(f"{prefix}{i}")) for i in range(4)), return_exceptions=True)
    assert all(isinstance(o, GroupWriteFailed) and "UndefinedTable" in str(o) for o in outcomes), outcomes
    assert len(tries) == 1
    assert await written(db, prefix) == []


async def test_a_cancelled_caller_s_row_is_still_written_and_close_waits_for_the_queue(kit):
    db = kit.db
    if not db.is_postgres:
        return
    prefix = f"gx-{uuid.uuid4().hex[:8]}-"
    group = GroupStatement(db.driver_connection, GROUP_INSERT, name="test group")
    waiting = asyncio.create_task(group.one(record(f"{prefix}cancelled")))
    others = [asyncio.create_task(group.one(record(f"{prefix}{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    waiting.cancel()
    await group.close()  # returns once everything queued is written
    assert [r[0] for r in await written(db, prefix)] == [f"{prefix}{i}" for i in range(5)] + [f"{prefix}cancelled"]
    assert waiting.cancelled()
    await asyncio.gather(*others)


# A statement that reads: each item's answer (none for "skip"), a little slow so that groups queue.
_ANSWER = ("SELECT e.ordinal, upper(e.item->>'x'), pg_sleep(0.03)::text FROM json_array_elements($1::json) "
           "WITH ORDINALITY AS e(item, ordinal) WHERE e.item->>'x' <> 'skip'")


async def test_a_statement_that_reads_gives_each_caller_its_own_row_and_runs_at_most_its_concurrency(kit):
    db = kit.db
    if not db.is_postgres:
        return
    running, most = 0, 0

    @contextlib.asynccontextmanager
    async def connect():
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            async with db.driver_connection() as connection:
                yield connection
        finally:
            running -= 1

    group = GroupStatement(connect, _ANSWER, concurrency=2, name="test reads")

    async def ask(i: int) -> object:
        await asyncio.sleep(i * 0.005)  # arriving over time, while statements run
        row = await group.one({"x": "skip" if i % 5 == 0 else f"item-{i}"})
        return None if row is None else row[1]

    answers = await asyncio.gather(*(ask(i) for i in range(30)))
    assert answers == [None if i % 5 == 0 else f"ITEM-{i}" for i in range(30)]
    assert most == 2  # a second statement while the first ran, never a third
    assert 2 <= group.groups < 30  # in groups
    await group.close()
    with pytest.raises(GroupWriteFailed):
        await group.one({"x": "late"})


async def test_a_connection_lost_under_a_group_is_a_503_for_each_of_its_callers(kit):
    # The callers get GroupWriteFailed; what they answer is decided by its cause, as for a
    # statement of their own: a lost connection is a 503 to retry, not a 500.
    from servicekit.errors import database_problem

    db = kit.db
    if not db.is_postgres:
        return
    marker = f"lost_{uuid.uuid4().hex[:8]}"
    group = GroupStatement(db.driver_connection, f"SELECT e.ordinal, pg_sleep(5)::text AS {marker} "
                           "FROM json_array_elements($1::json) WITH ORDINALITY AS e(item, ordinal)", name="test lost")
    waiting = asyncio.gather(*(group.one({"x": i}) for i in range(3)), return_exceptions=True)
    async with db.reading() as connection:
        for _ in range(100):
            terminated = (await connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE :q AND pid <> pg_backend_pid()"), {"q": f"%{marker}%"})).scalar_one()
            if terminated:
                break
            await asyncio.sleep(0.05)
    outcomes = await waiting
    assert all(isinstance(o, GroupWriteFailed) for o in outcomes), outcomes
    problems = [database_problem(o) for o in outcomes]
    assert all(p is not None and p.status == 503 for p in problems), problems
    await group.close()
