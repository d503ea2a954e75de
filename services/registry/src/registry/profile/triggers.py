"""Trigger rules (config/registry/triggers.yaml), parsed into checked, ready-to-run rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.facts.vocabulary import FACTS
from registry.profile.errors import ProfileError, parse, read_yaml

# Raised by the registry's own acts; the code needs a rule entry to exist.
ACTS = frozenset({"household_created", "member_born", "declaration_accepted", "register_status_changed"})
# Codes every other service may rely on (docs/events.md).
CONTRACT = ACTS | {
    "major_illness_diagnosed", "member_deceased", "disability_grade_changed", "disability_certified", "job_lost",
    "large_medical_expense", "disaster_affected", "accident", "income_dropped", "housing_unsafe",
}
Kind = Literal["added", "set", "changed", "logged", "became", "from_to", "dropped_by"]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,47}$")
    name_zh: str = Field(min_length=1, max_length=40)
    event: bool = False  # raised by the registry's own acts, not by a fact
    fact: str | None = None
    facts: list[str] | None = None
    when: str | dict[str, Any] | None = None
    detail: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")


class TriggersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    parameters: dict[str, float] = {}
    rules: list[RuleIn] = Field(min_length=1)


@dataclass(frozen=True)
class Rule:
    code: str
    name_zh: str
    facts: tuple[str, ...]
    kind: Kind
    values_from: frozenset[Any] = frozenset()
    values_to: frozenset[Any] = frozenset()
    threshold: float | None = None
    detail: str | None = None


@dataclass(frozen=True)
class TriggerRules:
    codes: frozenset[str]
    event_codes: frozenset[str]
    by_fact: dict[str, tuple[Rule, ...]]
    parameters: dict[str, float]
    names: dict[str, str]

    def rules_by_fact(self) -> dict[str, set[str]]:
        return {fact: {r.code for r in rules} for fact, rules in self.by_fact.items()}


def _rule(path: Path, where: str, r: RuleIn, params: dict[str, float]) -> Rule:
    facts = tuple(r.facts or ([r.fact] if r.fact else []))
    if not facts:
        raise ProfileError(path, where, "a fact rule names `fact` or `facts`")
    for f in facts:
        if f not in FACTS:
            raise ProfileError(path, where + ".fact", "not a fact the registry keeps")

    def param(name: Any) -> float:
        if name not in params:
            raise ProfileError(path, where + ".when", "refers to a parameter not in `parameters`")
        return params[name]

    when = r.when
    if when in ("added", "set", "changed", "logged"):
        return Rule(r.code, r.name_zh, facts, when, detail=r.detail)  # type: ignore[arg-type]
    if isinstance(when, dict):
        if "became" in when:
            return Rule(r.code, r.name_zh, facts, "became", values_to=frozenset(when["became"]), detail=r.detail)
        if "from" in when and "to" in when:
            return Rule(r.code, r.name_zh, facts, "from_to", frozenset(when["from"]), frozenset(when["to"]), detail=r.detail)
        if "dropped_by" in when:
            return Rule(r.code, r.name_zh, facts, "dropped_by", threshold=param(when["dropped_by"]), detail=r.detail)
        if when.get("logged"):
            threshold = param(when["at_least"]) if "at_least" in when else None
            return Rule(r.code, r.name_zh, facts, "logged", threshold=threshold, detail=r.detail)
    raise ProfileError(path, where + ".when", "not a known condition (see the file's header)")


def load_triggers(path: Path) -> TriggerRules:
    raw = parse(TriggersFile, path, read_yaml(path))
    by_fact: dict[str, list[Rule]] = {}
    events: set[str] = set()
    names: dict[str, str] = {}
    for i, r in enumerate(raw.rules):
        names.setdefault(r.code, r.name_zh)
        if r.event:
            events.add(r.code)
            continue
        rule = _rule(path, f"rules.{i}", r, raw.parameters)
        for f in rule.facts:
            by_fact.setdefault(f, []).append(rule)
    if not ACTS <= events:
        raise ProfileError(path, "rules", f"the event rules {sorted(ACTS - events)} are required")
    if not CONTRACT <= set(names):
        raise ProfileError(path, "rules", f"the codes {sorted(CONTRACT - set(names))} are promised by docs/events.md")
    return TriggerRules(frozenset(names), frozenset(events), {k: tuple(v) for k, v in by_fact.items()},
                        dict(raw.parameters), names)
