"""The scoring kernel: a model compiled to column operations over a whole population at once.

Facts arrive as a matrix with one row per field and one column per household (NaN for an
unknown fact). Each condition becomes a handful of NumPy operations on whole columns, with the
same three-valued logic as the reference: a comparison with NaN is neither true nor false, so
``truth`` and ``falsity`` are tracked separately wherever ``not`` needs them. The arithmetic is
done in the same order as the reference, so both agree to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.rules.expressions import And, Arith, Call, Compare, Const, Member, Missing, Name, Neg, Node, Not, Or, Truthy
from scoring.rules.model import Model
from scoring.rules.view import ViewCatalogue

Array = np.ndarray
Value = Array | float | bool


@dataclass
class Results:
    """What the model says about every household, as arrays (households along the last axis)."""

    tiers: Array  # (indicators, n) int8, -1 for none
    dimensions: Array  # (dimensions, n)
    score: Array
    level: Array  # int8
    difficulty: Array  # int8, -1 for none
    causes: Array  # (causes, n) bool
    needs: Array
    five_types: Array
    eligible: Array  # (policies, n) bool
    receiving: Array
    services: Array  # (service rules, n) bool

    def __len__(self) -> int:
        return int(self.score.shape[0])


class Env:
    """The columns of one evaluation: facts (after the model's treatment of unknown ones),
    district standards, and what scoring has found so far (score, fired indicators...)."""

    def __init__(self, kernel: Kernel, matrix: Array) -> None:
        self.kernel = kernel
        self.n = matrix.shape[1]
        self.matrix = matrix
        self.columns: dict[str, Array] = {}
        self._standards: dict[str, Value] = {}
        self._district_inverse: Array | None = None
        self._district_keys: list[str | None] = []
        self.fired: dict[str, Array] = {}

    def column(self, name: str) -> Value:
        col = self.columns.get(name)
        if col is not None:
            return col
        if name.startswith("fired."):
            col = self.fired[name[len("fired."):]] >= 0
            self.columns[name] = col
            return col
        if name.startswith("standard."):
            return self.standard(name[len("standard."):])
        k = self.kernel
        index = k.field_index[name]
        col = self.matrix[index]
        treated = k.treatments.get(name)
        if treated is not None:
            col = np.where(np.isnan(col), treated, col)
        self.columns[name] = col
        return col

    def standard(self, key: str) -> Value:
        found = self._standards.get(key)
        if found is not None:
            return found
        model = self.kernel.model
        if self.kernel.uniform_standards.get(key) is not None:
            value: Value = self.kernel.uniform_standards[key]
        else:
            if self._district_inverse is None:
                districts = self.column("district_code")
                uniques, inverse = np.unique(districts, return_inverse=True)
                self._district_inverse = inverse.reshape(-1)
                self._district_keys = [None if np.isnan(u) else f"{int(u):012d}" for u in uniques]
            table = np.array([model.standard(code, key) for code in self._district_keys], dtype=np.float64)
            value = table[self._district_inverse]
        self._standards[key] = value
        return value


class Kernel:
    """One compiled model. ``evaluate`` scores a matrix of facts (fields x households)."""

    def __init__(self, model: Model, view: ViewCatalogue) -> None:
        self.model = model
        self.view = view
        self.field_index = {f.name: f.index for f in view.fields}
        self.treatments = {name: float(view.encode_value(view.by_name[name], t.value))  # type: ignore[arg-type]
                           for name, t in model.missing.items()}
        self.uniform_standards: dict[str, float] = {}
        for key, default in model.standards_default.items():
            if all(p.get(key, default) == default for p in model.standards_by_district.values()):
                self.uniform_standards[key] = float(default)
        self._enum_codes: dict[str, dict[str, float]] = {
            f.name: {v: float(i) for i, v in enumerate(f.values)} for f in view.fields if f.values
        }
        self._points = [np.array([t.points for t in ind.tiers] + [0.0]) for ind in model.indicators]

    # ---- public -----------------------------------------------------------------------
    def env(self, matrix: Array) -> Env:
        if matrix.ndim != 2 or matrix.shape[0] != len(self.view):
            raise ValueError("facts must be a (fields, households) matrix")
        return Env(self, matrix)

    def evaluate(self, matrix: Array) -> Results:
        return self.evaluate_env(self.env(matrix))

    def score(self, matrix: Array) -> tuple[Array, Array, Array, Array]:
        """Only the score: (tiers, dimensions, score, level), without portrait or suggestions."""
        return self.score_env(self.env(matrix))

    def score_env(self, env: Env) -> tuple[Array, Array, Array, Array]:
        model, n = self.model, env.n
        dims = np.empty((len(model.dimensions), n))
        for i, d in enumerate(model.dimensions):
            dims[i] = d.base
        tiers = np.full((len(model.indicators), n), -1, dtype=np.int8)
        # Arithmetic, not masked assignment: `total += hit * points` is several times faster than
        # np.add(..., where=hit) on scattered masks, and exact (adding 0.0 changes nothing). A
        # household's tier index starts at -1 and gains j + 1 when tier j fires (at most once).
        for i, ind in enumerate(model.indicators):
            row, total = tiers[i], dims[ind.dimension]
            free: Array | None = None  # the first tier that holds wins
            for j, tier in enumerate(ind.tiers):
                holds = self._mask(self.truth(env, tier.condition), n)
                hit = holds if free is None else holds & free
                row += hit.view(np.int8) * np.int8(j + 1)
                total += hit * tier.points
                if j + 1 < len(ind.tiers):
                    free = ~holds if free is None else np.greater(free, holds, out=free)
        for d, spec in zip(dims, model.dimensions, strict=True):
            np.clip(d, 0.0, spec.max, out=d)
        score = np.zeros(n)
        for d in dims:
            score += d
        level = np.zeros(n, dtype=np.int8)
        for band in model.bands:  # bands are disjoint: each household gets exactly one level
            inside = (score >= band.lo) & (score < band.hi)
            if band.top:
                inside |= score == band.hi
            level += inside.view(np.int8) * np.int8(band.level)
        return tiers, dims, score, level

    def evaluate_env(self, env: Env) -> Results:
        model, n = self.model, env.n
        tiers, dims, score, level = self.score_env(env)
        env.columns["score"] = score
        env.columns["level"] = level.astype(np.float64)
        for d, spec in zip(dims, model.dimensions, strict=True):
            env.columns[f"dimension.{spec.code}"] = d
        env.fired = {ind.code: tiers[i] for i, ind in enumerate(model.indicators)}
        difficulty = np.full(n, -1, dtype=np.int8)
        free = np.ones(n, dtype=bool)
        for i, rule in enumerate(model.difficulty):
            holds = self._mask(self.truth(env, rule.condition), n)
            difficulty += (holds & free).view(np.int8) * np.int8(i + 1)
            np.greater(free, holds, out=free)
        causes = self._rules(env, model.causes, "cause")
        needs = self._rules(env, model.needs, "need")
        five_types = self._rules(env, model.five_types, None)
        eligible = self._stack(env, [p.eligible for p in model.policies])
        receiving = self._stack(env, [p.receiving for p in model.policies])
        services = self._stack(env, [s.condition for s in model.services])
        for row, s in zip(services, model.services, strict=True):
            row &= needs[s.need]
        return Results(tiers, dims, score, level, difficulty, causes, needs, five_types, eligible, receiving, services)

    def apply_levers(self, env: Env, masks: Sequence[Array]) -> Env:
        """A new environment whose facts are changed by the levers selected per household
        (``masks[i]`` says where lever i applies), in the model's order, like the reference."""
        matrix = np.array([np.broadcast_to(env.column(f.name), (env.n,)) for f in self.view.fields])
        current = Env(self, matrix)
        for lever, mask in zip(self.model.levers, masks, strict=True):
            if not mask.any():
                continue
            updates = []
            for name, node in lever.assignments:
                f = self.view.by_name[name]
                raw = self.value(current, node)
                if isinstance(raw, str):  # an enum value
                    raw = self._enum_codes[name][raw]
                new = np.broadcast_to(np.asarray(raw, dtype=np.float64), (env.n,))
                if f.lo is not None and f.hi is not None:
                    new = np.clip(new, f.lo, f.hi)
                updates.append((f.index, np.where(mask & ~np.isnan(new), new, matrix[f.index])))
            for index, column in updates:
                matrix[index] = column
            current = Env(self, matrix)
        return current

    # ---- expressions --------------------------------------------------------------------
    def _stack(self, env: Env, conditions: Sequence[Node | None]) -> Array:
        out = np.empty((len(conditions), env.n), dtype=bool)
        for row, condition in zip(out, conditions, strict=True):
            row[...] = True if condition is None else self.truth(env, condition)
        return out

    def _rules(self, env: Env, rules: Sequence[Any], space: str | None) -> Array:
        out = self._stack(env, [r.condition for r in rules])
        if space is not None:
            for r, row in zip(rules, out, strict=True):
                env.columns[f"{space}.{r.code}"] = row
        return out

    @staticmethod
    def _mask(value: Value, n: int) -> Array:
        if isinstance(value, np.ndarray):
            return value
        return np.full(n, bool(value))

    def value(self, env: Env, node: Node) -> Value:
        if isinstance(node, Const):
            return node.value  # type: ignore[return-value]
        if isinstance(node, Name):
            return env.column(node.name)
        if isinstance(node, Neg):
            return -self.value(env, node.operand)  # type: ignore[operator]
        if isinstance(node, Arith):
            a, b = self.value(env, node.left), self.value(env, node.right)
            if node.op == "+":
                return a + b  # type: ignore[operator]
            if node.op == "-":
                return a - b  # type: ignore[operator]
            if node.op == "*":
                return a * b  # type: ignore[operator]
            with np.errstate(divide="ignore", invalid="ignore"):
                quotient = np.divide(a, b)
            return np.where(np.asarray(b) == 0, np.nan, quotient)
        if isinstance(node, Call):
            values = [self.value(env, a) for a in node.args]
            pick = np.minimum if node.func == "min" else np.maximum
            out = values[0]
            for v in values[1:]:
                out = pick(out, v)
            return out
        raise TypeError(f"not a value: {type(node).__name__}")

    def _operands(self, env: Env, node: Compare) -> tuple[Value, Value]:
        left, right = node.left, node.right
        if isinstance(right, Const) and isinstance(right.value, str):
            return self.value(env, left), self._encode_const(left, right.value)
        if isinstance(left, Const) and isinstance(left.value, str):
            return self._encode_const(right, left.value), self.value(env, right)
        a, b = self.value(env, left), self.value(env, right)
        return (float(a) if isinstance(a, bool) else a), (float(b) if isinstance(b, bool) else b)

    def _encode_const(self, other: Node, text: str) -> float:
        assert isinstance(other, Name)
        codes = self._enum_codes.get(other.name)
        return float(text) if codes is None else codes[text]

    def truth(self, env: Env, node: Node) -> Value:
        if isinstance(node, Const):
            return bool(node.value)
        if isinstance(node, Truthy):
            v = self.value(env, node.operand)
            return v if v.dtype == np.bool_ else v == 1.0  # type: ignore[union-attr]
        if isinstance(node, Missing):
            return np.isnan(env.column(node.name))
        if isinstance(node, Member):
            return self._member(env, node, negate=node.negate)
        if isinstance(node, Compare):
            a, b = self._operands(env, node)
            return _compare(node.op, a, b)
        if isinstance(node, Not):
            return self.falsity(env, node.operand)
        if isinstance(node, And):
            out = self.truth(env, node.items[0])
            for item in node.items[1:]:
                out = out & self.truth(env, item)  # type: ignore[operator]
            return out
        if isinstance(node, Or):
            out = self.truth(env, node.items[0])
            for item in node.items[1:]:
                out = out | self.truth(env, item)  # type: ignore[operator]
            return out
        raise TypeError(f"not a condition: {type(node).__name__}")

    def falsity(self, env: Env, node: Node) -> Value:
        if isinstance(node, Const):
            return not bool(node.value)
        if isinstance(node, Truthy):
            v = self.value(env, node.operand)
            return ~v if v.dtype == np.bool_ else v == 0.0  # type: ignore[union-attr,operator]
        if isinstance(node, Missing):
            return ~np.isnan(env.column(node.name))
        if isinstance(node, Member):
            return self._member(env, node, negate=not node.negate)
        if isinstance(node, Compare):
            a, b = self._operands(env, node)
            return _compare(_NEGATE[node.op], a, b)
        if isinstance(node, Not):
            return self.truth(env, node.operand)
        if isinstance(node, And):
            out = self.falsity(env, node.items[0])
            for item in node.items[1:]:
                out = out | self.falsity(env, item)  # type: ignore[operator]
            return out
        if isinstance(node, Or):
            out = self.falsity(env, node.items[0])
            for item in node.items[1:]:
                out = out & self.falsity(env, item)  # type: ignore[operator]
            return out
        raise TypeError(f"not a condition: {type(node).__name__}")

    def _member(self, env: Env, node: Member, *, negate: bool) -> Value:
        col = self.value(env, node.operand)
        codes = self._enum_codes.get(node.operand.name) if isinstance(node.operand, Name) else None
        hit: Any = False
        for v in node.values:
            target = codes[v] if codes is not None and isinstance(v, str) else float(v)  # type: ignore[arg-type]
            hit = hit | (col == target)
        if not negate:
            return hit
        return ~hit & ~np.isnan(col)


_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def _compare(op: str, a: Value, b: Value) -> Value:
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == ">=":
        return a >= b  # type: ignore[operator]
    if op == "==":
        return a == b
    # NaN != x is True in IEEE arithmetic; an unknown fact makes the comparison unknown instead.
    return (a != b) & ~np.isnan(a) & ~np.isnan(b)
