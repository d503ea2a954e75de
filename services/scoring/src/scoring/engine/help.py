"""What would help: the smallest sets of levers (changes of facts that help can bring) that lift
a household into the next band, found by scoring every combination with the model itself.

Every set of up to ``max_levers`` levers that changes something is applied to copies of the
household's facts, and all of them are scored in one kernel run (a few hundred columns). The
smallest sets that reach the next band are returned, best score first; when none does, the sets
that come closest.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from scoring.engine.runtime import ModelRuntime, num

MAX_OPTIONS = 5


@dataclass(frozen=True)
class Option:
    levers: tuple[int, ...]
    score: float
    level: int
    changes: list[tuple[str, object, object]]
    removed: list[str]
    added: list[str]


@dataclass(frozen=True)
class Help:
    score: float
    level: int
    target_level: int | None
    target_score: float | None
    lifted: bool
    options: list[Option]
    levers_considered: int
    combinations: int


def what_would_help(rt: ModelRuntime, row: np.ndarray, max_levers: int) -> Help:
    model, kernel, view = rt.model, rt.kernel, rt.ctx.view
    base_env = kernel.env(row.reshape(-1, 1).copy())
    base = kernel.evaluate_env(base_env)
    score, level = float(base.score[0]), int(base.level[0])
    higher = sorted((b for b in model.bands if b.level > level), key=lambda b: b.level)
    if not higher:
        return Help(score, level, None, None, False, [], 0, 0)
    target = higher[0]
    # Levers that change at least one fact of this household.
    singles = [(j,) for j in range(len(model.levers))]
    single_env = kernel.apply_levers(_replicate(kernel, base_env, len(singles)), _masks(len(model.levers), singles))
    start = _columns(base_env, view)
    useful = [j for j in range(len(model.levers))
              if not np.array_equal(_columns(single_env, view)[:, j], start[:, 0], equal_nan=True)]
    combos = [c for k in range(1, max_levers + 1) for c in itertools.combinations(useful, k)]
    if not combos:
        return Help(score, level, target.level, target.lo, False, [], len(useful), 0)
    env = kernel.apply_levers(_replicate(kernel, base_env, len(combos)), _masks(len(model.levers), combos))
    results = kernel.evaluate_env(env)
    after = _columns(env, view)
    lifted = np.flatnonzero(results.level > level)
    if lifted.size:
        smallest = min(len(combos[i]) for i in lifted)
        chosen = [i for i in lifted if len(combos[i]) == smallest]
    else:
        chosen = list(range(len(combos)))
    chosen.sort(key=lambda i: (-results.score[i], len(combos[i]), combos[i]))
    before_fired = {model.indicators[k].code for k in np.flatnonzero(base.tiers[:, 0] >= 0)}
    options = []
    for i in chosen[:MAX_OPTIONS]:
        fired = {model.indicators[k].code for k in np.flatnonzero(results.tiers[:, i] >= 0)}
        changes = [
            (f.name, view.decode_value(f, float(start[f.index, 0])), view.decode_value(f, float(after[f.index, i])))
            for f in view.fields
            if not np.array_equal(start[f.index, 0], after[f.index, i], equal_nan=True)
        ]
        options.append(Option(combos[i], float(results.score[i]), int(results.level[i]), changes,
                              sorted(before_fired - fired), sorted(fired - before_fired)))
    return Help(score, level, target.level, target.lo, bool(lifted.size), options, len(useful), len(combos))


def sentences(rt: ModelRuntime, option: Option) -> tuple[str, str]:
    levers = [rt.model.levers[j] for j in option.levers]
    zh = "如果" + "、".join(lv.label_zh for lv in levers) + f",评分将为{num(option.score)}分({option.level}级)。"
    en_parts = [lv.label_en for lv in levers]
    joined = en_parts[0] if len(en_parts) == 1 else ", ".join(en_parts[:-1]) + " and " + en_parts[-1]
    en = f"If {joined}, it would score {num(option.score)} (level {option.level})."
    return zh, en


def _replicate(kernel, env, n):  # type: ignore[no-untyped-def]
    return kernel.env(np.repeat(_columns(env, kernel.view), n, axis=1))


def _columns(env, view) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The facts of an environment as a (fields, n) matrix, with the model's treatments applied."""
    return np.array([np.broadcast_to(env.column(f.name), (env.n,)) for f in view.fields], dtype=np.float64)


def _masks(levers: int, combos: list[tuple[int, ...]]) -> list[np.ndarray]:
    masks = [np.zeros(len(combos), dtype=bool) for _ in range(levers)]
    for i, combo in enumerate(combos):
        for j in combo:
            masks[j][i] = True
    return masks
