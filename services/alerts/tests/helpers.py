"""Small helpers the tests share: reading what the service stored, and worker clients."""

from __future__ import annotations

from sqlalchemy import func, select, update

from alerts.alert.tables import Alert, AlertEvidence
from servicekit.tables import OutboxEvent

from fakes import TOWNSHIP


async def alerts_of(svc, household_id: str) -> list[Alert]:
    async with svc.db.sessionmaker() as s:
        rows = await s.execute(select(Alert).where(Alert.household_id == household_id).order_by(Alert.raised_at))
        return list(rows.scalars())


async def evidence_count(svc, alert_id: str) -> int:
    async with svc.db.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(AlertEvidence).where(AlertEvidence.alert_id == alert_id))).scalar_one()


async def outbox_events(svc, type_: str, subject: str) -> list[OutboxEvent]:
    async with svc.db.sessionmaker() as s:
        rows = await s.execute(select(OutboxEvent).where(OutboxEvent.type == type_, OutboxEvent.subject == subject).order_by(OutboxEvent.position))
        return list(rows.scalars())


async def set_alert(svc, alert_id: str, **values) -> None:
    async with svc.db.sessionmaker() as s:
        await s.execute(update(Alert).where(Alert.id == alert_id).values(**values))
        await s.commit()


def worker(svc, township: str = TOWNSHIP, subject: str = "worker-a"):
    return svc.client("town_worker", area=township, subject=subject)
