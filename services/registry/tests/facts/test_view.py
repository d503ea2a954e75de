"""The scoring view, byte for byte: a digest of the views of a few thousand synthetic households,
their facts then worked over with every fact of the vocabulary (values, dates, deaths), on several
days. Speeding the view up must leave every byte of it as it was; a deliberate change of the view
changes the digest (and the contract, config/scoring-view.yaml, says how)."""

import hashlib
import random
from datetime import date, timedelta
from pathlib import Path

import orjson

from registry.facts.view import FACT_VALUES, HouseholdFacts, MemberFacts, compute_view
from registry.facts.vocabulary import FACTS, Provenance, apply
from registry.profile import load_profile
from registry.synthetic import CityGenerator

PROFILE = load_profile(Path(__file__).resolve().parents[4] / "config")
DAYS = (date(2026, 11, 28), date(2025, 2, 28), date(2027, 1, 1))
VIEWS_DIGEST = "3305d5a67ea996781e03fda6cb9cbd83addb8a8e2ca2a77f7d9b5c48b864619a"


def _value(rng: random.Random, spec) -> object:
    if spec.type == "bool":
        return rng.random() < 0.5
    if spec.type == "int":
        return rng.randint(int(spec.minimum or 0), int(min(spec.maximum or 10, 10)))
    if spec.type in ("float", "log"):
        return rng.choice([0.0, 0, 12.5, 1234.56, 60000.0, rng.uniform(0, 5000)])
    if spec.type == "enum":
        return rng.choice([*spec.values, "not_in_the_contract"]) if spec.values else "x"
    if spec.type == "codes":
        return rng.choice(sorted(PROFILE.catalogue.code_lists[spec.values[0]]))
    return (date(2024, 1, 1) + timedelta(days=rng.randint(0, 1200))).isoformat()  # date


def _worked_over(rng: random.Random, facts: dict, subject: str, today: date) -> None:
    specs = [s for s in FACTS.values() if s.subject == subject]
    for _ in range(rng.randint(0, 6)):
        spec = rng.choice(specs)
        effective = date(2024, 6, 1) + timedelta(days=rng.randint(0, 900))
        apply(facts, spec, _value(rng, spec), Provenance("test", f"r{rng.random()}", effective, "2026-11-28T00:00:00+00:00"),
              today)


def _households(count: int):
    generator = CityGenerator(PROFILE.areas, PROFILE.catalogue.code_lists)
    rng = random.Random(11)
    for n, h in enumerate(generator.households(0.02)):
        if n >= count:
            return
        facts = orjson.loads(orjson.dumps(h.facts))
        members = []
        for m in h.members:
            m_facts = orjson.loads(orjson.dumps(m.facts))
            if n % 3 == 0:
                _worked_over(rng, m_facts, "person", DAYS[0])
            members.append(MemberFacts(m.birth_date, m.sex, m.relation, m_facts))
        if n % 2 == 0:
            _worked_over(rng, facts, "household", DAYS[0])
        yield HouseholdFacts(h.area_code, h.register_status, h.off_register_source, h.channel, h.status_since,
                             h.rural_hukou, facts, members)


def test_the_views_are_what_they_were():
    digest = hashlib.sha256()
    for h in _households(1000):
        for today in DAYS:
            view, missing = PROFILE.view(h, today)
            digest.update(orjson.dumps(view))
            digest.update(orjson.dumps(missing))
    assert digest.hexdigest() == VIEWS_DIGEST


def test_computed_fields_have_the_contracts_type_without_a_cast():
    """The view casts only the fields that carry a fact's value as stored (FACT_VALUES): every
    other field must come out of compute_view in the contract's type (a float sum that starts at
    int 0 would be an int), on households worked over with every fact, on several days."""
    spec = PROFILE.view.spec
    types = {"int": int, "float": float, "bool": bool}
    wrong = set()
    for h in _households(600):
        for today in DAYS:
            raw, _ = compute_view(h, today, PROFILE.view.params)
            for name, value in raw.items():
                expected = types.get(spec.fields[name].type)
                if name not in FACT_VALUES and expected is not None and value is not None and type(value) is not expected:
                    wrong.add((name, type(value).__name__))
    assert not wrong


def test_a_fact_stored_as_an_int_is_sent_in_the_contracts_type():
    h = next(_households(1))
    facts = dict(h.facts, deposits={"v": 1200, "eff": "2026-01-01"}, vehicle_value={"v": 0, "eff": "2026-01-01"})
    view, _ = PROFILE.view(HouseholdFacts(h.area_code, h.register_status, h.off_register_source, h.channel,
                                          h.status_since, h.rural_hukou, facts, h.members), DAYS[0])
    assert type(view["deposits"]) is float and view["deposits"] == 1200.0
    assert type(view["vehicle_value"]) is float
    assert type(view["funeral_costs_12m"]) is float
