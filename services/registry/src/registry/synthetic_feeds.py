"""Department batch files for the synthetic city, for benchmarks and demos.

A batch from the medical insurance bureau (医保局) about the seeded people: by default 90% of
records repeat what the registry already knows (unchanged), 9% change something (new bills,
hospital stays, insurance and care changes: some fire triggers), 1% are leads (people not in the
database) or rejects (bad ID numbers, items of other departments).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from servicekit.resident_id import generate

from registry.synthetic import CityGenerator, SyntheticMember

DEPARTMENT = "medical_insurance"


def _bad_check_character(number: str) -> str:
    last = number[17]
    return number[:17] + ("0" if last != "0" else "1")


def records(gen: CityGenerator, scale: float, count: int, *, seed: int = 7, unchanged: float = 0.90,
            changed: float = 0.09) -> Iterator[dict[str, Any]]:
    """``count`` records about the city of this generator and scale (regenerated, not read)."""
    rng = random.Random(seed)
    people: list[tuple[SyntheticMember, str]] = [(m, h.id) for h in gen.households(scale) for m in h.members]
    today = gen.today
    recent = (today - timedelta(days=5)).isoformat()
    for n in range(count):
        rid = f"MI-{seed}-{n:08d}"
        x = rng.random()
        member, _hid = people[rng.randrange(len(people))]
        if x < unchanged:
            insured = member.facts.get("medical_insured", {}).get("v", True)
            yield {"record_id": rid, "item": "basic_medical_insurance_enrolment", "resident_id": member.resident_id,
                   "value": insured, "effective_date": recent}
        elif x < unchanged + changed:
            kind = rng.random()
            if kind < 0.5:
                amount = round(rng.uniform(20_000, 80_000) if rng.random() < 0.2 else rng.uniform(100, 6_000), 2)
                yield {"record_id": rid, "item": "out_of_pocket_settlement", "resident_id": member.resident_id,
                       "value": amount, "effective_date": recent}
            elif kind < 0.8:
                yield {"record_id": rid, "item": "inpatient_settlement", "resident_id": member.resident_id,
                       "value": rng.randint(1, 30), "effective_date": recent}
            elif kind < 0.9:
                insured = member.facts.get("medical_insured", {}).get("v", True)
                yield {"record_id": rid, "item": "basic_medical_insurance_enrolment", "resident_id": member.resident_id,
                       "value": not insured, "effective_date": recent}
            else:
                yield {"record_id": rid, "item": "long_term_care_assessment", "resident_id": member.resident_id,
                       "value": rng.choice(("partial", "full")), "effective_date": recent}
        elif rng.random() < 0.5:  # a lead: someone the registry does not know
            birth = today - timedelta(days=rng.randint(20 * 365, 80 * 365))
            number = generate("330122", birth, rng.randrange(0, 500) * 2 + 1, "male")
            yield {"record_id": rid, "item": "out_of_pocket_settlement", "resident_id": number,
                   "value": round(rng.uniform(1_000, 30_000), 2), "effective_date": recent}
        elif rng.random() < 0.5:
            yield {"record_id": rid, "item": "inpatient_settlement", "resident_id": _bad_check_character(member.resident_id),
                   "value": 3, "effective_date": recent}
        else:
            yield {"record_id": rid, "item": "major_illness_diagnosis", "resident_id": member.resident_id,
                   "value": "cancer", "effective_date": recent}


def write_batch(gen: CityGenerator, scale: float, count: int, path: Path, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records(gen, scale, count, **kw):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
