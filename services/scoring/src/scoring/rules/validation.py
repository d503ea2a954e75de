"""Validating a scoring model document and compiling it: a report naming every problem.

Structure first (pydantic: unknown keys, wrong types), then meaning: every name exists, the
dimension maxima add up to the total and no dimension can exceed its maximum, the bands cover
the scale without gap or overlap, every indicator tier can fire, no divisor can be zero, every
policy of the catalogue has a rule and every suggested service answers its need. The model is
compiled only when there is no error; warnings (e.g. fewer indicators than the brief asks for)
do not block it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from scoring.rules import document as d
from scoring.rules.analysis import Analyser, Kind, Region
from scoring.rules.catalogues import Catalogues
from scoring.rules.expressions import ExpressionError, Node, names_read, parse
from scoring.rules.model import (
    BandSpec, DimensionSpec, IndicatorSpec, LeverSpec, Model, PolicySpec, RuleSpec, ServiceSpec, TierSpec, Treatment,
)
from scoring.rules.view import ViewCatalogue

BRIEF_INDICATORS = 50
BRIEF_FIELDS = 100


class Problem(BaseModel):
    severity: Literal["error", "warning"]
    code: str = Field(examples=["never_fires"])
    location: str = Field(examples=["indicators[12] (major_illness).tiers[1].when"])
    message: str = Field(examples=["can never hold: major_illness_members >= 40 is outside its range 0..30"])


class ValidationReport(BaseModel):
    valid: bool
    errors: int
    warnings: int
    problems: list[Problem]
    summary: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class RulesContext:
    """What a model is checked against: the view contract and the shared catalogues."""

    view: ViewCatalogue
    catalogues: Catalogues


def compile_model(raw: Any, ctx: RulesContext) -> tuple[Model | None, ValidationReport]:
    try:
        doc = d.ModelDocument.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(
                severity="error",
                code="unknown_key" if e["type"] == "extra_forbidden" else "schema",
                location=".".join(str(p) for p in e["loc"]) or "(document)",
                message="not a key of a model document" if e["type"] == "extra_forbidden" else str(e["msg"]),
            )
            for e in exc.errors()
        ]
        return None, _report(problems, {})
    compiler = _Compiler(doc, ctx, raw if isinstance(raw, dict) else doc.model_dump(by_alias=True))
    model = compiler.run()
    report = _report(compiler.problems, compiler.summary)
    return (model if report.valid else None), report


def _report(problems: list[Problem], summary: dict[str, Any]) -> ValidationReport:
    errors = sum(p.severity == "error" for p in problems)
    return ValidationReport(valid=errors == 0, errors=errors, warnings=len(problems) - errors, problems=problems,
                            summary=summary)


class _Compiler:
    def __init__(self, doc: d.ModelDocument, ctx: RulesContext, raw: dict[str, Any]) -> None:
        self.doc = doc
        self.ctx = ctx
        self.raw = raw
        self.problems: list[Problem] = []
        self.summary: dict[str, Any] = {}

    def error(self, code: str, location: str, message: str) -> None:
        self.problems.append(Problem(severity="error", code=code, location=location, message=message))

    def warn(self, code: str, location: str, message: str) -> None:
        self.problems.append(Problem(severity="warning", code=code, location=location, message=message))

    # ---- the whole document -------------------------------------------------------------
    def run(self) -> Model | None:
        dims = self._dimensions()
        bands = self._bands()
        self._standards()
        missing = self._missing()
        indicators = self._indicators(dims)
        portrait = self._portrait(dims, indicators)
        policies = self._policies()
        services = self._services(portrait[2])
        levers = self._levers()
        fields_read = {n for ind in indicators for n in ind.fields if "." not in n}
        if any(n.startswith("standard.") for ind in indicators for n in ind.fields):
            fields_read.add("district_code")
        self.summary = {
            "dimensions": {x.code: {"max": x.max, "base": x.base} for x in dims},
            "indicators": len(indicators),
            "tiers": sum(len(i.tiers) for i in indicators),
            "fields_read": len(fields_read),
            "fields_in_view": len(self.ctx.view),
            "policies": len(policies),
            "service_rules": len(services),
            "levers": len(levers),
        }
        if len(indicators) < BRIEF_INDICATORS:
            self.warn("below_brief", "indicators", f"{len(indicators)} indicator kinds; the brief asks for {BRIEF_INDICATORS}+")
        if len(fields_read) < BRIEF_FIELDS:
            self.warn("below_brief", "indicators", f"the indicators read {len(fields_read)} fields; the brief asks for {BRIEF_FIELDS}+")
        if any(p.severity == "error" for p in self.problems):
            return None
        difficulty, causes, needs, five_types = portrait
        return Model(
            version=self.doc.version, title_zh=self.doc.title_zh, title_en=self.doc.title_en, total=self.doc.total,
            dimensions=tuple(dims), bands=tuple(bands), standards_default=dict(self.doc.standards.default),
            standards_by_district={k: dict(v) for k, v in self.doc.standards.districts.items()}, missing=missing,
            indicators=tuple(indicators), difficulty=difficulty, causes=causes, needs=needs, five_types=five_types,
            policies=tuple(policies), services=tuple(services), levers=tuple(levers), document=self.raw,
        )

    def _dimensions(self) -> list[DimensionSpec]:
        out: list[DimensionSpec] = []
        seen: set[str] = set()
        for i, x in enumerate(self.doc.dimensions):
            where = f"dimensions[{i}] ({x.code})"
            if x.code in seen:
                self.error("duplicate_code", where, f"dimension {x.code} appears twice")
            seen.add(x.code)
            if x.code not in d.DIMENSIONS:
                self.error("unknown_dimension", where, f"{x.code} is not one of the seven dimensions ({', '.join(d.DIMENSIONS)})")
            base = x.max if x.base is None else x.base
            if base > x.max:
                self.error("dimension_over_maximum", where, f"starts at {base:g}, above its maximum {x.max:g}")
            out.append(DimensionSpec(x.code, x.name_zh, x.name_en, x.max, base, x.rationale))
        for code in d.DIMENSIONS:
            if code not in seen:
                self.error("dimension_missing", "dimensions", f"the {code} dimension is missing")
        total = sum(x.max for x in self.doc.dimensions)
        if not math.isclose(total, self.doc.total, abs_tol=1e-9):
            self.error("weights_do_not_add_up", "dimensions",
                       f"the maxima add up to {total:g}, not to the total {self.doc.total:g}")
        return out

    def _bands(self) -> list[BandSpec]:
        bands = sorted(self.doc.bands, key=lambda b: (b.from_, b.to))
        total = self.doc.total
        out: list[BandSpec] = []
        levels = [b.level for b in bands]
        if len(set(levels)) != len(levels):
            self.error("bands_level_repeated", "bands", "two bands give the same level")
        if levels and levels != sorted(levels):
            self.error("bands_level_order", "bands", "a higher score must give a higher level (level 1 is the weakest)")
        if levels and min(levels) != 1:
            self.error("bands_level_order", "bands", "the lowest band must be level 1")
        for i, b in enumerate(bands):
            where = f"bands (level {b.level})"
            if b.from_ >= b.to:
                self.error("band_empty", where, f"from {b.from_:g} is not below to {b.to:g}")
            if i == 0 and b.from_ > 0:
                self.error("bands_gap", where, f"scores from 0 to {b.from_:g} fall in no band")
            if i == 0 and b.from_ < 0:
                self.error("bands_out_of_range", where, "a band starts below 0")
            if i > 0:
                prev = bands[i - 1]
                if prev.to < b.from_:
                    self.error("bands_gap", where, f"scores from {prev.to:g} to {b.from_:g} fall in no band")
                elif prev.to > b.from_:
                    self.error("bands_overlap", where,
                               f"overlaps level {prev.level}: scores from {b.from_:g} to {prev.to:g} are in both")
            out.append(BandSpec(b.level, b.from_, b.to, b.to == total, b.name_zh, b.name_en))
        if bands and bands[-1].to < total:
            self.error("bands_gap", f"bands (level {bands[-1].level})", f"scores from {bands[-1].to:g} to {total:g} fall in no band")
        if bands and bands[-1].to > total:
            self.error("bands_out_of_range", f"bands (level {bands[-1].level})", f"reaches {bands[-1].to:g}, above the total {total:g}")
        return out

    def _standards(self) -> None:
        known = set(self.ctx.view.district_codes)
        names = set(self.doc.standards.default)
        for code, params in self.doc.standards.districts.items():
            where = f"standards.districts.{code}"
            if not (len(code) == 12 and code.isdigit()):
                self.error("schema", where, "a district is named by its 12-digit code")
            elif known and code not in known:
                self.warn("unknown_district", where, "not a district of config/areas.yaml")
            for name in params:
                if name not in names:
                    self.error("unknown_parameter", f"{where}.{name}", f"{name} has no default in standards.default")

    def _missing(self) -> dict[str, Treatment]:
        out: dict[str, Treatment] = {}
        for name, t in self.doc.missing.items():
            where = f"missing.{name}"
            f = self.ctx.view.by_name.get(name)
            if f is None:
                self.error("unknown_field", where, f"{name} is not a field of the scoring view")
                continue
            number = self.ctx.view.encode_value(f, t.treat_as)
            if number is None:
                self.error("type_mismatch", where, f"treat_as is not a value of {name} ({f.type})")
                continue
            if f.lo is not None and f.hi is not None and not (f.lo <= number <= f.hi):
                self.error("treatment_out_of_range", where, f"treat_as is outside the range of {name}")
                continue
            out[name] = Treatment(self.ctx.view.decode_value(f, number), t.note_zh, t.note_en)
        return out

    # ---- names each section may read -----------------------------------------------------
    def _field_kind(self, name: str) -> Kind | None:
        f = self.ctx.view.by_name.get(name)
        if f is None:
            return None
        if f.type in ("int", "float", "date"):
            lo = -math.inf if f.lo is None else f.lo
            hi = math.inf if f.hi is None else f.hi
            return Kind("number", lo, hi, f.type == "int", field=name)
        if f.type == "bool":
            return Kind("bool", field=name)
        if f.values is None:
            return Kind("district", field=name)
        return Kind("enum", values=f.values, field=name)

    def _standard_kind(self, key: str) -> Kind | None:
        default = self.doc.standards.default.get(key)
        if default is None:
            return None
        values = [default] + [p[key] for p in self.doc.standards.districts.values() if key in p]
        const = float(default) if all(v == default for v in values) else None
        return Kind("number", min(values), max(values), all(float(v).is_integer() for v in values), const=const)

    def _resolver(self, extra: Callable[[str], Kind | None] | None = None) -> Callable[[str], Kind | None]:
        def resolve(name: str) -> Kind | None:
            if name.startswith("standard."):
                return self._standard_kind(name[len("standard."):])
            kind = self._field_kind(name)
            if kind is None and extra is not None:
                return extra(name)
            return kind

        return resolve

    def _expression(self, text: str, where: str, resolve: Callable[[str], Kind | None],
                    *, condition: bool = True) -> tuple[Node, bool] | None:
        try:
            node = parse(text)
        except ExpressionError as exc:
            self.error("syntax", where, str(exc))
            return None
        analyser = Analyser(resolve, lambda code, msg: self.error(code, where, msg))
        before = len(self.problems)
        if condition:
            node, possible = analyser.condition(node)
        else:
            analyser.value(node)
            possible = True
        if len(self.problems) > before:
            return None
        return node, possible

    # ---- indicators ----------------------------------------------------------------------
    def _indicators(self, dims: list[DimensionSpec]) -> list[IndicatorSpec]:
        dim_index = {x.code: i for i, x in enumerate(dims)}
        resolve = self._resolver()
        analyser = Analyser(resolve, lambda _c, _m: None)
        positive = [0.0] * len(dims)
        out: list[IndicatorSpec] = []
        seen: set[str] = set()
        for i, ind in enumerate(self.doc.indicators):
            where = f"indicators[{i}] ({ind.code})"
            if ind.code in seen:
                self.error("duplicate_code", where, f"indicator {ind.code} appears twice")
            seen.add(ind.code)
            di = dim_index.get(ind.dimension)
            if di is None:
                self.error("unknown_dimension", where + ".dimension", f"{ind.dimension} is not a dimension of the model")
            tiers: list[TierSpec] = []
            regions: dict[str, list[Region]] = {}
            for j, tier in enumerate(ind.tiers):
                tw = f"{where}.tiers[{j}]"
                if tier.points == 0:
                    self.error("no_points", tw + ".points", "a tier worth 0 points changes nothing")
                if di is not None and abs(tier.points) > dims[di].max:
                    self.error("points_exceed_dimension", tw + ".points",
                               f"{tier.points:g} points exceed the {dims[di].code} maximum of {dims[di].max:g}")
                compiled = self._expression(tier.when, tw + ".when", resolve)
                if compiled is None:
                    continue
                node, possible = compiled
                if not possible:
                    self.error("never_fires", tw + ".when", "can never hold: its thresholds lie outside the "
                               "fields' ranges or contradict each other")
                else:
                    self._check_shadowed(analyser, node, regions, tw)
                tiers.append(TierSpec(node, tier.points, tier.reason_zh, tier.reason_en))
            if di is not None:
                positive[di] += max([t.points for t in ind.tiers if t.points > 0], default=0.0)
            out.append(IndicatorSpec(ind.code, di if di is not None else -1, ind.name_zh, ind.name_en, tuple(tiers)))
        for i, x in enumerate(dims):
            if x.base + positive[i] > x.max + 1e-9:
                self.error("dimension_over_maximum", f"dimensions[{i}] ({x.code})",
                           f"its base {x.base:g} plus the positive points of its indicators ({positive[i]:g}) "
                           f"could reach {x.base + positive[i]:g}, above its maximum {x.max:g}")
        return out

    def _check_shadowed(self, analyser: Analyser, node: Node, regions: dict[str, list[Region]], where: str) -> None:
        """A tier whose one-field condition earlier tiers on that field always catch never fires."""
        found = analyser.region(node)
        if found is None:
            return
        name, region = found
        kind = analyser.resolve(name)
        if kind is not None and kind.kind == "number":
            region = region.within(kind.lo, kind.hi)
            if region.empty:
                self.error("never_fires", where + ".when", f"can never hold: outside the range of {name} "
                           f"({kind.lo:g}..{kind.hi:g})")
                return
        rest = region
        for earlier in regions.get(name, []):
            rest = rest.subtract(earlier)
        if rest.empty and regions.get(name):
            self.error("never_fires", where + ".when", "never fires: an earlier tier always holds whenever this one does")
        regions.setdefault(name, []).append(region)

    # ---- portrait -------------------------------------------------------------------------
    def _portrait(self, dims: list[DimensionSpec], indicators: list[IndicatorSpec]) -> tuple[tuple[RuleSpec, ...], ...]:
        p = self.doc.portrait
        codes = {ind.code for ind in indicators}
        level_hi = max((b.level for b in self.doc.bands), default=1)
        base: dict[str, Kind] = {
            "score": Kind("number", 0, self.doc.total),
            "level": Kind("number", 1, level_hi, integer=True),
            **{f"dimension.{x.code}": Kind("number", 0, x.max) for x in dims},
            **{f"fired.{c}": Kind("bool") for c in codes},
        }
        cause_names = {f"cause.{r.code}": Kind("bool") for r in p.causes}
        need_names = {f"need.{r.code}": Kind("bool") for r in p.needs}
        sections: list[tuple[str, list[d.Rule], dict[str, Kind], tuple[str, ...] | None]] = [
            ("difficulty", p.difficulty, base, d.DIFFICULTIES),
            ("causes", p.causes, base, None),
            ("needs", p.needs, {**base, **cause_names}, tuple(self.ctx.catalogues.need_types)),
            ("five_types", p.five_types, {**base, **cause_names, **need_names}, d.FIVE_TYPES),
        ]
        self.portrait_names = {**base, **cause_names, **need_names}
        out = []
        for section, rules, names, allowed in sections:
            resolve = self._resolver(names.get)
            specs = []
            seen: set[str] = set()
            for i, r in enumerate(rules):
                where = f"portrait.{section}[{i}] ({r.code})"
                if r.code in seen:
                    self.error("duplicate_code", where, f"{r.code} appears twice")
                seen.add(r.code)
                if allowed is not None and r.code not in allowed:
                    self.error("unknown_code", where, f"{r.code} is not one of {', '.join(allowed)}")
                compiled = self._expression(r.when, where + ".when", resolve)
                if compiled is None:
                    continue
                if not compiled[1]:
                    self.error("never_fires", where + ".when", "can never hold")
                specs.append(RuleSpec(r.code, r.name_zh, r.name_en, compiled[0], r.reason_zh, r.reason_en))
            out.append(tuple(specs))
        if p.difficulty and p.difficulty[-1].when.strip().lower() != "true":
            self.warn("difficulty_not_total", "portrait.difficulty",
                      "the last rule is not `true`: a household matching no rule gets no difficulty")
        return tuple(out)  # type: ignore[return-value]

    # ---- suggestions ------------------------------------------------------------------------
    def _policies(self) -> list[PolicySpec]:
        catalogue = self.ctx.catalogues.policies
        resolve = self._resolver(self.portrait_names.get)
        by_code: dict[str, PolicySpec] = {}
        for i, rule in enumerate(self.doc.policies):
            where = f"policies[{i}] ({rule.policy})"
            entry = catalogue.get(rule.policy)
            if entry is None:
                self.error("unknown_policy", where, f"{rule.policy} is not in config/catalogues/policies.yaml")
                continue
            if rule.policy in by_code:
                self.error("duplicate_code", where, f"{rule.policy} has two rules")
                continue
            eligible = self._expression(rule.eligible_when, where + ".eligible_when", resolve)
            receiving = self._expression(rule.receiving_when, where + ".receiving_when", resolve)
            if eligible is None or receiving is None:
                continue
            if not eligible[1]:
                self.error("never_fires", where + ".eligible_when", "no household could ever be eligible")
            by_code[rule.policy] = PolicySpec(rule.policy, entry.category, entry.name_zh, entry.name_en, eligible[0],
                                              receiving[0], rule.receiving_basis, rule.rule_zh, rule.rule_en)
        for code in catalogue:
            if code not in by_code and not any(r.policy == code for r in self.doc.policies):
                self.error("policy_without_rule", "policies", f"the catalogue's policy {code} has no eligibility rule")
        return [by_code[c] for c in catalogue if c in by_code]

    def _services(self, needs: tuple[RuleSpec, ...]) -> list[ServiceSpec]:
        need_index = {r.code: i for i, r in enumerate(needs)}
        catalogue = self.ctx.catalogues.services
        resolve = self._resolver(self.portrait_names.get)
        out: list[ServiceSpec] = []
        for need, rules in self.doc.services.items():
            if need not in self.ctx.catalogues.need_types:
                self.error("unknown_need", f"services.{need}", f"{need} is not a need type of the services catalogue")
                continue
            if need not in need_index:
                self.warn("need_without_rule", f"services.{need}", f"no portrait rule yields the need {need}")
                continue
            for i, rule in enumerate(rules):
                where = f"services.{need}[{i}] ({rule.service})"
                entry = catalogue.get(rule.service)
                if entry is None:
                    self.error("unknown_service", where, f"{rule.service} is not in config/catalogues/services.yaml")
                    continue
                if need not in entry.need_types:
                    self.error("service_need_mismatch", where, f"{rule.service} does not answer the need {need} "
                               f"(it answers {', '.join(entry.need_types)})")
                    continue
                condition = None
                if rule.when is not None:
                    compiled = self._expression(rule.when, where + ".when", resolve)
                    if compiled is None:
                        continue
                    if not compiled[1]:
                        self.error("never_fires", where + ".when", "can never hold")
                    condition = compiled[0]
                out.append(ServiceSpec(need_index[need], rule.service, condition))
        return out

    def _levers(self) -> list[LeverSpec]:
        resolve = self._resolver()
        out: list[LeverSpec] = []
        seen: set[str] = set()
        for i, lever in enumerate(self.doc.levers):
            where = f"levers[{i}] ({lever.code})"
            if lever.code in seen:
                self.error("duplicate_code", where, f"lever {lever.code} appears twice")
            seen.add(lever.code)
            assignments: list[tuple[str, Node]] = []
            for name, value in lever.set.items():
                aw = f"{where}.set.{name}"
                f = self.ctx.view.by_name.get(name)
                if f is None:
                    self.error("unknown_field", aw, f"{name} is not a field of the scoring view")
                    continue
                node = self._lever_value(value, f, aw, resolve)
                if node is not None:
                    assignments.append((name, node))
            out.append(LeverSpec(lever.code, lever.label_zh, lever.label_en, tuple(assignments)))
        return out

    def _lever_value(self, value: float | bool | str, f: Any, where: str, resolve: Callable[[str], Kind | None]) -> Node | None:
        from scoring.rules.expressions import Const

        if not isinstance(value, str):
            number = self.ctx.view.encode_value(f, value)
            if number is None:
                self.error("type_mismatch", where, f"not a value of {f.name} ({f.type})")
                return None
            if f.lo is not None and f.hi is not None and not (f.lo <= number <= f.hi):
                self.error("value_out_of_range", where, f"outside the range of {f.name} ({f.lo:g}..{f.hi:g})")
                return None
            return Const(value if isinstance(value, bool) else float(value))
        compiled = self._expression(value, where, resolve, condition=False)
        if compiled is None:
            return None
        kind = Analyser(resolve, lambda _c, _m: None).value(compiled[0])
        expected = "number" if f.type in ("int", "float") else ("bool" if f.type == "bool" else "text")
        if kind is None or kind.kind != expected:
            self.error("type_mismatch", where, f"{f.name} takes a {expected}")
            return None
        if expected == "text" and kind.const not in (f.values or ()):
            self.error("unknown_enum_value", where, f"{f.name} has no such value")
            return None
        return compiled[0]


def fields_of(node: Node) -> list[str]:
    """The view fields an expression reads (standards count as the district)."""
    out: dict[str, None] = {}
    for name in names_read(node):
        if name.startswith("standard."):
            out.setdefault("district_code", None)
        elif "." not in name and name not in ("score", "level"):
            out.setdefault(name, None)
    return list(out)
