"""A tiny stand-in for the registry: its feed of household.changed and its snapshot, in memory."""

from __future__ import annotations

import contextlib
import struct
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from scoring.engine.runtime import ModelRuntime
from scoring.synthetic import generate, to_views

VILLAGES = ["330106001001", "330106001002", "330106002001", "330102001001", "330127003004"]


class FakeRegistry:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.pruned_through = 0
        self.households: dict[str, dict[str, Any]] = {}
        self.app = self._app()

    @property
    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    @property
    def head(self) -> int:
        return len(self.events)

    def change(self, household_id: str, view: dict[str, Any], missing: list[str], *, version: int | None = None,
               area: str = VILLAGES[0], triggers: list[dict[str, Any]] | None = None, change: str = "updated",
               label: str = "张*明户", member_ages: list[int] | None = None) -> dict[str, Any]:
        """``member_ages`` None: an event as registries sent before they had them (no key)."""
        known = self.households.get(household_id)
        version = version if version is not None else (known["version"] + 1 if known else 1)
        data = {
            "household_id": household_id, "version": version, "area_code": area,
            "township_code": area[:9] + "000", "district_code": area[:6] + "000000", "label_masked": label,
            "synthetic": True, "change": change, "triggers": triggers or [], "view": view, "missing": missing,
        }
        if member_ages is not None:
            data["member_ages"] = member_ages
        if known is None or version > known["version"]:
            self.households[household_id] = data
        self.events.append({
            "position": len(self.events) + 1, "id": str(uuid.uuid4()), "type": "household.changed",
            "subject": household_id, "occurred_at": datetime.now(UTC).isoformat(), "traceparent": None, "data": data,
        })
        return data

    def raw_event(self, type_: str, data: dict[str, Any]) -> None:
        self.events.append({"position": len(self.events) + 1, "id": str(uuid.uuid4()), "type": type_,
                            "subject": "x", "occurred_at": datetime.now(UTC).isoformat(), "data": data})

    def prune(self) -> None:
        self.pruned_through = len(self.events)

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/feed")
        async def feed(after: int = 0, limit: int = Query(100, le=1000), wait: float = 0) -> Any:
            if after < self.pruned_through:
                return JSONResponse({"type": "urn:zhongfu:problem:gone", "status": 410,
                                     "pruned_through": self.pruned_through}, status_code=410)
            events = self.events[after:after + limit]
            return {"events": events, "next_after": events[-1]["position"] if events else after, "head": self.head}

        @app.get("/internal/snapshot/households")
        async def snapshot(cursor: str | None = None, limit: int = Query(100, le=5000)) -> Any:
            ids = sorted(self.households)
            start = ids.index(cursor) + 1 if cursor else 0
            page = ids[start:start + limit]
            items = [{k: v for k, v in self.households[h].items() if k != "triggers"}
                     | {"change": "closed" if self.households[h]["change"] == "closed" else "updated"} for h in page]
            more = start + limit < len(ids)
            return {"position": self.head, "items": items, "next_cursor": page[-1] if more and page else None}

        return app


def synthetic_views(ctx, n: int, seed: int, unknown_rate: float = 0.0) -> list[tuple[dict[str, Any], list[str]]]:
    matrix, missing = generate(ctx.view, n, seed=seed, unknown_rate=unknown_rate)
    return to_views(ctx.view, matrix, missing)


def ages_of(i: int) -> list[int]:
    """The member ages ``load_households`` sends for its i-th household (oldest first)."""
    return [40 + i % 50, 38, 8][: 1 + i % 3]


async def load_households(svc, ctx, n: int, seed: int, areas: list[str] | None = None,
                          unknown_rate: float = 0.0) -> list[str]:
    """Feed ``n`` synthetic households through the consumer, as the registry would."""
    from scoring.app import registry_consumer

    registry = FakeRegistry()
    consumer = registry_consumer(svc.app, registry.transport, svc.identity.token_source)
    consumer.name = f"registry-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(n)]
    areas = areas or VILLAGES
    for i, (hid, (view, missing)) in enumerate(zip(ids, synthetic_views(ctx, n, seed, unknown_rate), strict=True)):
        registry.change(hid, view, missing, area=areas[i % len(areas)], member_ages=ages_of(i))
    while await consumer.step() > 0:
        pass
    return ids



class FailingRuntime(ModelRuntime):
    """A model runtime that raises at its second chunk (in the rescore's worker process, which
    can unpickle it: this folder is on its path)."""

    calls = 0

    @classmethod
    def like(cls, runtime: ModelRuntime) -> ModelRuntime:
        troubled = cls.__new__(cls)
        troubled.__dict__.update(runtime.__dict__)
        return troubled

    def evaluate(self, matrix: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            self.trouble()
        return super().evaluate(matrix)

    def trouble(self) -> None:
        raise ValueError("a chunk the model cannot score")


class StallingRuntime(FailingRuntime):
    """The same, but it stalls at its second chunk (so that a test can end the process then)."""

    def trouble(self) -> None:
        import time

        time.sleep(60)


@contextlib.asynccontextmanager
async def service_lab(identity: Any, config_dir: Any, **settings: Any) -> AsyncIterator[Any]:
    """A scoring service of its own on a fresh migrated database: small COPY batches and chunks,
    so that a few hundred households take every path a city's rescore takes."""
    from scoring.app import MIGRATIONS, create_app
    from scoring.settings import ScoringSettings
    from servicekit.testing import migrated_database, running_service, settings_for_tests

    base = settings_for_tests(ScoringSettings, **{"config_dir": config_dir, "consume_registry": False,
                                                   "copy_threshold": 50, "rescore_chunk_size": 70, **settings})
    async with migrated_database(base, MIGRATIONS) as ready:
        async with running_service(create_app, ready, identity) as service:
            yield service


_UNPACK = {"int2": ">h", "int4": ">i", "int8": ">q", "float8": ">d"}


def decode_binary_copy(data: bytes, kinds: list[str]) -> list[tuple]:
    """PostgreSQL's binary COPY stream back to values, read by the format's definition (its docs,
    "Binary Format"), independently of how scoring writes it: ``kinds`` as ``copy_format`` names
    the columns' types."""
    assert data[:11] == b"PGCOPY\n\xff\r\n\x00" and struct.unpack(">ii", data[11:19]) == (0, 0)
    at, rows = 19, []
    while True:
        (fields,) = struct.unpack_from(">h", data, at)
        at += 2
        if fields == -1:
            assert at == len(data)
            return rows
        assert fields == len(kinds)
        row: list[Any] = []
        for kind in kinds:
            (size,) = struct.unpack_from(">i", data, at)
            at += 4
            value, at = (None, at) if size == -1 else (data[at:at + size], at + size)
            if value is None:
                row.append(None)
            elif kind == "text":
                row.append(value.decode())
            elif kind == "timestamptz":
                row.append(datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=struct.unpack(">q", value)[0]))
            else:
                row.append(struct.unpack(_UNPACK[kind], value)[0])
        rows.append(tuple(row))
