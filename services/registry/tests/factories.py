"""Factories for registry tests: synthetic people and households, events and audit helpers."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, text

from servicekit.resident_id import generate
from servicekit.tables import AuditRecord, OutboxEvent
from servicekit.testing import OTHER_TOWNSHIP, TOWNSHIP, VILLAGE

OTHER_VILLAGE = OTHER_TOWNSHIP[:9] + "001"
_counter = itertools.count(1)


def resident_id(birth: date | None = None, sex: str = "female", area: str = "330106") -> str:
    """A fresh, valid, synthetic resident ID number (unique within a test session)."""
    n = next(_counter)
    birth = birth or date(1950, 1, 1) + timedelta(days=n * 7 % 20000)
    sequence = (n % 499) * 2 + (1 if sex == "male" else 0)
    return generate(area, birth, sequence, sex)  # type: ignore[arg-type]


def member(relation: str = "head", **kw: Any) -> dict[str, Any]:
    number = kw.pop("resident_id", None) or resident_id(kw.pop("birth", None), kw.pop("sex_of_id", "female"))
    return {"resident_id": number, "name": kw.pop("name", "张三明"), "relation": relation,
            "phone": kw.pop("phone", "13800001234"), **kw}


def household(area: str = VILLAGE, members: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    body = {"area_code": area, "address": "合成路 1 号", "register_status": "dibao", "channel": "survey",
            "members": members or [member("head"), member("child", birth=date(2012, 5, 1))]}
    body.update(kw)
    return body


async def create(client, body: dict[str, Any] | None = None, expect: int = 201) -> dict[str, Any]:
    r = await client.post("/api/v1/households", json=body or household())
    assert r.status_code == expect, r.text
    return r.json()


async def head_position(svc) -> int:
    async with svc.db.sessionmaker() as s:
        return (await s.execute(select(func.coalesce(func.max(OutboxEvent.position), 0)))).scalar_one()


async def events_since(svc, position: int, type_: str = "household.changed") -> list[OutboxEvent]:
    async with svc.db.sessionmaker() as s:
        rows = await s.execute(select(OutboxEvent).where(OutboxEvent.position > position, OutboxEvent.type == type_)
                               .order_by(OutboxEvent.position))
        return list(rows.scalars())


async def audit_records(svc, resource_id: str, action: str | None = None) -> list[AuditRecord]:
    async with svc.db.sessionmaker() as s:
        stmt = select(AuditRecord).where(AuditRecord.resource_id == resource_id)
        if action:
            stmt = stmt.where(AuditRecord.action == action)
        return list((await s.execute(stmt)).scalars())


__all__ = ["OTHER_VILLAGE", "TOWNSHIP", "VILLAGE", "resident_id", "member", "household", "create", "head_position",
           "events_since", "audit_records"]


def feed_record(record_id: str, item: str, number: str, value: Any = None, effective: str = "2026-01-10", **kw: Any) -> dict[str, Any]:
    return {"record_id": record_id, "item": item, "resident_id": number, "value": value, "effective_date": effective, **kw}


def jsonl(records: list[Any]) -> bytes:
    import json

    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records).encode()


async def deliver(client, records: list[Any], expect: int = 201) -> dict[str, Any]:
    r = await client.post("/api/v1/feeds/batches", content=jsonl(records), headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == expect, r.text
    return r.json()


async def until_waiting_for_a_lock(registry, task: asyncio.Task) -> None:
    """Until a backend of the registry's database waits for a row lock (``task``, a request the
    test holds up with a lock of its own); fails if ``task`` finishes first or never waits."""
    async with registry.db.engine.connect() as probe:
        for _ in range(500):
            assert not task.done(), f"finished without waiting for a lock: {task.result()}"
            waiting = (await probe.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ))).scalar_one()
            await probe.rollback()
            if waiting:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no backend ever waited for a lock")
