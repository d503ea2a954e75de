"""Recording facts from people (workers, surveys, declarations): check, apply, remember history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from registry.facts import repository
from registry.facts.schemas import FactInput
from registry.facts.vocabulary import FACTS, Change, InvalidFactValue, Provenance, apply, coerce, value_of
from registry.problems import Problems
from registry.profile import CityProfile


def apply_inputs(
    profile: CityProfile, facts: dict[str, Any], subject: str, inputs: list[FactInput], *, where: str,
    source: str, record: str | None, received_at: datetime, today: date, problems: Problems,
) -> list[Change]:
    """Apply worker-entered facts to ``facts`` in place; invalid ones go to ``problems``."""
    changes: list[Change] = []
    died = value_of(facts, "deceased_on") if subject == "person" else None
    for i, item in enumerate(inputs):
        loc = f"{where}.{i}"
        spec = FACTS.get(item.fact)
        if spec is None:
            problems.add(f"{loc}.fact", "unknown_fact", "Not a fact the registry keeps.")
            continue
        if spec.subject != subject:
            problems.add(f"{loc}.fact", "wrong_subject", f"This fact is about a {spec.subject}.")
            continue
        effective = item.effective_date or today
        if effective > today:
            problems.add(f"{loc}.effective_date", "future_date", "The effective date is in the future.")
            continue
        if died is not None and item.fact != "deceased_on" and effective.isoformat() > died:
            problems.add(f"{loc}.effective_date", "after_death", "The person is recorded as deceased before this date.")
            continue
        try:
            value = coerce(spec, item.value, profile.catalogue.code_lists)
        except InvalidFactValue as exc:
            problems.add(f"{loc}.value", "invalid_value", str(exc))
            continue
        record_ref = f"{record}:{i}" if record else None
        change = apply(facts, spec, value, Provenance(source, record_ref, effective, received_at.isoformat()), today)
        if change is not None:
            changes.append(change)
    return changes


def history(changes: list[Change], household_id: str, member_id: str | None, received_at: datetime) -> list[dict[str, Any]]:
    return [
        {"household_id": household_id, "member_id": member_id, "fact": c.fact, "value": c.item_value,
         "source": c.source, "record_id": c.record, "effective_date": c.effective, "received_at": received_at}
        for c in changes
    ]


async def remember(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await repository.insert_history(session, rows)
