"""Rows and events are built column by column; per-household texts are rendered per combination."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scoring.engine.records import FEW, Subjects, by_combination, payloads


@pytest.mark.parametrize("n", [500, FEW + 1, FEW, 1])  # a few households row by row, more by combination
@pytest.mark.parametrize("k", [0, 1, 5, 64, 65, 130])  # up to 64 columns as one integer key, more packed
def test_each_household_gets_the_text_of_its_own_items(k, n):
    rng = np.random.default_rng(k)
    mask = rng.random((n, k)) < 0.2
    mask[:n // 10] = mask[n // 10:2 * (n // 10)]  # households sharing a combination
    items = [f"i{j}" for j in range(k)]
    spaced, counted = by_combination(mask, items, lambda g: " ".join(g), lambda g: str(len(g)))
    for row, s, c in zip(mask, spaced, counted, strict=True):
        expected = [items[j] for j in np.flatnonzero(row)]
        assert s == " ".join(expected) and c == str(len(expected))


def test_no_households():
    assert by_combination(np.zeros((0, 3), dtype=bool), ["a", "b", "c"], " ".join) == [[]]


def test_payloads_are_the_subjects_json_all_ascii():
    """Each payload is one join of its row's pieces; strings other than codes go through JSON with
    non-ASCII characters escaped (the same value once parsed, half the memory of a payload)."""
    labels = ["张*明户", 'a"b\\c', "plain"]
    subjects = Subjects(
        household_id=["h1", "h2", "h3"], household_version=[1, 2, 3], area_code=["330105001001"] * 3,
        township_code=["330105001000"] * 3, district_code=["330105000000"] * 3, label_masked=labels,
        input_hash=["x"] * 3, facts=["{}"] * 3, triggers=["[]", '[{"code":"member_born"}]', "[]"],
        household_type=[None, "dibao", "off_register"], member_ages=["[]", "[45,8]", "[]"],
    )
    bodies = payloads(
        assessment_ids=["a1", "a2", "a3"], subjects=subjects, scores=[82.0, 59.5, 90.0], levels=[2, 1, 3],
        previous_levels=[None, 2, 3], previous_scores=[None, 61.0, 90.0], dimensions=['{"source":10}'] * 3,
        indicators=["[]"] * 3, cause="model_activated", model_version="hz-2026.1",
        portraits=['{"difficulty":null}'] * 3, suggestions=['{"policies":[],"services":[]}'] * 3,
        assessed_at="2026-11-28T12:00:00Z",
    )
    parsed = [json.loads(b) for b in bodies]
    assert all(b.isascii() for b in bodies)
    assert [p["label_masked"] for p in parsed] == labels
    assert [p["household_type"] for p in parsed] == [None, "dibao", "off_register"]
    assert [(p["score"], p["previous_level"], p["previous_score"]) for p in parsed] == [(82, None, None), (59.5, 2, 61),
                                                                                        (90, 3, 90)]
    assert parsed[1]["triggers"] == [{"code": "member_born"}] and parsed[1]["member_ages"] == [45, 8]
    assert [p["household_id"] for p in parsed] == ["h1", "h2", "h3"] and parsed[0]["cause"] == "model_activated"
    assert '"score":82,' in bodies[0]  # whole numbers as integers


def test_a_household_built_alone_gets_the_texts_it_gets_in_a_batch(model, ctx):
    """One change from the feed is built row by row, a batch by combination: the same texts."""
    from datetime import UTC, datetime

    from scoring.engine.records import build
    from scoring.engine.runtime import ModelRuntime
    from scoring.synthetic import generate

    rt = ModelRuntime(model, ctx)
    n = 40
    matrix, _ = generate(ctx.view, n, seed=11)
    results = rt.kernel.evaluate(matrix)
    subjects = Subjects(
        household_id=[f"h{i}" for i in range(n)], household_version=[1] * n, area_code=["330105001001"] * n,
        township_code=["330105001000"] * n, district_code=["330105000000"] * n, label_masked=["张*明户"] * n,
        input_hash=["x"] * n, facts=["{}"] * n, triggers=["[]"] * n, household_type=[None] * n, member_ages=["[]"] * n,
    )
    now = datetime(2026, 11, 29, tzinfo=UTC)
    together = build(rt, results, subjects, {}, "household_changed", now)
    skip = {0}  # the assessment ids are each build's own

    def texts(batch, i):
        return [column[i] for k, column in enumerate(batch.assessment_columns) if k not in skip], batch.events[i][2]

    for i in range(n):
        one = {f: getattr(results, f)[..., i:i + 1] for f in results.__dataclass_fields__}
        alone = build(rt, type(results)(**one), Subjects(*([getattr(subjects, f)[i]] for f in Subjects.__slots__)),
                      {}, "household_changed", now)
        (row, body), (row_in_batch, body_in_batch) = texts(alone, 0), texts(together, i)
        assert row == row_in_batch
        assert json.loads(body) | {"assessment_id": None} == json.loads(body_in_batch) | {"assessment_id": None}
