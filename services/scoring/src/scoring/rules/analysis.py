"""Static checks of expressions: names, types, value ranges, division by zero, and whether a
condition can ever hold.

Every field has a kind (number, bool, enum) and, for numbers, a range (config/scoring/
fields.yaml). Value expressions are given an interval by interval arithmetic; a comparison whose
sides can never meet, a conjunction of incompatible ranges on one field, an enum value the field
does not have, or a tier that earlier tiers always catch, can never fire. The analysis is sound
in one direction only: what it calls impossible is impossible, not the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scoring.rules.expressions import (
    NEGATED, And, Arith, Call, Compare, Const, Member, Missing, Name, Neg, Node, Not, Or, Truthy,
)

Report = Callable[[str, str], None]  # (problem code, message)


@dataclass(frozen=True)
class Kind:
    """What a name or an expression is: a number within [lo, hi], a boolean, or an enum."""

    kind: str  # number | bool | enum | district | text
    lo: float = -math.inf
    hi: float = math.inf
    integer: bool = False
    values: tuple[str, ...] | None = None
    field: str | None = None  # the view field, when the expression is one
    const: float | str | bool | None = None  # a value known without any household


Resolver = Callable[[str], Kind | None]


class Analyser:
    """Checks one expression against the names a section of the model may read."""

    def __init__(self, resolve: Resolver, report: Report) -> None:
        self.resolve = resolve
        self.report = report

    # ---- values -------------------------------------------------------------------------
    def value(self, node: Node) -> Kind | None:
        if isinstance(node, Const):
            v = node.value
            if isinstance(v, bool):
                return Kind("bool", const=v)
            if isinstance(v, str):
                return Kind("text", const=v)
            return Kind("number", v, v, integer=float(v).is_integer(), const=v)
        if isinstance(node, Name):
            kind = self.resolve(node.name)
            if kind is None:
                self._unknown(node.name)
            return kind
        if isinstance(node, Neg):
            k = self._number(node.operand)
            return None if k is None else Kind("number", -k.hi, -k.lo, k.integer, const=_neg(k.const))
        if isinstance(node, Arith):
            return self._arith(node)
        if isinstance(node, Call):
            kinds = [self._number(a) for a in node.args]
            if any(k is None for k in kinds):
                return None
            pick = min if node.func == "min" else max
            consts = [k.const for k in kinds]  # type: ignore[union-attr]
            const = pick(consts) if all(isinstance(c, float) for c in consts) else None
            return Kind("number", pick(k.lo for k in kinds), pick(k.hi for k in kinds),  # type: ignore[union-attr]
                        all(k.integer for k in kinds), const=const)  # type: ignore[union-attr]
        self.report("type_mismatch", "a condition is used where a value is expected")
        return None

    def _number(self, node: Node) -> Kind | None:
        k = self.value(node)
        if k is not None and k.kind != "number":
            self.report("type_mismatch", f"{_describe(node)} is not a number and cannot be used in arithmetic")
            return None
        return k

    def _arith(self, node: Arith) -> Kind | None:
        left, right = self._number(node.left), self._number(node.right)
        if left is None or right is None:
            return None
        const = None
        if isinstance(left.const, float) and isinstance(right.const, float):
            if node.op == "/" and right.const == 0:
                const = None
            else:
                const = _apply(node.op, left.const, right.const)
        if node.op == "/":
            if right.lo <= 0 <= right.hi:
                where = f"the divisor {_describe(node.right)}"
                self.report("division_by_zero", f"{where} can be 0 (its range is {_fmt(right.lo)}..{_fmt(right.hi)}); "
                            "guard it, e.g. max(x, 1)")
                return Kind("number", const=None)
            quotients = [left.lo / right.lo, left.lo / right.hi, left.hi / right.lo, left.hi / right.hi]
            return Kind("number", min(quotients), max(quotients), const=const)
        if node.op == "*":
            products = [_mul(a, b) for a in (left.lo, left.hi) for b in (right.lo, right.hi)]
            return Kind("number", min(products), max(products), left.integer and right.integer, const=const)
        if node.op == "+":
            return Kind("number", left.lo + right.lo, left.hi + right.hi, left.integer and right.integer, const=const)
        return Kind("number", left.lo - right.hi, left.hi - right.lo, left.integer and right.integer, const=const)

    def _unknown(self, name: str) -> None:
        space, _, key = name.partition(".")
        if not key:
            self.report("unknown_field", f"{name} is not a field of the scoring view")
        elif space == "standard":
            self.report("unknown_parameter", f"standard.{key} is not a standard of the model")
        elif space in ("fired", "dimension"):
            self.report("unknown_reference", f"{name}: no such {'indicator' if space == 'fired' else 'dimension'} "
                        "(or it cannot be read here)")
        else:
            self.report("unknown_reference", f"{name} cannot be read here")

    # ---- conditions ---------------------------------------------------------------------
    def condition(self, node: Node) -> tuple[Node, bool]:
        """The condition with bare booleans made explicit, and whether it can ever hold."""
        if isinstance(node, Name):
            kind = self.value(node)
            if kind is not None and kind.kind != "bool":
                self.report("type_mismatch", f"{node.name} is not a yes/no fact; compare it, e.g. {node.name} >= 1")
            return Truthy(node), True
        if isinstance(node, Const):
            if not isinstance(node.value, bool):
                self.report("type_mismatch", "a number or text is not a condition")
                return node, True
            return node, node.value
        if isinstance(node, Not):
            inner, _ = self.condition(node.operand)
            return Not(inner), True
        if isinstance(node, Or):
            parts = [self.condition(i) for i in node.items]
            return Or(tuple(p[0] for p in parts)), any(p[1] for p in parts)
        if isinstance(node, And):
            parts = [self.condition(i) for i in node.items]
            items = tuple(p[0] for p in parts)
            possible = all(p[1] for p in parts) and self._compatible(items)
            return And(items), possible
        if isinstance(node, Missing):
            kind = self.resolve(node.name)
            if kind is None or kind.field is None:
                self.report("unknown_field", f"missing({node.name}): not a field of the scoring view")
            return node, True
        if isinstance(node, Member):
            return node, self._member(node)
        if isinstance(node, Compare):
            return node, self._compare(node)
        self.report("type_mismatch", f"{_describe(node)} is a value, not a condition")
        return node, True

    def _member(self, node: Member) -> bool:
        kind = self.value(node.operand)
        if kind is None:
            return True
        if kind.kind == "enum":
            bad = [v for v in node.values if not isinstance(v, str) or v not in (kind.values or ())]
            if bad:
                self.report("unknown_enum_value", f"{_describe(node.operand)} has no value {', '.join(map(repr, bad))} "
                            f"(its values: {', '.join(kind.values or ())})")
                return node.negate
            return True
        if kind.kind == "number":
            if not all(isinstance(v, float) for v in node.values):
                self.report("type_mismatch", f"{_describe(node.operand)} is a number; list numbers after `in`")
                return True
            return node.negate or any(kind.lo <= v <= kind.hi for v in node.values)  # type: ignore[operator]
        self.report("type_mismatch", f"`in` needs an enum or a number, not {kind.kind}")
        return True

    def _compare(self, node: Compare) -> bool:
        left, right = self.value(node.left), self.value(node.right)
        if left is None or right is None:
            return True
        if left.kind == "number" and right.kind == "number":
            return _satisfiable(node.op, left, right)
        if "enum" in (left.kind, right.kind) or "district" in (left.kind, right.kind):
            enum, other = (left, right) if left.kind in ("enum", "district") else (right, left)
            if node.op not in ("==", "!="):
                self.report("type_mismatch", "enum values can only be compared with == or != (or `in`)")
                return True
            if other.kind != "text":
                self.report("type_mismatch", f"{enum.field or 'an enum'} must be compared with a 'value' in quotes")
                return True
            if enum.kind == "district":
                ok = isinstance(other.const, str) and len(other.const) == 12 and other.const.isdigit()
                if not ok:
                    self.report("unknown_enum_value", "a district is compared with a 12-digit district code")
                return True
            if other.const not in (enum.values or ()):
                self.report("unknown_enum_value", f"{enum.field} has no value {other.const!r} "
                            f"(its values: {', '.join(enum.values or ())})")
                return node.op == "!="
            return True
        if left.kind == "bool" and right.kind == "bool" and node.op in ("==", "!="):
            return True
        self.report("type_mismatch", f"cannot compare {left.kind} with {right.kind}")
        return True

    def _compatible(self, items: tuple[Node, ...]) -> bool:
        """False when single-field constraints of a conjunction cannot all hold together."""
        regions: dict[str, Region] = {}
        for item in items:
            found = self.region(item)
            if found is None:
                continue
            name, region = found
            regions[name] = region if name not in regions else regions[name].intersect(region)
            if regions[name].empty:
                return False
        return True

    # ---- single-field regions (for conjunctions and tiers) -------------------------------
    def region(self, node: Node) -> tuple[str, Region] | None:
        """The set of values of one field for which an atomic condition holds, if it is one."""
        if isinstance(node, Truthy) and isinstance(node.operand, Name):
            kind = self.resolve(node.operand.name)
            if kind is not None and kind.kind == "bool":
                return node.operand.name, Region.values_of({True})
            return None
        if isinstance(node, Member) and isinstance(node.operand, Name):
            kind = self.resolve(node.operand.name)
            if kind is None or kind.kind != "enum" or not kind.values:
                return None
            chosen = set(node.values) & set(kind.values)
            return node.operand.name, Region.values_of(set(kind.values) - chosen if node.negate else chosen)
        if not isinstance(node, Compare):
            return None
        op, left, right = node.op, node.left, node.right
        if not isinstance(left, Name):
            if not isinstance(right, Name):
                return None
            op, left, right = _mirror(op), right, left
        kind = self.resolve(left.name)
        other = _quiet(self.resolve, right)
        if kind is None or other is None or other.const is None:
            return None
        if kind.kind == "bool" and isinstance(other.const, bool) and op in ("==", "!="):
            return left.name, Region.values_of({other.const if op == "==" else not other.const})
        if kind.kind == "enum" and isinstance(other.const, str) and kind.values and op in ("==", "!="):
            chosen = {other.const} & set(kind.values)
            return left.name, Region.values_of(chosen if op == "==" else set(kind.values) - chosen)
        if kind.kind == "number" and isinstance(other.const, float) and not isinstance(other.const, bool):
            return left.name, Region.compare(op, float(other.const), kind.integer)
        return None


def _quiet(resolve: Resolver, node: Node) -> Kind | None:
    """The kind of an expression without reporting anything (it was checked already)."""
    return Analyser(resolve, lambda _c, _m: None).value(node)


@dataclass(frozen=True)
class Span:
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    @property
    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open))


class Region:
    """A set of values of one field: numeric spans (integers closed) or a set of enum/bool values."""

    def __init__(self, spans: list[Span] | None = None, values: frozenset | None = None, integer: bool = False) -> None:
        self.spans = spans
        self.values = values
        self.integer = integer

    @classmethod
    def values_of(cls, values: set) -> Region:
        return cls(values=frozenset(values))

    @classmethod
    def compare(cls, op: str, c: float, integer: bool) -> Region:
        inf = math.inf
        if integer:
            spans = {
                "<": [Span(-inf, math.ceil(c) - 1)], "<=": [Span(-inf, math.floor(c))],
                ">": [Span(math.floor(c) + 1, inf)], ">=": [Span(math.ceil(c), inf)],
                "==": [Span(c, c)] if c.is_integer() else [],
                "!=": [Span(-inf, c - 1), Span(c + 1, inf)] if c.is_integer() else [Span(-inf, inf)],
            }[op]
        else:
            spans = {
                "<": [Span(-inf, c, hi_open=True)], "<=": [Span(-inf, c)],
                ">": [Span(c, inf, lo_open=True)], ">=": [Span(c, inf)], "==": [Span(c, c)],
                "!=": [Span(-inf, c, hi_open=True), Span(c, inf, lo_open=True)],
            }[op]
        return cls(spans=[s for s in spans if not s.empty], integer=integer)

    @property
    def empty(self) -> bool:
        return not self.values if self.values is not None else not self.spans

    def intersect(self, other: Region) -> Region:
        if self.values is not None or other.values is not None:
            if self.values is None or other.values is None:
                return self
            return Region(values=self.values & other.values)
        out = []
        for a in self.spans or ():
            for b in other.spans or ():
                lo, lo_open = max((a.lo, a.lo_open), (b.lo, b.lo_open), key=lambda t: (t[0], t[1]))
                hi, hi_open = min((a.hi, not a.hi_open), (b.hi, not b.hi_open), key=lambda t: (t[0], t[1]))
                span = Span(lo, hi, lo_open, not hi_open)
                if not span.empty:
                    out.append(span)
        return Region(spans=out, integer=self.integer)

    def subtract(self, other: Region) -> Region:
        if self.values is not None or other.values is not None:
            if self.values is None or other.values is None:
                return self
            return Region(values=self.values - other.values)
        spans = list(self.spans or ())
        for b in other.spans or ():
            nxt = []
            for a in spans:
                if self.integer:
                    left, right = Span(a.lo, min(a.hi, b.lo - 1)), Span(max(a.lo, b.hi + 1), a.hi)
                else:
                    left = Span(a.lo, min(a.hi, b.lo), a.lo_open, a.hi_open if a.hi < b.lo else not b.lo_open)
                    right = Span(max(a.lo, b.hi), a.hi, a.lo_open if a.lo > b.hi else not b.hi_open, a.hi_open)
                nxt.extend(s for s in (left, right) if not s.empty)
            spans = nxt
        return Region(spans=spans, integer=self.integer)

    def within(self, lo: float, hi: float) -> Region:
        return self.intersect(Region(spans=[Span(lo, hi)], integer=self.integer)) if self.spans is not None else self


def _satisfiable(op: str, a: Kind, b: Kind) -> bool:
    if op == "<":
        return a.lo < b.hi
    if op == "<=":
        return a.lo <= b.hi
    if op == ">":
        return a.hi > b.lo
    if op == ">=":
        return a.hi >= b.lo
    if op == "==":
        if a.hi < b.lo or b.hi < a.lo:
            return False
        if a.integer and b.const is not None and isinstance(b.const, float) and not b.const.is_integer():
            return False
        return not (b.integer and a.const is not None and isinstance(a.const, float) and not a.const.is_integer())
    return not (a.lo == a.hi == b.lo == b.hi)


def _mirror(op: str) -> str:
    return {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]


def negate(op: str) -> str:
    return NEGATED[op]


def _apply(op: str, a: float, b: float) -> float:
    return {"+": a + b, "-": a - b, "*": a * b}[op] if op != "/" else a / b


def _mul(a: float, b: float) -> float:
    # 0 x inf is 0 for ranges: an unbounded factor times zero stays zero.
    return 0.0 if a == 0 or b == 0 else a * b


def _neg(v: object) -> float | None:
    return -v if isinstance(v, float) else None


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _describe(node: Node) -> str:
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Const):
        return repr(node.value)
    return "the expression"
