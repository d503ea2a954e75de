"""From kernel results to rows: assessments, current assessments and ``assessment.updated`` events.

One function serves every path -- a consumer batch of a few households and the rescore of a
whole city -- so that both write exactly the same things. It is written for the city-wide case:
results are turned into Python lists once, fired indicators are gathered with one ``nonzero``,
and every string that households share (reasons, portraits, suggestions) is serialised once.
Rows stay small: portraits and suggestions are stored as lists of codes, and the difference from
the previous assessment is computed when it is read (it is a function of the two rows).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np

from servicekit.ids import time_ordered_ids

from scoring.engine.runtime import ModelRuntime, num
from scoring.rules.kernel import Results
from scoring.rules.view import ViewCatalogue

HOUSEHOLD_TYPE = "register_status"  # the view field that says the household's type
UNKNOWN_AGES = "[]"  # member ages the registry never sent

ASSESSMENT_COLUMNS = (
    "id", "household_id", "number", "household_version", "model_version", "score", "level", "effective_level",
    "previous_id", "previous_score", "previous_level", "dimensions", "fired", "difficulty", "causes", "needs",
    "five_types", "eligible", "receiving", "services", "facts", "input_hash", "content_hash", "cause", "triggers",
    "area_code", "township_code", "district_code", "label_masked", "household_type", "assessed_at",
)
CURRENT_COLUMNS = (
    "household_id", "assessment_id", "number", "household_version", "model_version", "score", "level",
    "effective_level", "difficulty", "five_types", "needs", "unclaimed_policies", "area_code", "township_code",
    "district_code", "label_masked", "content_hash", "input_hash", "assessed_at", "etag", "reviewed_level",
    "review_id", "review_basis_level",
)


@dataclass(frozen=True, slots=True)
class Subjects:
    """The households to assess, column by column, as scoring holds them (their facts are a
    separate matrix, column i for household i)."""

    household_id: Sequence[str]
    household_version: Sequence[int]
    area_code: Sequence[str]
    township_code: Sequence[str]
    district_code: Sequence[str]
    label_masked: Sequence[str]
    input_hash: Sequence[str]
    facts: Sequence[str]  # JSON: {"missing": [...], "invalid": [...], "clamped": [...]}
    triggers: Sequence[str]  # JSON list of the triggers that caused it ("[]")
    household_type: Sequence[str | None]  # the register status (dibao, dibian, tekun, off_register)
    member_ages: Sequence[str]  # JSON list: the living members' ages, oldest first (UNKNOWN_AGES)

    def __len__(self) -> int:
        return len(self.household_id)


class Previous(NamedTuple):
    """What the household's current assessment says, for the next one and for reviews."""

    assessment_id: str
    number: int
    score: float
    level: int
    effective_level: int
    content_hash: str
    input_hash: str
    model_version: str
    etag: int
    reviewed_level: int | None
    review_id: str | None
    review_basis_level: int | None


@dataclass
class Batch:
    assessments: list[tuple] = field(default_factory=list)  # ASSESSMENT_COLUMNS
    current: list[tuple] = field(default_factory=list)  # CURRENT_COLUMNS
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (event id, household id, payload JSON)
    levels: dict[int, int] = field(default_factory=dict)
    # The same rows column by column (``build(..., rows=False)`` makes only these: a rescore's
    # worker process encodes columns for COPY).
    assessment_columns: tuple[Sequence[Any], ...] = ()
    current_columns: tuple[Sequence[Any], ...] = ()


# ---- codes as stored, and as JSON ------------------------------------------------------------

def spaced(codes: Iterable[str]) -> str:
    """Codes as ' a b ' (a list filter is then LIKE '% a %' on any database)."""
    joined = " ".join(codes)
    return f" {joined} " if joined else ""


PORTRAIT = '{{"difficulty":{},"causes":{},"needs":{},"five_types":{}}}'
SUGGESTIONS = '{{"policies":[{}],"services":[{}]}}'


def portrait_json(difficulty: str, causes: Sequence[str], needs: Sequence[str], types: Sequence[str]) -> str:
    return PORTRAIT.format(f'"{difficulty}"' if difficulty else "null", _json_list(causes), _json_list(needs),
                           _json_list(types))


def suggestions_json(policy_order: Sequence[str], eligible: Sequence[str], receiving: Sequence[str],
                     services: Sequence[str]) -> str:
    """``services`` as 'code/need' tokens."""
    e, r = set(eligible), set(receiving)
    policies = ",".join(
        f'{{"code":"{c}","eligible":{"true" if c in e else "false"},"receiving":{"true" if c in r else "false"}}}'
        for c in policy_order if c in e or c in r
    )
    items = ",".join(f'{{"code":"{c}","need_type":"{n}"}}' for c, _, n in (s.partition("/") for s in services))
    return SUGGESTIONS.format(policies, items)


def _quoted(text: str) -> str:
    """A JSON string; identifiers and area codes need no escaping, anything else goes through json
    with other characters than ASCII escaped (``\\u5f20`` for 张): the same JSON value, and a payload
    that is all ASCII is half the memory of one with a single Chinese character, and copied to
    PostgreSQL without re-encoding (the feed parses payloads and writes them out again)."""
    return f'"{text}"' if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text else json.dumps(text)


def household_types(view: ViewCatalogue, matrix: np.ndarray) -> list[str | None]:
    """Each household's type as matching and alerts name it: its register status (None when
    unknown), read from the facts matrix (fields x households)."""
    field = view.by_name[HOUSEHOLD_TYPE]
    codes = matrix[view.names.index(HOUSEHOLD_TYPE)]
    names = np.array([*(field.values or ()), None], dtype=object)
    return names[np.where(np.isnan(codes), len(names) - 1, codes).astype(np.intp)].tolist()


# ---- building a batch ------------------------------------------------------------------------

# Up to this many households a batch's texts are built row by row (see ``by_combination``).
FEW = 8


def by_combination(mask: np.ndarray, items: Sequence[str], *renders: Callable[[list[str]], str]) -> list[list[str]]:
    """For each of ``renders``, its text per household (row of ``mask``) from the items whose
    column is set, in column order. Households share few combinations (causes, needs, policies,
    services...): each distinct row is rendered once and the texts are picked by NumPy, where a
    list per household cost a third of building a city's rows."""
    n, k = mask.shape
    if n == 0 or k == 0:
        return [[render([])] * n for render in renders]
    if n <= FEW:  # one change from the feed: NumPy's sorting and picking cost more than they save
        groups = [[items[j] for j in np.flatnonzero(row).tolist()] for row in mask]
        return [[render(g) for g in groups] for render in renders]
    if k <= 64:  # the row's bits as one integer
        keys = (mask.astype(np.uint64) << np.arange(k, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(np.packbits(mask, axis=1), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    distinct = mask[first]  # the items of every distinct row at once, then one slice per row
    picked = np.asarray(items, dtype=object)[np.nonzero(distinct)[1]].tolist()
    ends = np.cumsum(distinct.sum(axis=1)).tolist()
    groups = [picked[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    return [np.asarray([render(g) for g in groups], dtype=object)[inverse].tolist() for render in renders]


def _spaced(group: list[str]) -> str:
    return f" {' '.join(group)} " if group else ""


def _json_list(group: Sequence[str]) -> str:
    return '["' + '","'.join(group) + '"]' if group else "[]"  # codes are [a-z0-9_]: nothing to escape


def _commas(group: list[str]) -> str:
    return ",".join(group)


class _Columns:
    """Every per-household string a batch needs, built column by column."""

    def __init__(self, rt: ModelRuntime, r: Results) -> None:
        n = r.score.shape[0]
        tiers = r.tiers.T
        households, ks = np.nonzero(tiers >= 0)  # row-major: by household, then indicator order
        flat = rt.flat_offset[ks] + tiers[households, ks]
        tokens, fragments = rt.flat_tokens[flat].tolist(), rt.flat_json[flat].tolist()
        ends = np.cumsum(np.bincount(households, minlength=n)).tolist()
        spans = list(zip([0, *ends[:-1]], ends, strict=True))
        self.fired = [" ".join(tokens[a:b]) for a, b in spans]
        self.indicators = ["[" + ",".join(fragments[a:b]) + "]" for a, b in spans]
        parts = []
        for code, values in zip(rt.dimension_codes, r.dimensions, strict=True):  # few distinct values each
            if n <= FEW:
                parts.append([f'"{code}":{num(v)}' for v in values.tolist()])
                continue
            distinct, inverse = np.unique(values, return_inverse=True)
            texts = np.array([f'"{code}":{num(v)}' for v in distinct.tolist()], dtype=object)
            parts.append(texts[inverse.reshape(-1)].tolist())
        self.dimensions = list(map("{{{}}}".format, map(",".join, zip(*parts, strict=True))))
        self.difficulty = [rt.difficulty_codes[d] if d >= 0 else "" for d in r.difficulty.tolist()]
        self.causes, causes = by_combination(r.causes.T, rt.cause_codes, _spaced, _json_list)
        self.needs, needs = by_combination(r.needs.T, rt.need_codes, _spaced, _json_list)
        self.types, types = by_combination(r.five_types.T, rt.type_codes, _spaced, _json_list)
        quoted = [f'"{d}"' if d else "null" for d in self.difficulty]
        self.portrait = list(map(PORTRAIT.format, quoted, causes, needs, types))
        eligible, receiving = r.eligible.T, r.receiving.T
        self.eligible, = by_combination(eligible, rt.policy_codes, _spaced)
        self.receiving, = by_combination(receiving, rt.policy_codes, _spaced)
        self.unclaimed, = by_combination(eligible & ~receiving, rt.policy_codes, _spaced)
        # One JSON object per (policy, eligible, receiving): the right one where either holds.
        variants = [f'{{"code":"{c}","eligible":{e},"receiving":{v}}}' for c in rt.policy_codes
                    for e, v in (("true", "false"), ("false", "true"), ("true", "true"))]
        which = eligible.astype(np.int64) + 2 * receiving.astype(np.int64) - 1
        rows, cols = np.nonzero(which >= 0)
        chosen = np.zeros((n, len(variants)), dtype=bool)
        chosen[rows, 3 * cols + which[rows, cols]] = True
        policies, = by_combination(chosen, variants, _commas)
        # A service suggested for several needs is listed once, under the first rule that holds.
        selected = np.zeros((len(rt.service_pairs), n), dtype=bool)
        seen: dict[str, np.ndarray] = {}
        for j, ((code, _need), on) in enumerate(zip(rt.service_pairs, r.services, strict=True)):
            before = seen.get(code)
            selected[j] = on if before is None else on & ~before
            seen[code] = on.copy() if before is None else before | on
        tokens = [f"{c}/{d}" for c, d in rt.service_pairs]
        objects = [f'{{"code":"{c}","need_type":"{d}"}}' for c, d in rt.service_pairs]
        self.services, = by_combination(selected.T, tokens, _spaced)
        services_json, = by_combination(selected.T, objects, _commas)
        self.suggestions = list(map(SUGGESTIONS.format, policies, services_json))


_content_digest = functools.partial(hashlib.blake2b, digest_size=16)


def build(
    rt: ModelRuntime,
    results: Results,
    subjects: Subjects,
    previous: Mapping[str, Previous],
    cause: str,
    now: datetime,
    *,
    rows: bool = True,
) -> Batch:
    """Rows and events for every subject (``results`` column i is household i), column-wise: the
    loops over households are C loops (map, zip, str.join), not Python ones. Without ``rows``,
    the assessments and current rows are left as columns only."""
    n = len(subjects)
    out = Batch()
    if n == 0:
        return out
    c = _Columns(rt, results)
    levels = results.level.tolist()
    ids = time_ordered_ids(2 * n)
    aids, eids = ids[:n], ids[n:]
    hids = subjects.household_id
    prevs = list(map(previous.get, hids))
    # What alerts sees: score (through the dimensions), fired indicators, portrait, suggestions.
    contents = list(map(_hexdigest, map(_content_digest, map(str.encode, map(
        "|".join, zip(c.dimensions, c.fired, c.portrait, c.suggestions, strict=True))))))
    effective = list(levels)
    nothing: list[Any] = [None] * n
    reviewed, review_ids, bases = nothing, nothing, nothing
    if previous:
        reviewed, review_ids, bases = list(nothing), list(nothing), list(nothing)
        for i, p in enumerate(prevs):
            # An officer's level stands while the computed level does not move.
            if p is not None and p.review_id is not None and p.review_basis_level == levels[i]:
                effective[i], reviewed[i], review_ids[i], bases[i] = (p.reviewed_level, p.reviewed_level, p.review_id,
                                                                      p.review_basis_level)
        numbers = [p.number + 1 if p else 1 for p in prevs]
        prev_ids = [p.assessment_id if p else None for p in prevs]
        prev_scores = [p.score if p else None for p in prevs]
        prev_levels = [p.effective_level if p else None for p in prevs]
        etags = [p.etag + 1 if p else 1 for p in prevs]
    else:  # a first assessment of every household
        numbers = etags = [1] * n
        prev_ids, prev_scores, prev_levels = nothing, nothing, nothing
    s = subjects
    scores = results.score.tolist()
    model_version, nows = [rt.version] * n, [now] * n
    out.assessment_columns = (
        aids, hids, numbers, s.household_version, model_version, scores, levels, effective, prev_ids, prev_scores,
        prev_levels, c.dimensions, c.fired, c.difficulty, c.causes, c.needs, c.types, c.eligible, c.receiving,
        c.services, s.facts, s.input_hash, contents, [cause] * n, s.triggers, s.area_code, s.township_code,
        s.district_code, s.label_masked, s.household_type, nows,
    )
    out.current_columns = (
        hids, aids, numbers, s.household_version, model_version, scores, levels, effective, c.difficulty, c.types,
        c.needs, c.unclaimed, s.area_code, s.township_code, s.district_code, s.label_masked, contents,
        s.input_hash, nows, etags, reviewed, review_ids, bases,
    )
    if rows:
        out.assessments = list(zip(*out.assessment_columns, strict=True))
        out.current = list(zip(*out.current_columns, strict=True))
    for level in effective:
        out.levels[level] = out.levels.get(level, 0) + 1
    # Events for the assessments alerts would see differently.
    changed = [i for i, p in enumerate(prevs)
               if p is None or p.content_hash != contents[i] or p.effective_level != effective[i]]
    if len(changed) < n:
        def pick(column: Sequence[Any]) -> list[Any]:
            return list(map(column.__getitem__, changed))
    else:
        def pick(column: Sequence[Any]) -> Sequence[Any]:
            return column
    events_of = Subjects(*(pick(getattr(s, f)) for f in Subjects.__slots__))
    bodies = payloads(
        assessment_ids=pick(aids), subjects=events_of, scores=pick(scores), levels=pick(effective),
        previous_levels=pick(prev_levels), previous_scores=pick(prev_scores), dimensions=pick(c.dimensions),
        indicators=pick(c.indicators), cause=cause, model_version=rt.version, portraits=pick(c.portrait),
        suggestions=pick(c.suggestions), assessed_at=now.isoformat().replace("+00:00", "Z"),
    )
    out.events = list(zip(pick(eids), events_of.household_id, bodies, strict=True))
    return out


def _hexdigest(digest: Any) -> str:
    return digest.hexdigest()


def _rendered(values: Sequence[Any], render: Callable[[Any], str]) -> list[str]:
    """``render`` of each value, called once per distinct value (households share most of them)."""
    texts = {v: render(v) for v in set(values)}
    return list(map(texts.__getitem__, values))


def _json_strings(values: Sequence[str]) -> list[str]:
    joined = "".join(values)
    if joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined:
        return list(map('"{}"'.format, values))  # identifiers and codes: nothing to escape
    return _rendered(values, _quoted)


def _null_or(render: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda v: "null" if v is None else render(v)


def payloads(*, assessment_ids: Sequence[str], subjects: Subjects, scores: Sequence[float], levels: Sequence[int],
             previous_levels: Sequence[int | None], previous_scores: Sequence[float | None],
             dimensions: Sequence[str], indicators: Sequence[str], cause: str, model_version: str,
             portraits: Sequence[str], suggestions: Sequence[str], assessed_at: str) -> list[str]:
    """The ``assessment.updated`` payloads of docs/events.md, as JSON text, one per subject: each
    piece is a column of texts, and each payload one join of its row."""
    s = subjects
    pieces: tuple[str | Sequence[str], ...] = (
        '{"assessment_id":"', assessment_ids, '","household_id":', _json_strings(s.household_id),
        ',"household_version":', _rendered(s.household_version, str),
        ',"area_code":', _json_strings(s.area_code), ',"township_code":', _json_strings(s.township_code),
        ',"district_code":', _json_strings(s.district_code), ',"label_masked":', _rendered(s.label_masked, _quoted),
        ',"household_type":', _rendered(s.household_type, _null_or(_quoted)), ',"member_ages":', s.member_ages,
        ',"score":', _rendered(scores, num), ',"level":', _rendered(levels, str),
        ',"previous_level":', _rendered(previous_levels, _null_or(str)),
        ',"previous_score":', _rendered(previous_scores, _null_or(num)), ',"dimensions":', dimensions,
        ',"indicators":', indicators, f',"cause":"{cause}","triggers":', s.triggers,
        f',"model_version":{_quoted(model_version)},"portrait":', portraits, ',"suggestions":', suggestions,
        f',"assessed_at":"{assessed_at}"}}',
    )
    return list(map("".join, zip(*(repeat(p) if isinstance(p, str) else p for p in pieces))))


def stored_payload(rt: ModelRuntime, row: Any, *, level: int, previous_level: int | None, previous_score: float | None,
                   cause: str, member_ages: str | None) -> str:
    """The payload of a stored assessment (for reviews and the snapshot), from its own model;
    ``member_ages`` are the household's latest (kept with its view, not with each assessment)."""
    fired = rt.fired_map(row.fired)
    parts = [rt.indicator_json[rt.model.indicator_index[code]][tier] for code, tier in fired.items()
             if code in rt.model.indicator_index]
    subject = Subjects([row.household_id], [row.household_version], [row.area_code], [row.township_code],
                       [row.district_code], [row.label_masked], [row.input_hash], [row.facts], [row.triggers],
                       [row.household_type], [member_ages or UNKNOWN_AGES])
    return payloads(
        assessment_ids=[row.id], subjects=subject, scores=[row.score], levels=[level], previous_levels=[previous_level],
        previous_scores=[previous_score], dimensions=[row.dimensions], indicators=["[" + ",".join(parts) + "]"],
        cause=cause, model_version=row.model_version,
        portraits=[portrait_json(row.difficulty, row.causes.split(), row.needs.split(), row.five_types.split())],
        suggestions=[suggestions_json(rt.policy_codes, row.eligible.split(), row.receiving.split(),
                                      row.services.split())],
        assessed_at=row.assessed_at.isoformat().replace("+00:00", "Z"),
    )[0]
