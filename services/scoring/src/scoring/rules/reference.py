"""The reference implementation: one household at a time, in plain Python.

It is the correctness oracle of the vectorised kernel (the tests hold them to exact agreement)
and the explainer of a single assessment. It walks the same trees with three-valued logic: a
fact that is unknown (None) makes a comparison unknown; ``and`` is false if any part is false,
``or`` true if any part is true; an unknown condition does not fire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scoring.rules.expressions import And, Arith, Call, Compare, Const, Member, Missing, Name, Neg, Node, Not, Or, Truthy
from scoring.rules.model import Model
from scoring.rules.view import ViewCatalogue

Facts = dict[str, Any]


@dataclass
class Outcome:
    """Everything the model says about one household (indices follow the model's lists)."""

    tiers: list[int]  # per indicator: the tier that fired, -1 for none
    dimensions: list[float]
    score: float
    level: int
    difficulty: int  # index into model.difficulty, -1 for none
    causes: list[bool]
    needs: list[bool]
    five_types: list[bool]
    eligible: list[bool]
    receiving: list[bool]
    services: list[bool]  # per service rule


class Evaluator:
    """Values and truths of expressions over one household's facts."""

    def __init__(self, model: Model, facts: Mapping[str, Any]) -> None:
        self.model = model
        self.facts = facts
        self.derived: dict[str, Any] = {}
        self.district = facts.get("district_code")

    def value(self, node: Node) -> Any:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Name):
            name = node.name
            if name.startswith("standard."):
                return self.model.standard(self.district, name[len("standard."):])
            if name in self.derived:
                return self.derived[name]
            return self.facts.get(name)
        if isinstance(node, Neg):
            v = self.value(node.operand)
            return None if v is None else -v
        if isinstance(node, Arith):
            a, b = self.value(node.left), self.value(node.right)
            if a is None or b is None:
                return None
            if node.op == "+":
                return a + b
            if node.op == "-":
                return a - b
            if node.op == "*":
                return a * b
            return None if b == 0 else a / b
        if isinstance(node, Call):
            values = [self.value(a) for a in node.args]
            if any(v is None for v in values):
                return None
            return min(values) if node.func == "min" else max(values)
        raise TypeError(f"not a value: {type(node).__name__}")

    def truth(self, node: Node) -> bool | None:
        if isinstance(node, Const):
            return bool(node.value)
        if isinstance(node, Truthy):
            v = self.value(node.operand)
            return None if v is None else bool(v)
        if isinstance(node, Missing):
            return self.facts.get(node.name) is None
        if isinstance(node, Member):
            v = self.value(node.operand)
            if v is None:
                return None
            return (v in node.values) != node.negate
        if isinstance(node, Compare):
            a, b = self.value(node.left), self.value(node.right)
            if a is None or b is None:
                return None
            return _compare(node.op, a, b)
        if isinstance(node, Not):
            t = self.truth(node.operand)
            return None if t is None else not t
        if isinstance(node, And):
            results = [self.truth(i) for i in node.items]
            if any(r is False for r in results):
                return False
            return None if any(r is None for r in results) else True
        if isinstance(node, Or):
            results = [self.truth(i) for i in node.items]
            if any(r is True for r in results):
                return True
            return None if any(r is None for r in results) else False
        raise TypeError(f"not a condition: {type(node).__name__}")

    def holds(self, node: Node | None) -> bool:
        return node is None or self.truth(node) is True


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "==":
        return a == b
    return a != b


def impute(model: Model, facts: Mapping[str, Any]) -> Facts:
    """The facts with the model's treatment of unknown ones applied."""
    out = dict(facts)
    for name, treatment in model.missing.items():
        if out.get(name) is None:
            out[name] = treatment.value
    return out


def assess(model: Model, facts: Mapping[str, Any]) -> Outcome:
    """Score one household's facts (Python values, None for unknown) with the model."""
    ev = Evaluator(model, impute(model, facts))
    dims = [d.base for d in model.dimensions]
    tiers: list[int] = []
    for ind in model.indicators:
        fired = -1
        for j, tier in enumerate(ind.tiers):
            if ev.truth(tier.condition) is True:
                fired = j
                break
        tiers.append(fired)
        if fired >= 0:
            dims[ind.dimension] += ind.tiers[fired].points
    dims = [min(max(v, 0.0), d.max) for v, d in zip(dims, model.dimensions, strict=True)]
    score = 0.0
    for v in dims:
        score += v
    level = model.level_of(score)
    ev.derived.update({"score": score, "level": level})
    ev.derived.update({f"dimension.{d.code}": v for d, v in zip(model.dimensions, dims, strict=True)})
    ev.derived.update({f"fired.{ind.code}": t >= 0 for ind, t in zip(model.indicators, tiers, strict=True)})
    difficulty = next((i for i, r in enumerate(model.difficulty) if ev.holds(r.condition)), -1)
    causes = [ev.holds(r.condition) for r in model.causes]
    ev.derived.update({f"cause.{r.code}": c for r, c in zip(model.causes, causes, strict=True)})
    needs = [ev.holds(r.condition) for r in model.needs]
    ev.derived.update({f"need.{r.code}": n for r, n in zip(model.needs, needs, strict=True)})
    five_types = [ev.holds(r.condition) for r in model.five_types]
    eligible = [ev.holds(p.eligible) for p in model.policies]
    receiving = [ev.holds(p.receiving) for p in model.policies]
    services = [needs[s.need] and ev.holds(s.condition) for s in model.services]
    return Outcome(tiers, dims, score, level, difficulty, causes, needs, five_types, eligible, receiving, services)


def apply_levers(model: Model, view: ViewCatalogue, facts: Mapping[str, Any], levers: Sequence[int]) -> Facts:
    """The facts after the given levers, in the model's order; each lever's values are computed on
    the facts before it; an unknown result leaves the fact as it was; results keep to the range."""
    current = impute(model, facts)
    for index in sorted(levers):
        ev = Evaluator(model, current)
        updates = {}
        for name, node in model.levers[index].assignments:
            v = ev.value(node)
            if v is None:
                continue
            f = view.by_name[name]
            if f.lo is not None and f.hi is not None and not isinstance(v, bool):
                v = min(max(float(v), f.lo), f.hi)
            updates[name] = v
        current = {**current, **updates}
    return current
