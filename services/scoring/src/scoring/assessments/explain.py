"""Explaining a stored assessment: reasons from the model version that made it, and -- when the
household's stored view is the one it was made from -- the facts each reason rests on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from scoring.assessments.schemas import (
    AssessmentOut, BandOut, DimensionScore, Diff, FactNote, FiredIndicator, NotEvaluated, ReviewOut,
)
from scoring.assessments.tables import Assessment, AssessmentReview, CurrentAssessment
from scoring.engine.runtime import ModelRuntime
from scoring.households.tables import HouseholdView
from scoring.rules.expressions import Name, Node, names_read
from scoring.rules.reference import Evaluator, impute


def facts_of(view: HouseholdView | None, assessment: Assessment, rt: ModelRuntime) -> dict[str, Any] | None:
    """The facts the assessment was made from, if scoring still holds that version of them."""
    if view is None or view.version != assessment.household_version or view.layout != rt.ctx.view.layout:
        return None
    row = np.frombuffer(view.features, dtype=np.float64)
    return rt.ctx.view.decode_row(row)


def evaluator(rt: ModelRuntime, facts: dict[str, Any], assessment: Assessment) -> Evaluator:
    """An evaluator that also knows what the assessment found (score, fired indicators, portrait)."""
    ev = Evaluator(rt.model, impute(rt.model, facts))
    fired = rt.fired_map(assessment.fired)
    dims = json.loads(assessment.dimensions)
    causes, needs = set(assessment.causes.split()), set(assessment.needs.split())
    ev.derived.update({"score": assessment.score, "level": assessment.level})
    ev.derived.update({f"dimension.{code}": value for code, value in dims.items()})
    ev.derived.update({f"fired.{ind.code}": ind.code in fired for ind in rt.model.indicators})
    ev.derived.update({f"cause.{r.code}": r.code in causes for r in rt.model.causes})
    ev.derived.update({f"need.{r.code}": r.code in needs for r in rt.model.needs})
    return ev


def rests_on(ev: Evaluator | None, nodes: Sequence[Node | None]) -> dict[str, Any] | None:
    """The named facts (and standards, and findings) the conditions read, with their values."""
    if ev is None:
        return None
    out: dict[str, Any] = {}
    for node in nodes:
        if node is None:
            continue
        for name in names_read(node):
            value = ev.value(Name(name))
            out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def fact_notes(rt: ModelRuntime, assessment: Assessment) -> list[FactNote]:
    facts = json.loads(assessment.facts)
    notes = []
    for name in facts.get("missing", []):
        t = rt.model.missing.get(name)
        if t is not None:
            notes.append(FactNote(field=name, treatment="imputed", detail_zh=t.note_zh or f"按{t.value}计",
                                  detail_en=t.note_en or f"taken as {t.value}"))
        else:
            notes.append(FactNote(field=name, treatment="unknown", detail_zh="未知:依赖该事实的条件未作判断",
                                  detail_en="unknown: conditions that need it were not evaluated"))
    for name in facts.get("invalid", []):
        notes.append(FactNote(field=name, treatment="invalid", detail_zh="数值不符合字段定义,按未知处理",
                              detail_en="not a value of the field; treated as unknown"))
    for name in facts.get("clamped", []):
        notes.append(FactNote(field=name, treatment="clamped", detail_zh="超出合理范围,按最近的边界值计",
                              detail_en="outside its plausible range; taken at the nearest bound"))
    return notes


def not_evaluated(rt: ModelRuntime, ev: Evaluator | None, fired: dict[str, int]) -> list[NotEvaluated]:
    if ev is None:
        return []
    out = []
    for ind in rt.model.indicators:
        if ind.code in fired:
            continue
        truths = [ev.truth(t.condition) for t in ind.tiers]
        if any(t is None for t in truths) and not any(t is True for t in truths):
            missing = [n for n in ind.fields if "." not in n and ev.facts.get(n) is None]
            out.append(NotEvaluated(indicator=ind.code, name_en=ind.name_en, missing_facts=missing))
    return out


def diff_of(a: Assessment, before: Assessment | None) -> Diff:
    """How the assessment differs from the one before it (indicators by code, level, score)."""
    moved = "first"
    if a.previous_level is not None:
        moved = "unchanged" if a.previous_level == a.effective_level else (
            "stronger" if a.effective_level > a.previous_level else "weaker")
    now = {t.partition(":")[0]: t.partition(":")[2] for t in a.fired.split()}
    then = {t.partition(":")[0]: t.partition(":")[2] for t in before.fired.split()} if before is not None else {}
    return Diff(
        previous_assessment_id=a.previous_id, previous_score=a.previous_score, previous_level=a.previous_level,
        level_moved=moved,  # type: ignore[arg-type]
        score_change=None if a.previous_score is None else a.score - a.previous_score,
        indicators_added=sorted(set(now) - set(then)), indicators_removed=sorted(set(then) - set(now)),
        indicators_changed=sorted(c for c in set(now) & set(then) if now[c] != then[c]),
    )


def review_out(review: AssessmentReview | None, current: CurrentAssessment | None) -> ReviewOut | None:
    if review is None:
        return None
    standing = current is not None and current.review_id == review.id
    return ReviewOut(id=review.id, computed_level=review.computed_level, reviewed_level=review.reviewed_level,
                     reason=review.reason, reviewer_role=review.reviewer_role, created_at=review.created_at,
                     standing=standing)


def assessment_out(rt: ModelRuntime, a: Assessment, current: CurrentAssessment | None, view: HouseholdView | None,
                   review: AssessmentReview | None, before: Assessment | None) -> AssessmentOut:
    model = rt.model
    is_current = current is not None and current.assessment_id == a.id
    facts = facts_of(view, a, rt) if is_current else None
    ev = evaluator(rt, facts, a) if facts is not None else None
    fired = rt.fired_map(a.fired)
    dims = json.loads(a.dimensions)
    indicators = []
    for code, tier in fired.items():
        ind = model.indicators[model.indicator_index[code]]
        t = ind.tiers[tier]
        indicators.append(FiredIndicator(
            code=code, name_zh=ind.name_zh, name_en=ind.name_en, dimension=model.dimensions[ind.dimension].code,
            tier=tier, points=t.points, reason_zh=t.reason_zh, reason_en=t.reason_en,
            facts=rests_on(ev, [t.condition]),
        ))
    band = model.band_of_level(a.level)
    return AssessmentOut(
        assessment_id=a.id, household_id=a.household_id, number=a.number, current=is_current,
        household_version=a.household_version, area_code=a.area_code, label_masked=a.label_masked,
        model_version=a.model_version, assessed_at=a.assessed_at, cause=a.cause,  # type: ignore[arg-type]
        triggers=json.loads(a.triggers), score=a.score, level=a.level,
        effective_level=current.effective_level if is_current and current else a.effective_level,
        band=BandOut(level=band.level, from_=band.lo, to=band.hi, name_zh=band.name_zh, name_en=band.name_en),
        dimensions=[DimensionScore(code=d.code, name_zh=d.name_zh, name_en=d.name_en, score=dims.get(d.code, 0),
                                   max=d.max, base=d.base) for d in model.dimensions],
        indicators=indicators, facts=fact_notes(rt, a), not_evaluated=not_evaluated(rt, ev, fired),
        input_hash=a.input_hash, diff=diff_of(a, before), review=review_out(review, current),
    )
