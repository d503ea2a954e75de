"""A model ready to run: its kernel, and the JSON of every reason, portrait and suggestion part
serialised once, so that writing a whole city's assessments is string joins, not json.dumps."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from scoring.rules.catalogues import Catalogues
from scoring.rules.kernel import Kernel, Results
from scoring.rules.model import Model
from scoring.rules.reference import assess
from scoring.rules.validation import RulesContext


SMALL_BATCH = 8


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def num(value: float) -> str:
    """A number as compact JSON: 12 rather than 12.0, 12.5 as it is."""
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


class ModelRuntime:
    """One model version with its kernel and pre-serialised fragments."""

    def __init__(self, model: Model, ctx: RulesContext) -> None:
        self.model = model
        self.ctx = ctx
        self.kernel = Kernel(model, ctx.view)
        dims = model.dimensions
        self.dimension_codes = [d.code for d in dims]
        self.tokens = [[f"{ind.code}:{j}" for j in range(len(ind.tiers))] for ind in model.indicators]
        # As assessment.updated carries a fired indicator: its reasons are the model's (the same
        # for every household), read with the model version, not repeated in every event.
        self.indicator_json = [
            [dumps({"code": ind.code, "dimension": dims[ind.dimension].code, "points": _points(t.points)})
             for t in ind.tiers]
            for ind in model.indicators
        ]
        # Every (indicator, tier) in one flat list: fired pairs are gathered with one fancy index.
        offsets = np.cumsum([0] + [len(ind.tiers) for ind in model.indicators])
        self.flat_offset = offsets[:-1].astype(np.intp)
        self.flat_tokens = np.array([t for row in self.tokens for t in row], dtype=object)
        self.flat_json = np.array([j for row in self.indicator_json for j in row], dtype=object)
        self.difficulty_codes = [r.code for r in model.difficulty]
        self.cause_codes = [r.code for r in model.causes]
        self.need_codes = [r.code for r in model.needs]
        self.type_codes = [r.code for r in model.five_types]
        self.policy_codes = [p.code for p in model.policies]
        self.service_pairs = [(s.service, model.needs[s.need].code) for s in model.services]

    def evaluate(self, matrix: np.ndarray) -> Results:
        """Score households (fields x households). A handful at a time -- one household changed --
        goes through the reference, which the tests hold to exact agreement with the kernel: for
        so few, NumPy's per-call overhead (some 800 calls) costs more than plain Python."""
        n = matrix.shape[1]
        if n > SMALL_BATCH:
            return self.kernel.evaluate(matrix)
        view = self.ctx.view
        outcomes = [assess(self.model, view.decode_row(matrix[:, i])) for i in range(n)]

        def stack(name: str, dtype: type) -> np.ndarray:
            return np.array([getattr(o, name) for o in outcomes], dtype=dtype).reshape(n, -1).T.copy()

        return Results(
            tiers=stack("tiers", np.int8), dimensions=stack("dimensions", np.float64),
            score=np.array([o.score for o in outcomes]), level=np.array([o.level for o in outcomes], dtype=np.int8),
            difficulty=np.array([o.difficulty for o in outcomes], dtype=np.int8), causes=stack("causes", bool),
            needs=stack("needs", bool), five_types=stack("five_types", bool), eligible=stack("eligible", bool),
            receiving=stack("receiving", bool), services=stack("services", bool),
        )

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def catalogues(self) -> Catalogues:
        return self.ctx.catalogues

    def fired_map(self, fired: str) -> dict[str, int]:
        """``code:tier`` tokens as {code: tier}."""
        out = {}
        for token in fired.split():
            code, _, tier = token.partition(":")
            out[code] = int(tier)
        return out


def _points(points: float) -> float | int:
    return int(points) if float(points).is_integer() else points
