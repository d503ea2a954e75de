"""The vectorised kernel and the per-household reference agree exactly, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.rules.kernel import Kernel, Results
from scoring.rules.reference import Outcome, apply_levers, assess
from scoring.synthetic import generate


def column(r: Results, i: int) -> Outcome:
    return Outcome(
        tiers=r.tiers[:, i].tolist(), dimensions=r.dimensions[:, i].tolist(), score=float(r.score[i]),
        level=int(r.level[i]), difficulty=int(r.difficulty[i]), causes=r.causes[:, i].tolist(),
        needs=r.needs[:, i].tolist(), five_types=r.five_types[:, i].tolist(), eligible=r.eligible[:, i].tolist(),
        receiving=r.receiving[:, i].tolist(), services=r.services[:, i].tolist(),
    )


def assert_agree(kernel: Kernel, ctx, matrix: np.ndarray) -> Results:
    results = kernel.evaluate(matrix)
    for i in range(matrix.shape[1]):
        expected = assess(kernel.model, ctx.view.decode_row(matrix[:, i]))
        assert column(results, i) == expected, f"household {i} differs"
    return results


def test_agree_on_a_synthetic_sample(kernel, ctx):
    matrix, _ = generate(ctx.view, 2000, seed=7)
    results = assert_agree(kernel, ctx, matrix)
    # the sample exercises the model: every level, most indicators
    assert set(np.unique(results.level)) == {1, 2, 3}
    assert (results.tiers >= 0).any(axis=1).mean() > 0.9


def test_agree_with_unknown_facts(kernel, ctx):
    matrix, _ = generate(ctx.view, 1000, seed=11, unknown_rate=0.15)
    assert_agree(kernel, ctx, matrix)


def test_agree_after_levers(kernel, ctx):
    matrix, _ = generate(ctx.view, 300, seed=3, unknown_rate=0.05)
    rng = np.random.default_rng(5)
    masks = [rng.random(matrix.shape[1]) < 0.3 for _ in kernel.model.levers]
    env = kernel.apply_levers(kernel.env(matrix), masks)
    results = kernel.evaluate_env(env)
    for i in range(matrix.shape[1]):
        chosen = [j for j, m in enumerate(masks) if m[i]]
        facts = apply_levers(kernel.model, ctx.view, ctx.view.decode_row(matrix[:, i]), chosen)
        assert column(results, i) == assess(kernel.model, facts)


def _field_strategy(f, thresholds):
    if f.type == "bool":
        value = st.booleans()
    elif f.type == "enum":
        value = st.sampled_from(f.values) if f.values else st.sampled_from(["330106000000", "330127000000", "999999000000"])
    elif f.type == "int":
        value = st.integers(int(f.lo) - 2, int(min(f.hi, 40)) + 2)
    else:
        near = sorted(thresholds.get(f.name, set()) | {0.0, f.lo, f.hi})
        value = st.one_of(st.sampled_from(near), st.floats(f.lo - 1, min(f.hi, 1e6) + 1, allow_nan=False))
    # any field may come null: a nullable one legitimately, another as a gap in the data
    return st.one_of(st.none(), value)


def _thresholds(model):
    from scoring.rules.expressions import Compare, Const, Name, walk

    found: dict[str, set[float]] = {}
    for ind in model.indicators:
        for tier in ind.tiers:
            for node in walk(tier.condition):
                if isinstance(node, Compare) and isinstance(node.left, Name) and isinstance(node.right, Const) \
                        and isinstance(node.right.value, float):
                    found.setdefault(node.left.name, set()).add(node.right.value)
    return found


def views(ctx, model):
    thresholds = _thresholds(model)
    fields = {f.name: _field_strategy(f, thresholds) for f in ctx.view.fields}
    dropped = st.lists(st.sampled_from(ctx.view.names), max_size=6)
    return st.tuples(st.fixed_dictionaries(fields), dropped)


def test_agree_on_generated_views(kernel, ctx, model):
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(views(ctx, model), min_size=1, max_size=8))
    def check(batch):
        rows = [ctx.view.prepare(view, missing).row for view, missing in batch]
        assert_agree(kernel, ctx, np.array(rows).T.copy())

    check()


def test_small_batches_take_the_reference_path_with_the_same_results(model, ctx, kernel):
    from scoring.engine.runtime import SMALL_BATCH, ModelRuntime

    rt = ModelRuntime(model, ctx)
    matrix, _ = generate(ctx.view, SMALL_BATCH, seed=23, unknown_rate=0.1)
    small, big = rt.evaluate(matrix), kernel.evaluate(matrix)
    for name in ("tiers", "dimensions", "score", "level", "difficulty", "causes", "needs", "five_types", "eligible",
                 "receiving", "services"):
        a, b = getattr(small, name), getattr(big, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
