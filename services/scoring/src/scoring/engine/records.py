"""From kernel results to rows: assessments, current assessments and ``assessment.updated`` events.

One function serves every path -- a consumer batch of a few households and the rescore of a
whole city -- so that both write exactly the same things. Households sharing an outcome share
its strings: tier patterns, portraits and suggestions are serialised once per distinct pattern.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from scoring.engine.runtime import ModelRuntime, dumps, num
from scoring.rules.kernel import Results

ASSESSMENT_COLUMNS = (
    "id", "household_id", "number", "household_version", "model_version", "score", "level", "effective_level",
    "previous_score", "previous_level", "dimensions", "fired", "portrait", "suggestions", "facts", "input_hash",
    "content_hash", "diff", "cause", "triggers", "area_code", "township_code", "district_code", "label_masked",
    "assessed_at",
)
CURRENT_COLUMNS = (
    "household_id", "assessment_id", "number", "household_version", "model_version", "score", "level",
    "effective_level", "difficulty", "five_types", "needs", "unclaimed_policies", "area_code", "township_code",
    "district_code", "label_masked", "fired", "content_hash", "input_hash", "assessed_at", "etag",
    "reviewed_level", "review_id", "review_basis_level",
)
CAUSES = ("household_changed", "model_activated", "review")


@dataclass(frozen=True, slots=True)
class Subject:
    """One household to assess, as scoring holds it (the facts are a separate matrix column)."""

    household_id: str
    household_version: int
    area_code: str
    township_code: str
    district_code: str
    label_masked: str
    input_hash: str
    facts: str  # JSON: {"missing": [...], "invalid": [...], "clamped": [...]}
    triggers: str = "[]"  # JSON list of the triggers that caused it


@dataclass(frozen=True, slots=True)
class Previous:
    """What the household's current assessment says, for the diff and for reviews."""

    assessment_id: str
    number: int
    score: float
    level: int
    effective_level: int
    fired: str
    content_hash: str
    input_hash: str
    model_version: str
    etag: int
    reviewed_level: int | None
    review_id: str | None
    review_basis_level: int | None


@dataclass
class Batch:
    assessments: list[tuple] = field(default_factory=list)
    current: list[tuple] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (event id, household id, payload JSON)
    levels: dict[int, int] = field(default_factory=dict)


def _patterns(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the index of its distinct pattern; and the first row of each pattern."""
    rows = np.ascontiguousarray(rows)
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


class RecordBuilder:
    """Serialises the outcomes of one kernel run for one model."""

    def __init__(self, rt: ModelRuntime, results: Results) -> None:
        self.rt = rt
        self.r = results
        self.tier_of, tier_first = _patterns(results.tiers.T.astype(np.int8))
        self.tiers = [self._tier_pattern(int(i)) for i in tier_first]
        portrait = np.column_stack([results.difficulty.astype(np.int8)[:, None], results.causes.T, results.needs.T,
                                    results.five_types.T]).astype(np.int8)
        self.portrait_of, portrait_first = _patterns(portrait)
        self.portraits = [self._portrait_pattern(int(i)) for i in portrait_first]
        suggestions = np.column_stack([results.eligible.T, results.receiving.T, results.services.T]).astype(np.int8)
        self.suggestion_of, suggestion_first = _patterns(suggestions)
        self.suggestions = [self._suggestion_pattern(int(i)) for i in suggestion_first]
        self._hashes: dict[tuple[int, int, int], str] = {}
        self._diffs: dict[tuple[str, int], tuple[list[str], list[str], list[str]]] = {}

    def _tier_pattern(self, i: int) -> tuple[str, str, str, float, int, dict[str, int]]:
        rt, r = self.rt, self.r
        column = r.tiers[:, i]
        ks = np.flatnonzero(column >= 0)
        fired = " ".join(rt.tokens[k][column[k]] for k in ks)
        indicators = "[" + ",".join(rt.indicator_json[k][column[k]] for k in ks) + "]"
        dims = "{" + ",".join(f'"{c}":{num(v)}' for c, v in zip(rt.dimension_codes, r.dimensions[:, i], strict=True)) + "}"
        by_code = {rt.model.indicators[k].code: int(column[k]) for k in ks}
        return fired, indicators, dims, float(r.score[i]), int(r.level[i]), by_code

    def _portrait_pattern(self, i: int) -> tuple[str, str, str, str]:
        rt, r = self.rt, self.r
        d = int(r.difficulty[i])
        difficulty = rt.difficulty_codes[d] if d >= 0 else None
        types = [c for c, on in zip(rt.type_codes, r.five_types[:, i], strict=True) if on]
        needs = [c for c, on in zip(rt.need_codes, r.needs[:, i], strict=True) if on]
        body = dumps({
            "difficulty": difficulty,
            "causes": [c for c, on in zip(rt.cause_codes, r.causes[:, i], strict=True) if on],
            "needs": needs,
            "five_types": types,
        })
        return body, difficulty or "", _spaced(types), _spaced(needs)

    def _suggestion_pattern(self, i: int) -> tuple[str, str]:
        rt, r = self.rt, self.r
        policies = []
        unclaimed = []
        for code, eligible, receiving in zip(rt.policy_codes, r.eligible[:, i], r.receiving[:, i], strict=True):
            if eligible or receiving:
                policies.append({"code": code, "eligible": bool(eligible), "receiving": bool(receiving)})
            if eligible and not receiving:
                unclaimed.append(code)
        services, seen = [], set()
        for (code, need), on in zip(rt.service_pairs, r.services[:, i], strict=True):
            if on and code not in seen:
                seen.add(code)
                services.append({"code": code, "need_type": need})
        return dumps({"policies": policies, "services": services}), _spaced(unclaimed)

    def content_hash(self, i: int) -> str:
        key = (int(self.tier_of[i]), int(self.portrait_of[i]), int(self.suggestion_of[i]))
        found = self._hashes.get(key)
        if found is None:
            text = "|".join((self.tiers[key[0]][0], self.portraits[key[1]][0], self.suggestions[key[2]][0]))
            found = self._hashes[key] = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        return found

    def diff(self, prev: Previous | None, i: int) -> tuple[list[str], list[str], list[str]]:
        tp = int(self.tier_of[i])
        if prev is None:
            return sorted(self.tiers[tp][5]), [], []
        key = (prev.fired, tp)
        found = self._diffs.get(key)
        if found is None:
            before, after = self.rt.fired_map(prev.fired), self.tiers[tp][5]
            found = self._diffs[key] = (
                sorted(set(after) - set(before)),
                sorted(set(before) - set(after)),
                sorted(c for c in set(before) & set(after) if before[c] != after[c]),
            )
        return found


def build(
    rt: ModelRuntime,
    results: Results,
    subjects: Sequence[Subject],
    previous: Mapping[str, Previous],
    cause: str,
    now: datetime,
) -> Batch:
    """Rows and events for every subject (``results`` column i is ``subjects[i]``)."""
    b = RecordBuilder(rt, results)
    out = Batch()
    at = now.isoformat().replace("+00:00", "Z")
    version = rt.version
    for i, s in enumerate(subjects):
        prev = previous.get(s.household_id)
        fired, indicators, dims, score, level, _ = b.tiers[b.tier_of[i]]
        portrait, difficulty, types, needs = b.portraits[b.portrait_of[i]]
        suggestions, unclaimed = b.suggestions[b.suggestion_of[i]]
        content = b.content_hash(i)
        reviewed = review_id = basis = None
        effective = level
        if prev is not None and prev.review_id is not None and prev.review_basis_level == level:
            reviewed, review_id, basis = prev.reviewed_level, prev.review_id, prev.review_basis_level
            effective = reviewed  # the officer's level stands while the computed one does not move
        added, removed, changed = b.diff(prev, i)
        diff: dict[str, Any] = {
            "previous_assessment_id": prev.assessment_id if prev else None,
            "previous_score": prev.score if prev else None,
            "previous_level": prev.effective_level if prev else None,
            "level_moved": _moved(prev.effective_level if prev else None, effective),
            "score_change": (score - prev.score) if prev else None,
            "indicators_added": added, "indicators_removed": removed, "indicators_changed": changed,
        }
        assessment_id = str(uuid.uuid4())
        number = prev.number + 1 if prev else 1
        out.assessments.append((
            assessment_id, s.household_id, number, s.household_version, version, score, level, effective,
            prev.score if prev else None, prev.effective_level if prev else None, dims, fired, portrait, suggestions,
            s.facts, s.input_hash, content, dumps(diff), cause, s.triggers, s.area_code, s.township_code,
            s.district_code, s.label_masked, now,
        ))
        out.current.append((
            s.household_id, assessment_id, number, s.household_version, version, score, level, effective, difficulty,
            types, needs, unclaimed, s.area_code, s.township_code, s.district_code, s.label_masked, fired, content,
            s.input_hash, now, (prev.etag + 1) if prev else 1, reviewed, review_id, basis,
        ))
        out.levels[effective] = out.levels.get(effective, 0) + 1
        if prev is None or prev.content_hash != content or prev.effective_level != effective:
            out.events.append((str(uuid.uuid4()), s.household_id, payload(
                assessment_id=assessment_id, subject=s, score=score, level=effective, prev=prev, dims=dims,
                indicators=indicators, cause=cause, model_version=version, portrait=portrait,
                suggestions=suggestions, assessed_at=at,
            )))
    return out


def payload(*, assessment_id: str, subject: Subject, score: float, level: int, prev: Previous | None, dims: str,
            indicators: str, cause: str, model_version: str, portrait: str, suggestions: str, assessed_at: str) -> str:
    """The ``assessment.updated`` payload of docs/events.md, as JSON text."""
    s = subject
    return (
        f'{{"assessment_id":"{assessment_id}","household_id":{dumps(s.household_id)},'
        f'"household_version":{s.household_version},"area_code":{dumps(s.area_code)},'
        f'"township_code":{dumps(s.township_code)},"district_code":{dumps(s.district_code)},'
        f'"label_masked":{dumps(s.label_masked)},"score":{num(score)},"level":{level},'
        f'"previous_level":{prev.effective_level if prev else "null"},'
        f'"previous_score":{num(prev.score) if prev else "null"},"dimensions":{dims},"indicators":{indicators},'
        f'"cause":"{cause}","triggers":{s.triggers},"model_version":{dumps(model_version)},'
        f'"portrait":{portrait},"suggestions":{suggestions},"assessed_at":"{assessed_at}"}}'
    )


def _moved(before: int | None, after: int) -> str:
    if before is None:
        return "first"
    return "unchanged" if before == after else ("stronger" if after > before else "weaker")


def _spaced(codes: Sequence[str]) -> str:
    """Codes as ' a b ' so that a list filter is a LIKE '% a %' on any database."""
    return f" {' '.join(codes)} " if codes else ""


def stored_payload(rt: ModelRuntime, row: Any, *, level: int, previous_level: int | None, previous_score: float | None,
                   cause: str) -> str:
    """The payload of a stored assessment (for reviews and the snapshot), from its own model."""
    fired = rt.fired_map(row.fired)
    parts = [rt.indicator_json[rt.model.indicator_index[code]][tier] for code, tier in fired.items()
             if code in rt.model.indicator_index]
    subject = Subject(row.household_id, row.household_version, row.area_code, row.township_code, row.district_code,
                      row.label_masked, row.input_hash, row.facts, row.triggers)
    prev = None
    if previous_level is not None:
        prev = Previous("", 0, previous_score if previous_score is not None else 0.0, previous_level, previous_level,
                        "", "", "", "", 0, None, None, None)
    return payload(
        assessment_id=row.id, subject=subject, score=row.score, level=level, prev=prev, dims=row.dimensions,
        indicators="[" + ",".join(parts) + "]", cause=cause, model_version=row.model_version,
        portrait=row.portrait, suggestions=row.suggestions,
        assessed_at=row.assessed_at.isoformat().replace("+00:00", "Z"),
    )
