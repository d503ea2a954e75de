"""Database access: one engine per process, one transaction per request or per event.

PostgreSQL in production (each service confined to its own schema through ``search_path``), a
SQLite file in the embedded default. The transaction is opened and committed at the edge --
``TransactionalRoute`` for requests, ``unit_of_work`` for consumers and jobs -- so domain code
only flushes. Events published during the transaction are sequenced and written to the outbox
right before the commit; callbacks registered with ``after_commit`` run only once it succeeded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from datetime import UTC, datetime

from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from servicekit.groupcommit import GroupStatement
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

# A pooled connection idle this long is pinged before it is handed out (see ``_ping_when_idle``).
PING_AFTER_IDLE_SECONDS = 10.0

AfterCommit = Callable[[], Awaitable[None] | None]
BeforeCommit = Callable[[AsyncSession], Awaitable[None]]

# Hooks the kit installs (the outbox sequencer) that run inside every transaction before commit.
_before_commit_hooks: list[BeforeCommit] = []


# SQLSTATEs of a transaction PostgreSQL aborted because of another's: deadlock_detected,
# serialization_failure. Nothing of it was committed; the same work may simply be tried again.
LOCK_CONFLICTS = frozenset({"40P01", "40001"})


def lock_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (the driver's error, or SQLAlchemy's wrapping it) is such an abort."""
    state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state in LOCK_CONFLICTS


def register_before_commit(hook: BeforeCommit) -> None:
    if hook not in _before_commit_hooks:
        _before_commit_hooks.append(hook)


class Database:
    """The engine and session factory of one service."""

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 10, echo: bool = False,
                 ping_after: float = PING_AFTER_IDLE_SECONDS) -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        self.schema = schema if self.is_postgres else None
        self.pool_size = pool_size
        if self.is_postgres:
            self._server_settings = server_settings = {"search_path": f"{self.schema},public" if self.schema else "public"}
            self.engine: AsyncEngine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                echo=echo,
                connect_args={"server_settings": server_settings},
            )
            _ping_when_idle(self.engine, ping_after)
        else:
            _ensure_sqlite_dir(url)
            # SQLite: one writer at a time. NullPool-free default pool is fine with aiosqlite;
            # busy_timeout lets concurrent writers wait instead of failing, and BEGIN IMMEDIATE
            # takes the write lock up front so two transactions never deadlock on upgrade.
            self.engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
            _sqlite_pragmas(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._driver_pool: Any = None
        self._groups: dict[str, GroupStatement] = {}

    @classmethod
    def from_settings(cls, settings: ServiceSettings, **kw: Any) -> Database:
        kw.setdefault("pool_size", settings.db_pool_size)
        return cls(settings.effective_database_url, schema=settings.effective_db_schema, **kw)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only. On SQLite its transactions begin deferred, so probes and
        other reads never queue behind a writer (a feed consumer draining a backlog holds the
        write lock batch after batch); writing through it is a mistake SQLite may refuse."""
        async with self.engine.connect() as connection:
            if not self.is_postgres:
                connection = await connection.execution_options(**{_SQLITE_DEFERRED: True})
            yield connection

    def driver_connection(self) -> Any:
        """``async with db.driver_connection() as connection``: an asyncpg connection, outside
        SQLAlchemy, for a hot path whose whole request is one statement -- its own transaction,
        committed when it returns (PostgreSQL only).

        The connections come from a pool of their own (``servicekit.driverpool``: opened as
        needed, in the service's schema; JSON comes as text) that skips the engine's pre-ping
        and any session reset: each costs a round trip, and a single statement in autocommit
        leaves no session state behind. Whoever uses it must not change session state (SET,
        LISTEN, advisory locks); a connection whose user raised or left a transaction open is
        closed, not reused. It holds up to as many connections as the engine (``pool_size``
        and as many again): a write that commits waits for its WAL flush, and more connections
        share each flush -- 32 concurrent audited reads on 10 connections ran at 2,000-2,350 a
        second with a p99 of 53 ms, on 20 at 2,850-2,900 and 27-28 ms.
        """
        if not self.is_postgres:
            raise RuntimeError("driver_connection is for PostgreSQL; use a session elsewhere")
        if self._driver_pool is None:
            import asyncpg

            from servicekit.driverpool import DriverPool

            url = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
            self._driver_pool = DriverPool(
                lambda: asyncpg.connect(url, server_settings=self._server_settings), max_size=2 * self.pool_size)
        return self._driver_pool.connection()

    def group_statement(self, sql: str, *, name: str, concurrency: int = 1) -> GroupStatement:
        """The ``servicekit.groupcommit.GroupStatement`` for ``sql`` on this database's driver
        connections (PostgreSQL), at most ``concurrency`` of its statements at once: one per
        statement, shared by every caller, closed (its queued items written) by ``dispose``."""
        group = self._groups.get(sql)
        if group is None:
            if not self.is_postgres:
                raise RuntimeError("group statements are for PostgreSQL; use a session elsewhere")
            group = self._groups[sql] = GroupStatement(self.driver_connection, sql, name=name, concurrency=concurrency)
        return group

    async def dispose(self) -> None:
        for group in self._groups.values():
            await group.close()
        self._groups.clear()
        if self._driver_pool is not None:
            await self._driver_pool.close()
            self._driver_pool = None
        await self.engine.dispose()


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


_SQLITE_DEFERRED = "servicekit_sqlite_deferred"


def _ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """Ping a pooled connection before handing it out only if it sat idle ``after`` seconds or more.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip before every request's
    and every consumer batch's transaction, a tenth of the work of one household.changed applied
    by scoring. A connection in steady use is not pinged; one that sat idle (where a restart of
    the server or a dropped connection goes unnoticed) is, and a failed ping makes the pool open
    a fresh connection instead (SQLAlchemy's pessimistic disconnect handling). A connection that
    breaks while in use fails its transaction, as it would with a ping, and the pool then
    replaces every connection opened before the failure."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < after:  # new, or in steady use
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("a pooled connection failed its ping after sitting idle") from exc


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only connection (Database.reading) begins deferred: in WAL mode it reads a
        # snapshot and never waits for the write lock, which a busy writer could hold for long.
        deferred = conn.get_execution_options().get(_SQLITE_DEFERRED, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


async def db_now(session: AsyncSession) -> datetime:
    """The database's clock, aware UTC: deadlines and sweeps never trust a pod's clock. On
    PostgreSQL the transaction's start; on SQLite now, to the millisecond (its CURRENT_TIMESTAMP
    has whole seconds only)."""
    if session.get_bind().dialect.name == "postgresql":
        clock = func.current_timestamp()
    else:
        clock = func.strftime("%Y-%m-%d %H:%M:%f", "now")
    value = (await session.execute(select(clock))).scalar_one()
    if isinstance(value, str):  # SQLite answers with text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def driver_of(session: AsyncSession) -> Any:
    """The driver's own connection (asyncpg on PostgreSQL) under the session's, inside its
    transaction: for COPY, and for reads whose ORM row processing would cost more than the query."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


def dialect_insert(session: AsyncSession) -> Callable[..., Any]:
    """``insert`` of the session's dialect, for ON CONFLICT clauses on PostgreSQL and SQLite."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    bind = session.get_bind()
    return pg_insert if bind.dialect.name == "postgresql" else sqlite_insert


def one_of(session: AsyncSession, column: Any, values: list[str]) -> Any:
    """``column IN values``; on PostgreSQL one array parameter (``= ANY($1)``), so the statement is
    compiled and prepared once whatever the number of values."""
    from sqlalchemy import String, any_, bindparam
    from sqlalchemy.dialects.postgresql import ARRAY

    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` after this session's transaction commits (never if it rolls back)."""
    session.info.setdefault("after_commit", []).append(callback)


async def commit(session: AsyncSession) -> None:
    """Commit at the edge: run the kit's before-commit hooks, commit, then the callbacks."""
    for hook in _before_commit_hooks:
        await hook(session)
    await session.commit()
    callbacks = session.info.pop("after_commit", [])
    for callback in callbacks:
        try:
            result = callback()
            if result is not None:
                await result
        except Exception:  # a failed side effect must not turn a committed request into a 500
            log.exception("after-commit callback failed")


@asynccontextmanager
async def unit_of_work(db: Database) -> AsyncIterator[AsyncSession]:
    """One transaction for a consumer batch or a job: committed if the block succeeds."""
    async with db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await _rollback(session)
            raise
        await commit(session)


async def _rollback(session: AsyncSession) -> None:
    await session.rollback()
    session.info.pop("after_commit", None)
    session.info.pop("outbox_pending", None)


class TransactionalRoute(APIRoute):
    """Every request handled by this route class runs in one transaction, committed at the edge.

    The session lives on ``request.state.db``; the ``Session`` dependency hands it out. A
    response of 400 or more rolls the transaction back, so a failed request changes nothing.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        from servicekit.idempotency import IdempotentReplay

        handler = super().get_route_handler()

        async def transactional(request: Request) -> Response:
            db: Database = request.app.state.db
            async with db.sessionmaker() as session:
                request.state.db = session
                try:
                    response = await handler(request)
                except IdempotentReplay as replay:
                    await _rollback(session)
                    return replay.response
                except BaseException:
                    await _rollback(session)
                    raise
                if response.status_code >= 400:
                    await _rollback(session)
                    return response
                claim = getattr(request.state, "idempotency", None)
                if claim is not None:
                    await claim.store(session, response)
                await commit(session)
                return response

        return transactional


def get_session(request: Request) -> AsyncSession:
    session = getattr(request.state, "db", None)
    if session is None:  # a route that forgot TransactionalRoute is a bug, not a client error
        raise RuntimeError("this route is not transactional: use servicekit.db.TransactionalRoute")
    return session


async def _session(request: Request) -> AsyncSession:
    """``get_session`` as a dependency; async, so FastAPI does not hand it to a worker thread
    on every request."""
    return get_session(request)


Session = Annotated[AsyncSession, Depends(_session)]

__all__ = [
    "Database", "Session", "TransactionalRoute", "after_commit", "commit", "unit_of_work",
    "register_before_commit", "get_session", "NullPool",
]
