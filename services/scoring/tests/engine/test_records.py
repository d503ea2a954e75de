"""Rows and events are built column by column; per-household texts are rendered per combination."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.engine.records import by_combination


@pytest.mark.parametrize("k", [0, 1, 5, 64, 65, 130])  # up to 64 columns as one integer key, more packed
def test_each_household_gets_the_text_of_its_own_items(k):
    rng = np.random.default_rng(k)
    mask = rng.random((500, k)) < 0.2
    mask[:50] = mask[50:100]  # households sharing a combination
    items = [f"i{j}" for j in range(k)]
    spaced, counted = by_combination(mask, items, lambda g: " ".join(g), lambda g: str(len(g)))
    for row, s, c in zip(mask, spaced, counted, strict=True):
        expected = [items[j] for j in np.flatnonzero(row)]
        assert s == " ".join(expected) and c == str(len(expected))


def test_no_households():
    assert by_combination(np.zeros((0, 3), dtype=bool), ["a", "b", "c"], " ".join) == [[]]
