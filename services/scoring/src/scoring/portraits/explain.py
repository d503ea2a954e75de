"""Rendering a household's portrait and suggestions from its current assessment."""

from __future__ import annotations

from scoring.assessments.explain import evaluator, facts_of, rests_on
from scoring.assessments.tables import Assessment, CurrentAssessment
from scoring.engine.runtime import ModelRuntime
from scoring.households.tables import HouseholdView
from scoring.portraits.schemas import Finding, PolicySuggestion, PortraitOut, ServiceSuggestion
from scoring.rules.model import RuleSpec


def portrait_out(rt: ModelRuntime, a: Assessment, current: CurrentAssessment, view: HouseholdView | None) -> PortraitOut:
    model, catalogues = rt.model, rt.catalogues
    facts = facts_of(view, a, rt)
    ev = evaluator(rt, facts, a) if facts is not None else None
    causes, needs, types = set(a.causes.split()), set(a.needs.split()), set(a.five_types.split())
    eligible, receiving = set(a.eligible.split()), set(a.receiving.split())

    def finding(rule: RuleSpec, name_zh: str = "", name_en: str = "") -> Finding:
        return Finding(code=rule.code, name_zh=rule.name_zh or name_zh, name_en=rule.name_en or name_en,
                       reason_zh=rule.reason_zh, reason_en=rule.reason_en, facts=rests_on(ev, [rule.condition]))

    def need_names(code: str) -> tuple[str, str]:
        zh, _, en = catalogues.need_types.get(code, code).partition(" / ")
        return zh.strip(), (en or zh).strip()

    difficulty = next((finding(r) for r in model.difficulty if r.code == a.difficulty), None)
    policies = []
    for spec in model.policies:
        yes, got = spec.code in eligible, spec.code in receiving
        policies.append(PolicySuggestion(
            code=spec.code, name_zh=spec.name_zh, name_en=spec.name_en, category=spec.category, eligible=yes,
            receiving=got, receiving_basis=spec.basis, finds_person=yes and not got,  # type: ignore[arg-type]
            rule_zh=spec.rule_zh, rule_en=spec.rule_en, facts=rests_on(ev, [spec.eligible, spec.receiving]),
        ))
    services = []
    for token in a.services.split():
        code, _, need = token.partition("/")
        entry = catalogues.services[code]
        rules = [s for s in model.services if s.service == code and model.needs[s.need].code == need]
        need_rule = next((r for r in model.needs if r.code == need), None)
        nodes = [need_rule.condition if need_rule else None, *(s.condition for s in rules)]
        services.append(ServiceSuggestion(code=entry.code, name_zh=entry.name_zh, name_en=entry.name_en,
                                          category=entry.category, need_type=need, facts=rests_on(ev, nodes)))
    return PortraitOut(
        household_id=a.household_id, assessment_id=a.id, model_version=a.model_version, assessed_at=a.assessed_at,
        score=a.score, level=a.level, effective_level=current.effective_level, difficulty=difficulty,
        causes=[finding(r) for r in model.causes if r.code in causes],
        needs=[finding(r, *need_names(r.code)) for r in model.needs if r.code in needs],
        five_types=[finding(r) for r in model.five_types if r.code in types],
        policies=policies, services=services,
    )
