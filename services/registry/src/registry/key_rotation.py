"""``python -m registry rotate-keys``: re-encrypt every sealed field under the active key.

Rotating the field-encryption key: add the new key to ``PII_KEYS`` beside the old one, make it
``PII_ACTIVE_KEY_ID`` and restart (new values are written under it from then on; old ones still
open), then run this command; once it reports nothing left, the old key can be retired.

- Page by page (keyset on the row id), each page its own transaction: stopped half-way, it is
  simply run again, and it only ever looks at values not yet under the active key.
- A row changed by the service between the read and the write is left alone (the update checks
  the values it read); the service wrote it under the active key anyway, and a later run picks up
  whatever is still old.
- Blind indexes are untouched: they depend on ``BLIND_INDEX_KEY`` only, not on the field key.
- Neither versions nor ``updated_at`` change: the data is the same, only its envelope is new.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import MetaData, Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.crypto import ENVELOPE_VERSION
from servicekit.db import Database, unit_of_work

from registry.settings import RegistrySettings
from registry.vault import Vault

log = logging.getLogger(__name__)

SUFFIX = "_enc"
# The name a sealed column's values are bound to (associated data), where it is not the column's
# name without "_enc".
BOUND_AS = {"resident_enc": "resident_id"}


def sealed_columns(metadata: MetaData) -> dict[str, dict[str, str]]:
    """``{table: {column: the name its values are bound to}}`` of every sealed column."""
    out: dict[str, dict[str, str]] = {}
    for table in metadata.sorted_tables:
        columns = {c.name: BOUND_AS.get(c.name, c.name[: -len(SUFFIX)]) for c in table.columns if c.name.endswith(SUFFIX)}
        if columns:
            out[table.name] = columns
    return out


@dataclass
class RotationReport:
    rows: dict[str, int] = field(default_factory=dict)  # rows re-encrypted, by table
    skipped: int = 0  # rows changed meanwhile (left for a later run)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def _page(session: AsyncSession, vault: Vault, table: Table, columns: dict[str, str], after: str,
                size: int, current: str) -> tuple[int, int, str | None]:
    """Rotate one page of rows after ``after``; returns (rotated, skipped, last id seen)."""
    old = or_(*(and_(table.c[c].is_not(None), ~table.c[c].startswith(current, autoescape=True)) for c in columns))
    rows = (await session.execute(
        select(table.c.id, *(table.c[c] for c in columns)).where(table.c.id > after, old).order_by(table.c.id).limit(size)
    )).all()
    rotated = skipped = 0
    for row in rows:
        new = {c: vault.cipher.rotate(v, table=table.name, column=bound, row_id=row.id)
               for c, bound in columns.items() if (v := getattr(row, c)) is not None}
        unchanged = [table.c[c] == getattr(row, c) if getattr(row, c) is not None else table.c[c].is_(None)
                     for c in columns]
        result = await session.execute(update(table).where(table.c.id == row.id, *unchanged).values(**new))
        if result.rowcount:
            rotated += 1
        else:
            skipped += 1
    return rotated, skipped, rows[-1].id if rows else None


async def rotate(db: Database, vault: Vault, metadata: MetaData, *, page: int = 500) -> RotationReport:
    """Re-encrypt under the vault's active key every sealed value written under another."""
    current = f"{ENVELOPE_VERSION}.{vault.cipher.active_key_id}."
    report = RotationReport()
    for name, columns in sealed_columns(metadata).items():
        table = metadata.tables[name]
        after, done = "", 0
        while True:
            async with unit_of_work(db) as session:
                rotated, skipped, last = await _page(session, vault, table, columns, after, page, current)
            done += rotated
            report.skipped += skipped
            if last is None:
                break
            after = last
        report.rows[name] = done
        log.info("key rotation: %s rows re-encrypted in %s", done, name)
    return report


def rotate_command(settings: RegistrySettings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m registry rotate-keys",
                                     description="Re-encrypt every sealed field under PII_ACTIVE_KEY_ID (resumable).")
    parser.add_argument("--page", type=int, default=500, help="rows per transaction")
    args = parser.parse_args(argv)
    from sqlmodel import SQLModel

    import registry.app  # noqa: F401  (every table registered on the metadata)

    async def run() -> RotationReport:
        db = Database.from_settings(settings, pool_size=1)
        try:
            return await rotate(db, Vault.from_settings(settings), SQLModel.metadata, page=args.page)
        finally:
            await db.dispose()

    report = asyncio.run(run())
    print(f"registry: {report.total} rows re-encrypted under key {settings.pii_active_key_id or '(development)'} "
          f"({', '.join(f'{t}: {n}' for t, n in report.rows.items())}); {report.skipped} changed meanwhile, "
          "run again for those")
    return 0
