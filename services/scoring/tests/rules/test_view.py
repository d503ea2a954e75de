"""Preparing a household's view never fails: gaps and bad values are noted and treated."""

from __future__ import annotations

import math

import numpy as np

from scoring.rules.reference import assess
from scoring.synthetic import generate, to_views


def a_view(ctx, seed=1):
    matrix, missing = generate(ctx.view, 1, seed=seed)
    return to_views(ctx.view, matrix, missing)[0]


def test_round_trip_of_a_generated_view(ctx):
    matrix, missing = generate(ctx.view, 50, seed=2)
    for i, (view, said_missing) in enumerate(to_views(ctx.view, matrix, missing)):
        prepared = ctx.view.prepare(view, said_missing)
        assert np.array_equal(prepared.row, matrix[:, i], equal_nan=True)
        assert not prepared.invalid and not prepared.clamped


def test_missing_and_absent_facts_are_named(ctx):
    view, _ = a_view(ctx)
    view = dict(view)
    del view["members_total"]              # absent altogether
    view["head_age"] = None                # null in a nullable field the registry calls missing
    view["housing_unsafe"] = None          # null in a field that must have a value
    view["months_since_exit"] = None       # null, nullable, not called missing: not applicable
    prepared = ctx.view.prepare(view, ["head_age"])
    assert {"members_total", "head_age", "housing_unsafe"} <= set(prepared.missing)
    assert "months_since_exit" not in prepared.missing
    for name in ("members_total", "head_age", "housing_unsafe", "months_since_exit"):
        assert math.isnan(prepared.row[ctx.view.by_name[name].index])


def test_wrong_types_and_unknown_enum_values_become_unknown(ctx):
    view, _ = a_view(ctx)
    view = {**view, "register_status": "millionaire", "members_total": "three", "single_parent": "yes",
            "children_under_6": 1.5, "deposits": float("inf"), "district_code": "nowhere"}
    prepared = ctx.view.prepare(view)
    assert set(prepared.invalid) == {"register_status", "members_total", "single_parent", "children_under_6",
                                     "deposits", "district_code"}


def test_out_of_range_values_are_clamped(ctx):
    view, _ = a_view(ctx)
    view = {**view, "members_total": 500, "income_monthly_per_capita": -300.0, "employment_rate": 7.5}
    prepared = ctx.view.prepare(view)
    assert set(prepared.clamped) == {"members_total", "income_monthly_per_capita", "employment_rate"}
    row = prepared.row
    assert row[ctx.view.by_name["members_total"].index] == 30
    assert row[ctx.view.by_name["income_monthly_per_capita"].index] == 0
    assert row[ctx.view.by_name["employment_rate"].index] == 1


def test_a_view_of_nothing_still_scores(ctx, model, kernel):
    prepared = ctx.view.prepare({})
    assert len(prepared.missing) == len(ctx.view)
    results = kernel.evaluate(prepared.row.reshape(-1, 1))
    outcome = assess(model, ctx.view.decode_row(prepared.row))
    assert outcome.score == results.score[0]
    # with nothing known, only the imputed facts can fire (arrears treated as 0: nothing fires)
    assert (results.tiers[:, 0] == -1).all()
    assert outcome.score == sum(d.base for d in model.dimensions)


def test_the_input_hash_is_stable_and_sensitive(ctx):
    from scoring.rules.view import input_hash

    view, missing = a_view(ctx)
    assert input_hash(view, missing) == input_hash(dict(reversed(list(view.items()))), list(reversed(missing)))
    assert input_hash(view, missing) != input_hash({**view, "members_total": view["members_total"] + 1}, missing)


def test_preparing_a_batch_is_preparing_each(ctx):
    import random

    views = [(dict(v), m) for v, m in to_views(ctx.view, *generate(ctx.view, 300, seed=17, unknown_rate=0.05))]
    views += [(dict(v), m) for v, m in to_views(ctx.view, *generate(ctx.view, 300, seed=18))]  # nothing said missing
    bad = [("members_total", 500), ("income_monthly_per_capita", -3.0), ("register_status", "rich"),
           ("single_parent", "yes"), ("children_under_6", 1.5), ("deposits", float("inf")), ("single_parent", 1),
           ("district_code", "x"), ("head_age", None), ("employment_rate", 7.0), ("members_total", True),
           ("housing_status", 3)]
    rng = random.Random(3)
    for view, _ in views:
        for _ in range(rng.randrange(4)):
            key, value = rng.choice(bad)
            view[key] = value
        if rng.random() < 0.2:
            view.pop(rng.choice(list(view)))
    # A nullable field null (not applicable), absent, and null but said missing; a field due
    # absent: each read the same way alone and in a batch (a batch reads full views in one go).
    nullable = next(f.name for f in ctx.view.fields if f.nullable)
    base, _ = views[0]
    views += [({**base, nullable: None}, []), ({k: v for k, v in base.items() if k != nullable}, []),
              ({**base, nullable: None}, [nullable]), ({k: v for k, v in base.items() if k != "members_total"}, [])]
    _, batch = ctx.view.prepare_many([v for v, _ in views], [m for _, m in views])
    for (view, missing), got in zip(views, batch, strict=True):
        one = ctx.view.prepare(view, missing)
        assert np.array_equal(one.row, got.row, equal_nan=True)
        assert (one.missing, one.invalid, one.clamped) == (got.missing, got.invalid, got.clamped)
    assert nullable not in batch[-4].missing and nullable in batch[-3].missing and nullable in batch[-2].missing
    assert "members_total" in batch[-1].missing


def test_canonical_json_is_sorted_compact_utf8_and_keeps_what_orjson_refuses():
    import json

    from scoring.rules.view import canonical_json

    view = {"z": 1.5, "a": None, "district_code": "330106000000", "note": "中文", "flag": True, "n": 3}
    text = canonical_json(view)
    assert text == '{"a":null,"district_code":"330106000000","flag":true,"n":3,"note":"中文","z":1.5}'
    assert text == json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # An integer past 64 bits is not a view value, but it must not crash the consumer.
    assert canonical_json({"b": 2**70, "a": 1}) == '{"a":1,"b":1180591620717411303424}'
