"""The small language of conditions and values, parsed into a tree both implementations walk.

Python's own parser reads the text (``mode="eval"``), and only a whitelist of node kinds is
turned into the tree below; nothing is ever evaluated by Python. Names are fields of the scoring
view, ``standard.NAME`` (a district standard), or -- where a section allows them -- ``score``,
``level``, ``dimension.CODE``, ``fired.CODE``, ``cause.CODE``, ``need.CODE``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

MAX_LENGTH = 1000
MAX_DEPTH = 40
NAMESPACES = ("standard", "dimension", "fired", "cause", "need")
COMPARISONS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


class ExpressionError(ValueError):
    """The text is not an expression of the language; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Const:
    value: float | str | bool


@dataclass(frozen=True, slots=True)
class Name:
    name: str  # a field, or "namespace.key"


@dataclass(frozen=True, slots=True)
class Arith:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Node


@dataclass(frozen=True, slots=True)
class Call:
    func: str  # min | max
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Missing:
    name: str


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Member:
    operand: Node
    values: tuple[float | str | bool, ...]
    negate: bool


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class Truthy:
    """A boolean name used as a condition (``single_parent``, ``fired.major_illness``)."""

    operand: Node


Node = Const | Name | Arith | Neg | Call | Missing | Compare | Member | And | Or | Not | Truthy


def parse(text: str) -> Node:
    """Parse a condition or a value expression; raises ExpressionError naming the problem."""
    if not isinstance(text, str):
        raise ExpressionError("an expression must be text")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression (column {exc.offset or 0})") from None
    return _convert(tree.body, 0)


def _convert(node: ast.AST, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise ExpressionError("nested too deeply")
    d = depth + 1
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bool, int, float, str)):
            return Const(node.value if isinstance(node.value, (bool, str)) else float(node.value))
        raise ExpressionError("only numbers, 'text' and True/False are constants")
    if isinstance(node, ast.Name):
        if node.id in ("true", "True"):
            return Const(True)
        if node.id in ("false", "False"):
            return Const(False)
        return Name(node.id)
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in NAMESPACES:
            return Name(f"{node.value.id}.{node.attr}")
        raise ExpressionError(f"unknown name space (use one of {', '.join(NAMESPACES)})")
    if isinstance(node, ast.BoolOp):
        items = tuple(_convert(v, d) for v in node.values)
        return And(items) if isinstance(node.op, ast.And) else Or(items)
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return Not(_convert(node.operand, d))
        if isinstance(node.op, ast.USub):
            inner = _convert(node.operand, d)
            if isinstance(inner, Const) and isinstance(inner.value, float):
                return Const(-inner.value)
            return Neg(inner)
        if isinstance(node.op, ast.UAdd):
            return _convert(node.operand, d)
        raise ExpressionError("unsupported operator")
    if isinstance(node, ast.BinOp):
        op = ARITHMETIC.get(type(node.op))
        if op is None:
            raise ExpressionError("only + - * / are allowed in arithmetic")
        return Arith(op, _convert(node.left, d), _convert(node.right, d))
    if isinstance(node, ast.Compare):
        return _compare(node, d)
    if isinstance(node, ast.Call):
        return _call(node, d)
    raise ExpressionError(f"{type(node).__name__} is not part of the rule language")


def _compare(node: ast.Compare, depth: int) -> Node:
    parts: list[Node] = []
    left = _convert(node.left, depth)
    for op_node, right_node in zip(node.ops, node.comparators, strict=True):
        if isinstance(op_node, (ast.In, ast.NotIn)):
            if not isinstance(right_node, (ast.List, ast.Tuple, ast.Set)) or not right_node.elts:
                raise ExpressionError("`in` takes a non-empty list of constants: x in ['a', 'b']")
            values = []
            for elt in right_node.elts:
                item = _convert(elt, depth)
                if not isinstance(item, Const):
                    raise ExpressionError("`in` takes a list of constants")
                values.append(item.value)
            parts.append(Member(left, tuple(values), isinstance(op_node, ast.NotIn)))
            left = Const(0.0)  # a chain after `in` makes no sense; refused below
            if len(node.ops) > 1:
                raise ExpressionError("`in` cannot be chained with other comparisons")
            continue
        op = COMPARISONS.get(type(op_node))
        if op is None:
            raise ExpressionError("unsupported comparison (use < <= > >= == != in)")
        right = _convert(right_node, depth)
        parts.append(Compare(op, left, right))
        left = right
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _call(node: ast.Call, depth: int) -> Node:
    if not isinstance(node.func, ast.Name) or node.keywords:
        raise ExpressionError("only min(...), max(...) and missing(field) may be called")
    name = node.func.id
    if name == "missing":
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            raise ExpressionError("missing() takes one field name")
        return Missing(node.args[0].id)
    if name in ("min", "max"):
        if len(node.args) < 2:
            raise ExpressionError(f"{name}() takes two or more values")
        return Call(name, tuple(_convert(a, depth) for a in node.args))
    raise ExpressionError(f"unknown function {name}() (use min, max or missing)")


def walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, (Arith, Compare)):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, (Neg, Not, Truthy)):
        yield from walk(node.operand)
    elif isinstance(node, Member):
        yield from walk(node.operand)
    elif isinstance(node, Call):
        for a in node.args:
            yield from walk(a)
    elif isinstance(node, (And, Or)):
        for item in node.items:
            yield from walk(item)


def names_read(node: Node) -> list[str]:
    """Every name the expression reads, in order of first appearance (missing() included)."""
    seen: dict[str, None] = {}
    for n in walk(node):
        if isinstance(n, Name):
            seen.setdefault(n.name, None)
        elif isinstance(n, Missing):
            seen.setdefault(n.name, None)
    return list(seen)
