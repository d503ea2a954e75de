"""Change detection: fact changes in, trigger events out (pure; rules come from the profile)."""

from __future__ import annotations

from typing import Any

from registry.facts.vocabulary import Change, value_of
from registry.profile.triggers import Rule, TriggerRules


def trigger(code: str, effective: str, source: str, member_ref: str | None = None,
            detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trigger as household.changed carries it (docs/events.md)."""
    return {"code": code, "member_ref": member_ref, "effective_date": effective, "source": source,
            "detail": detail or {}}


def _fires(rule: Rule, change: Change, household_facts: dict[str, Any]) -> bool:
    old, new = change.old, change.new
    kind = rule.kind
    if kind == "added":
        return True  # a code list only reports a change when a code was added
    if kind == "set":
        return old is None and new is not None
    if kind == "changed":
        return old is not None and new is not None and old != new
    if kind == "logged":
        return rule.threshold is None or (isinstance(new, (int, float)) and new >= rule.threshold)
    if kind == "became":
        return new in rule.values_to and old not in rule.values_to
    if kind == "from_to":
        return old in rule.values_from and new in rule.values_to
    if kind == "dropped_by":
        if old is None or rule.threshold is None:
            return False
        after = sum(value_of(household_facts, f) or 0.0 for f in rule.facts)
        before = after - (new or 0.0) + old
        return before > 0 and (before - after) / before >= rule.threshold
    return False  # pragma: no cover


def detect(rules: TriggerRules, changes: list[Change], household_facts: dict[str, Any],
           member_ref: str | None) -> list[dict[str, Any]]:
    """The triggers these changes of one member (or of the household, member_ref None) fire."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for change in changes:
        for rule in rules.by_fact.get(change.fact, ()):
            if rule.code in seen or not _fires(rule, change, household_facts):
                continue
            seen.add(rule.code)
            detail: dict[str, Any] = {}
            if rule.detail:
                detail[rule.detail] = change.item_value
            if rule.kind == "changed":
                detail |= {"from": change.old, "to": change.new}
            out.append(trigger(rule.code, change.effective.isoformat(), change.source, member_ref, detail))
    return out
