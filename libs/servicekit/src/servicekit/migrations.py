"""Alembic, one environment per service, confined to the service's own schema.

A service's ``migrations/env.py`` is three lines calling ``run_env``; its first revision calls
``create_kit_tables_v1`` for the kit's own tables. On PostgreSQL the version table lives in the
service schema and autogenerate only looks there; on SQLite each service has its own file.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from servicekit.db import Database
from servicekit.settings import ServiceSettings

VERSION_TABLE = "alembic_version"


def alembic_config(migrations_dir: Path, settings: ServiceSettings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(migrations_dir: Path, settings: ServiceSettings, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, settings), revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's env.py (online mode only: migrations run against a database)."""
    from alembic import context

    settings: ServiceSettings = context.config.attributes["settings"]
    db = Database.from_settings(settings, pool_size=1)
    schema = db.schema

    def include_name(name: str | None, type_: str, _parent: object) -> bool:
        # Autogenerate and comparisons see only this service's schema.
        return name in (None, schema) if type_ == "schema" else True

    def do_run(connection: Connection) -> None:
        if schema:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            connection.execute(sa.text(f'SET search_path TO "{schema}", public'))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=VERSION_TABLE,
            version_table_schema=schema,
            include_schemas=False,
            include_name=include_name,
            compare_type=True,
            render_as_batch=not db.is_postgres,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        async with db.engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await db.dispose()

    asyncio.run(run())


@functools.cache
def _script(migrations_dir: Path) -> ScriptDirectory:
    return ScriptDirectory(str(migrations_dir))


async def migration_state(db: Database, migrations_dir: Path) -> str:
    """Readiness of the schema for this code: ``ok``, ``ahead`` or ``behind``.

    ``ahead`` means a newer release already migrated (a revision this code does not know):
    migrations are written expand-then-contract, so the previous release keeps serving during a
    rolling upgrade instead of every old pod turning unready at once. ``behind`` (or an empty
    schema) is not ready: this code needs a migration that has not run.
    """
    script = _script(migrations_dir)
    heads = set(script.get_heads())

    def current(connection: Connection) -> set[str]:
        logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
        ctx = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "version_table_schema": db.schema}
        )
        return set(ctx.get_current_heads())

    async with db.reading() as connection:
        revisions = await connection.run_sync(current)
    if revisions == heads:
        return "ok"
    if revisions and not any(_known(script, r) for r in revisions):
        return "ahead"
    return "behind"


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises for unknown revisions
        return False


async def at_head(db: Database, migrations_dir: Path) -> bool:
    return await migration_state(db, migrations_dir) in ("ok", "ahead")


def create_kit_tables_v1() -> None:
    """The kit's tables as of version 1: call from a service's first migration."""
    from alembic import op

    ts = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
    op.create_table(
        "outbox",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("payload", json, nullable=False),
        sa.Column("traceparent", sa.String(64)),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_table(
        "feed_sequence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_position", sa.BigInteger, nullable=False),
        sa.Column("pruned_through", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO feed_sequence (id, last_position, pruned_through) VALUES (1, 0, 0)")
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
        sa.Column("response_headers", json, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_index("ix_idempotency_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "consumer_cursors",
        sa.Column("feed", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("last_event_id", sa.String(36)),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("resynced_at", ts),
    )
    op.create_table(
        "processed_events",
        sa.Column("feed", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("processed_at", ts, nullable=False),
    )
    op.create_index("ix_processed_events_at", "processed_events", ["processed_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", ts, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("fields", json, nullable=False),
        sa.Column("purpose", sa.String(256)),
        sa.Column("area_code", sa.String(12)),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("request_id", sa.String(64)),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_resource", "audit_log", ["resource_type", "resource_id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    make_append_only("audit_log")


def make_append_only(table: str) -> None:
    """The application cannot rewrite history: UPDATE and DELETE on the table raise."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_rewrite BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


# The name an early matching migration imports; migrations are frozen, so it stays.
_make_append_only = make_append_only
