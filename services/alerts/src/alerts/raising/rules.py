"""Which configured rules an assessment fires. Pure logic: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable

from alerts.profile import Rule
from alerts.raising.schemas import AssessmentUpdated


def fired_rules(assessment: AssessmentUpdated, rules: Iterable[Rule], *, previous_level: int | None = None) -> list[str]:
    """Codes of the rules this assessment fires, in configuration order.

    ``previous_level`` overrides the event's own (a resync compares with what we last saw).
    """
    before = assessment.previous_level if previous_level is None else previous_level
    triggers = {t.code for t in assessment.triggers}
    indicators = {i.code for i in assessment.indicators}
    fired = []
    for rule in rules:
        if not rule.enabled:
            continue
        if rule.levels is not None and assessment.level not in rule.levels:
            continue
        if rule.causes is not None and assessment.cause not in rule.causes:
            continue
        if _matches(rule, assessment, before, triggers, indicators):
            fired.append(rule.code)
    return fired


def _matches(rule: Rule, a: AssessmentUpdated, before: int | None, triggers: set[str], indicators: set[str]) -> bool:
    when = rule.when
    if when.triggers is not None:
        return not triggers.isdisjoint(when.triggers)
    if when.indicators is not None:
        return not indicators.isdisjoint(when.indicators)
    if when.level_entered is not None:
        # level 1 is the weakest: "entering" N means coming from a larger number, or from nothing
        return a.level == when.level_entered and (before is None or before > when.level_entered)
    if when.level_dropped_by is not None:
        return before is not None and before - a.level >= when.level_dropped_by
    if when.score_dropped_by is not None:
        return a.score is not None and a.previous_score is not None and a.previous_score - a.score >= when.score_dropped_by
    return False
