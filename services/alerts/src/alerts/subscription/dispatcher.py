"""The webhook dispatcher: sends the delivery outbox, retries with backoff and jitter for days.

Each endpoint has its own queue (its due deliveries, oldest first) drained by its own task with a
small concurrency; a global limit bounds how many endpoints are served at once. A slow or
failing endpoint therefore holds only its own task, never another endpoint's deliveries. A 410
disables the endpoint and cancels what it still had pending. Results are recorded in one
transaction per batch; a crash between sending and recording resends (receivers deduplicate on
``webhook-id``), but a healthy endpoint is sent each delivery once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from servicekit.crypto import FieldCipher
from servicekit.db import Database, db_now, unit_of_work

from alerts.subscription import repository
from alerts.subscription.addresses import AddressGuard
from alerts.subscription.outbox import on_enqueued
from alerts.subscription.secrets import cipher_from_settings, unseal
from alerts.subscription.sender import Attempt, Sender
from alerts.subscription.tables import WebhookDelivery

log = logging.getLogger(__name__)


def guard_from_settings(settings: Any) -> AddressGuard:
    return AddressGuard(https_required=settings.https_required, allow_networks=settings.webhook_test_allow_networks)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        cipher: FieldCipher,
        sender: Sender,
        *,
        retry_schedule: list[float],
        max_endpoints: int = 32,
        per_endpoint: int = 4,
        batch: int = 100,
    ) -> None:
        self.db, self.cipher, self.sender = db, cipher, sender
        self.retry_schedule = retry_schedule
        self.per_endpoint = per_endpoint
        self.batch = batch
        self._slots = asyncio.Semaphore(max_endpoints)
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._wake: list[Callable[[], None]] = []
        self.sent = 0

    @classmethod
    def from_app(cls, app: FastAPI, transport: httpx.AsyncBaseTransport | None = None) -> Dispatcher:
        s = app.state.settings
        guard = getattr(app.state, "address_guard", None) or guard_from_settings(s)
        app.state.address_guard = guard
        sender = Sender(guard, timeout=s.webhook_timeout_seconds, transport=transport)
        app.state.webhook_sender = sender
        return cls(
            app.state.db, cipher_from_settings(s), sender, retry_schedule=list(s.webhook_retry_schedule),
            max_endpoints=s.webhook_max_endpoints_in_flight, per_endpoint=s.webhook_per_endpoint_concurrency,
            batch=s.webhook_claim_batch,
        )

    def on_wake(self, callback: Callable[[], None]) -> None:
        self._wake.append(callback)
        on_enqueued(callback)

    async def aclose(self) -> None:
        for task in list(self._busy.values()):
            task.cancel()
        await asyncio.gather(*self._busy.values(), return_exceptions=True)
        await self.sender.aclose()

    async def run_once(self) -> int:
        """Start a drain for every endpoint with due deliveries that is not being drained."""
        async with self.db.sessionmaker() as session:
            now = await db_now(session)
            endpoints = await repository.endpoints_with_due(session, now, 10_000)
        started = 0
        for sub_id in endpoints:
            if sub_id not in self._busy:
                self._busy[sub_id] = asyncio.create_task(self._drain(sub_id), name=f"webhooks:{sub_id}")
                started += 1
        return started

    async def drain_all(self) -> None:
        """Until nothing is due (tests and benchmarks)."""
        while True:
            await self.run_once()
            if not self._busy:
                return
            await asyncio.gather(*list(self._busy.values()), return_exceptions=True)

    async def _drain(self, sub_id: str) -> None:
        try:
            async with self._slots:
                while await self._deliver_batch(sub_id) >= self.batch:
                    pass
        except Exception as exc:
            log.error("webhook endpoint drain failed (%s)", type(exc).__name__)
        finally:
            self._busy.pop(sub_id, None)

    async def _deliver_batch(self, sub_id: str) -> int:
        async with self.db.sessionmaker() as session:
            now = await db_now(session)
            sub = await repository.get(session, sub_id)
            if sub is None or sub.status != "active":
                return 0
            secrets = [unseal(self.cipher, s.secret_encrypted, s.id) for s in await repository.secrets(session, sub_id, now)]
            deliveries = list(await repository.due(session, sub_id, now, self.batch))
            url = sub.url
        if not deliveries:
            return 0
        resolved = await self.sender.resolve(url)  # checked again before every batch
        if isinstance(resolved, Attempt):
            results = {d.id: resolved for d in deliveries}
        else:
            target, ips = resolved
            gate = asyncio.Semaphore(self.per_endpoint)

            async def one(d: WebhookDelivery) -> Attempt:
                async with gate:
                    return await self.sender.send(target, ips, msg_id(d.id), d.payload, secrets)

            attempts = await asyncio.gather(*(one(d) for d in deliveries))
            results = {d.id: a for d, a in zip(deliveries, attempts, strict=True)}
        await self._record(sub_id, deliveries, results)
        return len(deliveries)

    async def _record(self, sub_id: str, deliveries: list[WebhookDelivery], results: dict[str, Attempt]) -> None:
        # What was sent must be recorded, or it is sent again: retry a failed write (a busy
        # database) a few times; the update only touches rows still pending, so a retry is safe.
        for attempt in range(5):
            try:
                await self._record_once(sub_id, deliveries, results)
                return
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)

    async def _record_once(self, sub_id: str, deliveries: list[WebhookDelivery], results: dict[str, Attempt]) -> None:
        async with unit_of_work(self.db) as session:
            now = await db_now(session)
            outcomes, gone = [], False
            for d in deliveries:
                a = results[d.id]
                row: dict[str, Any] = {"id": d.id, "last_attempt_at": now, "last_status": a.status, "last_error": a.error}
                if a.ok:
                    row |= {"status": "delivered", "delivered_at": now, "last_error": None}
                elif a.gone:
                    row["status"], gone = "failed", True
                elif d.attempts + 1 > len(self.retry_schedule):
                    row["status"] = "failed"
                else:
                    row["next_attempt_at"] = now + self.backoff(d.attempts)
                outcomes.append(row)
            await repository.record_attempts(session, outcomes)
            self.sent += sum(1 for o in outcomes if o.get("status") == "delivered")
            if gone:
                sub = await repository.get(session, sub_id)
                if sub is not None and sub.status == "active":
                    sub.status, sub.disabled_reason, sub.disabled_at = "disabled", "gone", now
                    sub.version += 1
                await repository.cancel_pending(session, sub_id, "endpoint_gone")

    def backoff(self, attempts_before: int) -> timedelta:
        """Delay after a failed attempt: the schedule's step, with equal jitter."""
        base = self.retry_schedule[min(attempts_before, len(self.retry_schedule) - 1)]
        return timedelta(seconds=base / 2 + random.uniform(0, base / 2))


def msg_id(delivery_id: str) -> str:
    return "msg_" + delivery_id.replace("-", "")
