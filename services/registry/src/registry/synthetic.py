"""The synthetic city (合成城市): households, members and facts shaped like Hangzhou's 2024 figures.

Seeded and deterministic: household ``i`` depends only on (seed, i), so a larger scale is a
superset of a smaller one and loading twice is recognised. At scale 1.0: about 83,000
on-register and 140,000 off-register households and 420,000 people, with illness, disability,
care, work and spending spread so that the five types (兜底 / 支出 / 急难 / 发展 / 关爱) come out
in roughly the brief's proportions. Every record is marked synthetic; names, phones and
addresses are invented; ID numbers come from servicekit.resident_id.generate.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from servicekit.resident_id import generate, validate

from registry.profile.areas import AreaTree, Level

ON_REGISTER = 83_000
OFF_REGISTER = 140_000
STATUS_MIX = [("dibao", 0.55), ("dibian", 0.33), ("tekun", 0.12)]
SOURCE_MIX = [("assistance_exit", 0.22), ("application_refused", 0.18), ("temporary_assistance", 0.30),
              ("proactive_discovery", 0.12), ("other_department", 0.18)]
SIZE_MIX = [(1, 0.45), (2, 0.30), (3, 0.14), (4, 0.07), (5, 0.04)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红建国志文斌辉宇浩然思雨欣怡子轩梓涵晨阳嘉琪俊杰佳怡"
NAMESPACE = uuid.UUID("6f1e2c1a-6c38-4d3a-9a53-0c1d5d3c9a11")


def _pick(rng: random.Random, mix: list[tuple[Any, float]]) -> Any:
    x = rng.random()
    for value, weight in mix:
        x -= weight
        if x < 0:
            return value
    return mix[-1][0]


@dataclass
class SyntheticMember:
    id: str
    resident_id: str
    name: str
    phone: str | None
    sex: str
    birth_date: date
    relation: str
    facts: dict[str, Any]


@dataclass
class SyntheticHousehold:
    id: str
    area_code: str
    register_status: str
    off_register_source: str | None
    status_since: date
    channel: str
    rural_hukou: bool
    address: str
    location: tuple[float, float]
    facts: dict[str, Any]
    members: list[SyntheticMember] = field(default_factory=list)

    @property
    def head_name(self) -> str:
        return next(m.name for m in self.members if m.relation == "head")


class CityGenerator:
    """Generates the synthetic city household by household."""

    def __init__(self, areas: AreaTree, code_lists: dict[str, frozenset[str]], *, seed: int = 20241128,
                 today: date | None = None) -> None:
        self.seed = seed
        self.today = today or date(2026, 11, 28)
        self.villages = [a for a in areas.by_level[Level.village]]
        self._village_by_code = {v.code: v for v in self.villages}
        self.village_weights = [1.3 if v.kind == "village" else 0.8 for v in self.villages]
        self.major = sorted(code_lists["major_illnesses"])
        self.chronic = sorted(code_lists["chronic_conditions"])
        self._taken: set[str] = set()
        self.stamp = datetime(self.today.year, self.today.month, self.today.day, 1, tzinfo=UTC).isoformat()

    def counts(self, scale: float) -> tuple[int, int]:
        return round(ON_REGISTER * scale), round(OFF_REGISTER * scale)

    def households(self, scale: float) -> Iterator[SyntheticHousehold]:
        on, off = self.counts(scale)
        # On- and off-register households interleave by index, so every prefix has both kinds.
        total = on + off
        for i in range(total):
            yield self.household(i, on_register=(i * on) // total != ((i + 1) * on) // total)

    def household_id(self, i: int) -> str:
        return str(uuid.uuid5(NAMESPACE, f"{self.seed}:household:{i}"))

    def _fact(self, value: Any, eff: date) -> dict[str, Any]:
        return {"v": value, "src": "synthetic", "rec": None, "eff": eff.isoformat(), "at": self.stamp}

    def _log(self, entries: list[tuple[date, float]], tag: str) -> dict[str, Any]:
        items = [[d.isoformat(), round(a, 2), f"synthetic:{tag}:{n}"] for n, (d, a) in enumerate(sorted(entries))]
        return {"v": items, "src": "synthetic", "rec": None, "eff": items[-1][0], "at": self.stamp}

    def _past(self, rng: random.Random, days: int) -> date:
        return self.today - timedelta(days=rng.randint(1, days))

    def household(self, i: int, *, on_register: bool) -> SyntheticHousehold:
        # Each household has its own stream, so household i is the same at every scale.
        rng = random.Random(f"{self.seed}:{i}")
        village = rng.choices(self.villages, self.village_weights)[0]
        if on_register:
            status, source = _pick(rng, STATUS_MIX), None
            channel = _pick(rng, [("survey", 0.5), ("declaration", 0.3), ("data_sharing", 0.2)])
        else:
            status, source = "off_register", _pick(rng, SOURCE_MIX)
            channel = _pick(rng, [("data_sharing", 0.4), ("big_data", 0.3), ("survey", 0.2), ("declaration", 0.1)])
        size = 1 if status == "tekun" and rng.random() < 0.9 else _pick(rng, SIZE_MIX)
        hid = self.household_id(i)
        lat, lon = village.centroid
        h = SyntheticHousehold(
            id=hid, area_code=village.code, register_status=status, off_register_source=source,
            status_since=self._past(rng, 2000), channel=channel, rural_hukou=village.kind == "village" and rng.random() < 0.8,
            address=f"{village.name}{rng.randint(1, 60)}幢{rng.randint(1, 6)}0{rng.randint(1, 4)}室",
            location=(round(lat + rng.gauss(0, 0.003), 6), round(lon + rng.gauss(0, 0.003), 6)), facts={},
        )
        h.members = self._members(rng, i, h, size)
        h.facts = self._household_facts(rng, h)
        return h

    def demo_household(self, spec: dict[str, Any]) -> SyntheticHousehold:
        """A demo family of ``config/registry/demo-households.yaml``: its people as written
        there, its other facts drawn like the city's (deterministically, from its key)."""
        rng = random.Random(f"{self.seed}:demo:{spec['key']}")
        village = self._village_by_code.get(spec["area_code"])
        if village is None:
            raise ValueError(f"demo household {spec['key']}: {spec['area_code']} is not a village of the city profile")
        lat, lon = village.centroid
        h = SyntheticHousehold(
            id=str(uuid.uuid5(NAMESPACE, f"demo:household:{spec['key']}")), area_code=village.code,
            register_status=spec["register_status"], off_register_source=spec.get("off_register_source"),
            status_since=self._past(rng, 700), channel=spec.get("channel", "survey"),
            rural_hukou=village.kind == "village", address=spec["address"], location=(lat, lon), facts={},
        )
        size = len(spec["members"])
        for j, m in enumerate(spec["members"]):
            rid = validate(m["resident_id"], today=self.today)
            self._taken.add(rid.number)
            age = (self.today - rid.birth_date).days // 365
            h.members.append(SyntheticMember(
                id=str(uuid.uuid5(NAMESPACE, f"demo:member:{spec['key']}:{j}")), resident_id=rid.number,
                name=m["name"], phone=m.get("phone"), sex=rid.sex, birth_date=rid.birth_date,
                relation=m["relation"], facts=self._person_facts(rng, age, h, size),
            ))
        h.facts = self._household_facts(rng, h)
        return h

    def _resident_id(self, rng: random.Random, area: str, birth: date, sex: str) -> str:
        for _ in range(50):
            seq = rng.randrange(0, 500) * 2 + (1 if sex == "male" else 0)
            number = generate(area, birth, seq, sex)  # type: ignore[arg-type]
            if number not in self._taken:
                self._taken.add(number)
                return number
            birth += timedelta(days=1)
        raise RuntimeError("could not find a free synthetic ID number")  # pragma: no cover

    def _members(self, rng: random.Random, i: int, h: SyntheticHousehold, size: int) -> list[SyntheticMember]:
        elderly_head = h.register_status in ("tekun", "dibao") and rng.random() < 0.55
        head_age = rng.randint(60, 92) if elderly_head else rng.randint(24, 75)
        surname = rng.choice(SURNAMES)
        plan: list[tuple[str, int]] = [("head", head_age)]
        if size >= 2:
            plan.append(("spouse", max(18, head_age + rng.randint(-6, 4))) if rng.random() < 0.6
                        else ("child", max(0, head_age - rng.randint(20, 35))))
        while len(plan) < size:
            if head_age >= 55 and rng.random() < 0.5:
                plan.append(("grandchild", rng.randint(0, 17)))
            elif head_age < 50 and rng.random() < 0.25:
                plan.append(("parent", min(95, head_age + rng.randint(22, 32))))
            else:
                plan.append(("child", max(0, min(head_age - 18, rng.randint(0, 30)))))
        area = h.area_code[:6] if rng.random() < 0.8 else rng.choice(["330102", "330103", "330104", "330106", "330110"])
        out = []
        for j, (relation, age) in enumerate(plan):
            sex = rng.choice(("male", "female"))
            birth = self.today - timedelta(days=age * 365 + rng.randint(0, 364))
            name = (surname if relation in ("head", "child", "grandchild") else rng.choice(SURNAMES)) + \
                "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
            phone = f"1{rng.choice('3578')}{rng.randint(0, 9)}0000{rng.randint(0, 9999):04d}" if 16 <= age else None
            out.append(SyntheticMember(
                id=str(uuid.uuid5(NAMESPACE, f"{self.seed}:member:{i}:{j}")),
                resident_id=self._resident_id(rng, area, birth, sex), name=name, phone=phone, sex=sex,
                birth_date=birth, relation=relation, facts=self._person_facts(rng, age, h, size),
            ))
        return out

    def _person_facts(self, rng: random.Random, age: int, h: SyntheticHousehold, size: int) -> dict[str, Any]:
        f: dict[str, Any] = {}
        fact = self._fact
        past = self._past
        f["medical_insured"] = fact(rng.random() < 0.97, past(rng, 900))
        if rng.random() < (0.09 if age >= 50 else 0.025):
            diagnosed = past(rng, 360 if rng.random() < 0.3 else 1400)
            f["major_illnesses"] = fact({rng.choice(self.major): diagnosed.isoformat()}, diagnosed)
        if age >= 45 and rng.random() < 0.35:
            when = past(rng, 2000)
            codes = rng.sample(self.chronic, rng.choice((1, 1, 2)))
            f["chronic_conditions"] = fact({c: when.isoformat() for c in codes}, when)
        if rng.random() < 0.07:
            grade = rng.choice((1, 2, 2, 3, 3, 4, 4, 4))
            when = past(rng, 3000)
            f["disability_grade"] = fact(grade, when)
            f["disability_type"] = fact(rng.choice(("physical", "physical", "visual", "hearing", "intellectual", "mental")), when)
            f["disability_allowance"] = fact(grade <= 2 or rng.random() < 0.3, when)
        grade = f.get("disability_grade", {}).get("v")
        if (age >= 80 and rng.random() < 0.3) or (grade is not None and grade <= 2 and rng.random() < 0.4):
            f["care_need"] = fact(rng.choice(("partial", "full")), past(rng, 700))
        if age < 3:
            f["school_stage"] = fact("none", past(rng, 300))
        elif age < 6:
            f["school_stage"] = fact("preschool", past(rng, 300))
        elif age < 18:
            f["school_stage"] = fact("primary" if age < 12 else "junior" if age < 15 else "senior", past(rng, 300))
        elif age < 23 and rng.random() < 0.4:
            f["school_stage"] = fact("college", past(rng, 300))
            f["studying_away"] = fact(rng.random() < 0.6, past(rng, 300))
        if age >= 18:
            f["education_attained"] = fact(_pick(rng, [("none", 0.08), ("primary", 0.25), ("junior", 0.35),
                                                       ("senior", 0.17), ("vocational", 0.08), ("college", 0.07)]),
                                           past(rng, 3000))
        if 16 <= age < 60 and "school_stage" not in f:
            f["labour_capacity"] = fact(_pick(rng, [("full", 0.75), ("partial", 0.15), ("none", 0.10)]), past(rng, 900))
            status = _pick(rng, [("employed", 0.4), ("flexible", 0.3), ("unemployed", 0.15),
                                 ("registered_unemployed", 0.05), ("not_working", 0.10)])
            f["employment_status"] = fact(status, past(rng, 700))
            if status in ("unemployed", "registered_unemployed") and rng.random() < 0.4:
                f["job_lost_on"] = fact(past(rng, 500).isoformat(), past(rng, 30))
            f["pension_insured"] = fact(rng.random() < 0.6, past(rng, 900))
        elif age >= 60:
            f["labour_capacity"] = fact("none" if age >= 75 else "partial", past(rng, 900))
            f["employment_status"] = fact("retired", past(rng, 2000))
        if (age >= 60 and size == 1 and rng.random() < 0.5) or (age < 16 and h.rural_hukou and rng.random() < 0.1):
            f["living_alone" if age >= 60 else "left_behind"] = fact(True, past(rng, 700))
        return f

    def _household_facts(self, rng: random.Random, h: SyntheticHousehold) -> dict[str, Any]:
        f: dict[str, Any] = {}
        fact, past = self._fact, self._past
        n = len(h.members)
        base = {"tekun": 300, "dibao": 700, "dibian": 1500}.get(h.register_status, 2600)
        when = past(rng, 400)
        workers = sum(1 for m in h.members if m.facts.get("employment_status", {}).get("v") in ("employed", "flexible"))
        f["income_wages_m"] = fact(round(workers * rng.uniform(0.4, 1.2) * base, 0), when)
        f["income_business_m"] = fact(round(rng.uniform(0, 400) if rng.random() < 0.2 else 0.0, 0), when)
        f["income_property_m"] = fact(0.0, when)
        f["income_transfer_m"] = fact(round(rng.uniform(0, 600) if rng.random() < 0.4 else 0.0, 0), when)
        elders = sum(1 for m in h.members if m.facts.get("employment_status", {}).get("v") == "retired")
        f["income_pension_m"] = fact(round(elders * rng.uniform(200, 2500), 0), when)
        f["income_assistance_m"] = fact(round(n * {"tekun": 1600, "dibao": 1200, "dibian": 300}.get(h.register_status, 0) * rng.uniform(0.8, 1.0), 0), when)
        f["deposits"] = fact(round(rng.expovariate(1 / (3000 if h.register_status != "off_register" else 15000)), 0), when)
        f["securities"] = fact(0.0, when)
        owned = rng.random() < 0.65
        f["housing_status"] = fact("owned" if owned else _pick(rng, [("rented", 0.5), ("public_rental", 0.3), ("lodging", 0.2)]), when)
        f["housing_units"] = fact(1 if owned else 0, when)
        f["housing_area"] = fact(round(rng.uniform(25, 110), 1) if owned else 0.0, when)
        f["vehicles"] = fact(1 if h.register_status == "off_register" and rng.random() < 0.1 else 0, when)
        f["vehicle_value"] = fact(round(rng.uniform(10000, 60000), 0) if f["vehicles"]["v"] else 0.0, when)
        f["business_registrations"] = fact(0, when)
        f["business_capital"] = fact(0.0, when)
        f["land_contract_mu"] = fact(round(rng.uniform(0.5, 4.0), 1) if h.rural_hukou else 0.0, when)
        if not owned:
            f["rent_m"] = fact(0.0 if f["housing_status"]["v"] == "lodging" else round(rng.uniform(300, 1500), 0), when)
        f["debts_total"] = fact(round(rng.uniform(5000, 80000), 0) if rng.random() < 0.15 else 0.0, when)
        ill = any("major_illnesses" in m.facts for m in h.members)
        if ill or rng.random() < 0.08:
            bills = [(past(rng, 360), rng.uniform(500, 8000)) for _ in range(rng.randint(1, 4))]
            if ill and rng.random() < 0.6:
                bills.append((past(rng, 360), rng.uniform(20000, 90000)))
            f["medical_bills"] = self._log(bills, "bill")
        if any(m.facts.get("school_stage", {}).get("v") in ("college", "senior") for m in h.members):
            f["education_spending"] = self._log([(past(rng, 360), rng.uniform(2000, 12000))], "school")
        if rng.random() < 0.012:
            f["disasters"] = self._log([(past(rng, 360), rng.uniform(2000, 40000))], "disaster")
        if rng.random() < 0.006:
            f["accidents"] = self._log([(past(rng, 360), rng.uniform(1000, 20000))], "accident")
        if h.off_register_source == "temporary_assistance":
            f["temporary_assistance"] = self._log([(past(rng, 360), rng.uniform(500, 5000))], "temp")
        if h.off_register_source == "assistance_exit":
            f["assistance_exit_on"] = fact(past(rng, 700).isoformat(), when)
        if h.off_register_source == "application_refused":
            f["applications_refused"] = self._log([(past(rng, 700), 0.0)], "refused")
        f["receives_dibao"] = fact(h.register_status == "dibao", when)
        f["receives_tekun"] = fact(h.register_status == "tekun", when)
        if rng.random() < 0.6:
            f["visits"] = self._log([(past(rng, 360), 0.0) for _ in range(rng.randint(1, 3))], "visit")
        return f
