"""The facts the registry keeps about people and households, and how a new value is applied.

A fact is stored on its member or household row as ``{key: {"v": value, "src": department or
channel, "rec": record id, "eff": effective date, "at": received at}}``, so every value remembers
where it came from. Four shapes:

- ``int`` / ``float`` / ``bool`` / ``enum`` / ``date``: one current value; a newer effective date
  replaces it, an older one is stale and changes nothing;
- ``codes``: a set of codes with the date each was first recorded (重大疾病, 慢性病);
- ``log``: dated entries with an amount (medical bills, disasters, visits), each remembering the
  record it came from so a re-sent record is recognised; kept for 24 months.

The vocabulary is the registry's data model (like its columns); which department may write which
fact, thresholds and illness lists are city data under config/registry/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

FactType = Literal["int", "float", "bool", "enum", "date", "codes", "log"]
Subject = Literal["person", "household"]
LOG_KEEP_DAYS = 731


@dataclass(frozen=True, slots=True)
class FactSpec:
    key: str
    subject: Subject
    type: FactType
    description: str
    values: tuple[str, ...] = ()  # enum values; for "codes" the list name in the profile
    minimum: float | None = None
    maximum: float | None = None


def _p(key: str, type_: FactType, description: str, **kw: Any) -> FactSpec:
    return FactSpec(key, "person", type_, description, **kw)


def _h(key: str, type_: FactType, description: str, **kw: Any) -> FactSpec:
    return FactSpec(key, "household", type_, description, **kw)


MONEY = {"minimum": 0.0, "maximum": 1e10}
COUNT = {"minimum": 0, "maximum": 10_000}
EDUCATION = ("none", "primary", "junior", "senior", "vocational", "college", "postgraduate")

FACTS: dict[str, FactSpec] = {f.key: f for f in [
    # --- person: health (健康状况) -----------------------------------------------------------
    _p("major_illnesses", "codes", "Major illnesses diagnosed (重大疾病)", values=("major_illnesses",)),
    _p("chronic_conditions", "codes", "Chronic conditions (慢性病)", values=("chronic_conditions",)),
    _p("disability_type", "enum", "Disability type (残疾类别)",
       values=("physical", "visual", "hearing", "speech", "intellectual", "mental", "multiple")),
    _p("disability_grade", "int", "Disability grade 1-4 (残疾等级; 1 is the most severe)", minimum=1, maximum=4),
    _p("care_need", "enum", "Needs care: none, partial (半失能), full (失能)", values=("none", "partial", "full")),
    _p("hospital_stays", "log", "Hospital admissions, amount = days (住院)", minimum=0, maximum=366),
    _p("severe_mental_illness", "bool", "Severe mental disorder under management (严重精神障碍)"),
    _p("long_term_medication", "bool", "On long-term medication"),
    _p("medical_insured", "bool", "Covered by basic medical insurance (基本医保)"),
    _p("pregnant", "bool", "Currently pregnant"),
    _p("deceased_on", "date", "Date of death (死亡)"),
    _p("disability_allowance", "bool", "Receives the two disability allowances (残疾人两项补贴)"),
    # --- person: work and school (就业 / 教育) -----------------------------------------------
    _p("labour_capacity", "enum", "Labour capacity (劳动能力)", values=("full", "partial", "none")),
    _p("employment_status", "enum", "Employment (就业状态)",
       values=("employed", "flexible", "unemployed", "registered_unemployed", "retired", "student", "not_working")),
    _p("job_lost_on", "date", "Date a job was lost (解除劳动关系)"),
    _p("pension_insured", "bool", "Pays into pension insurance (养老保险)"),
    _p("unemployment_benefit", "bool", "Receives unemployment benefit (失业保险金)"),
    _p("public_welfare_job", "bool", "Holds a public-welfare job (公益性岗位)"),
    _p("vocational_training", "log", "Vocational training completed (职业培训)", minimum=0, maximum=10_000),
    _p("education_attained", "enum", "Highest education attained (学历)", values=EDUCATION),
    _p("school_stage", "enum", "Stage of school now (在读学段)",
       values=("none", "preschool", "primary", "junior", "senior", "vocational", "college", "postgraduate")),
    _p("studying_away", "bool", "Studies away from home"),
    _p("education_aid", "bool", "Receives education assistance (教育救助)"),
    # --- person: special statuses (特殊情况) ------------------------------------------------
    _p("living_alone", "bool", "Lives alone (独居)"),
    _p("left_behind", "bool", "Left behind (留守)"),
    _p("orphan", "bool", "Orphan or de facto orphan (孤儿 / 事实无人抚养儿童)"),
    _p("in_custody", "bool", "Serving a sentence (服刑)"),
    _p("missing_person", "bool", "Reported missing (失踪)"),
    _p("in_rehab", "bool", "In drug rehabilitation (戒毒)"),
    _p("veteran", "bool", "Veteran or martyr's family member (退役军人 / 烈属)"),
    # --- household: income (收入, CNY per month) ---------------------------------------------
    _h("income_wages_m", "float", "Wages (工资性收入)", **MONEY),
    _h("income_business_m", "float", "Business and farming income (经营性收入)", **MONEY),
    _h("income_property_m", "float", "Rent, interest and dividends (财产性收入)", **MONEY),
    _h("income_transfer_m", "float", "Transfers and support from relatives (转移性收入)", **MONEY),
    _h("income_pension_m", "float", "Pensions (养老金)", **MONEY),
    _h("income_assistance_m", "float", "Social assistance received (救助金)", **MONEY),
    # --- household: property (财产) ----------------------------------------------------------
    _h("deposits", "float", "Bank deposits (存款)", **MONEY),
    _h("securities", "float", "Securities and funds (有价证券)", **MONEY),
    _h("housing_units", "int", "Dwellings owned (房产套数)", **COUNT),
    _h("housing_area", "float", "Owned floor area in m² (房产面积)", minimum=0.0, maximum=100_000.0),
    _h("housing_status", "enum", "How the family is housed (居住状况)",
       values=("owned", "rented", "public_rental", "lodging", "none")),
    _h("housing_unsafe", "bool", "Dwelling rated C or D (危房)"),
    _h("vehicles", "int", "Motor vehicles owned (机动车)", **COUNT),
    _h("vehicle_value", "float", "Value of those vehicles", **MONEY),
    _h("business_registrations", "int", "Businesses registered (工商登记)", **COUNT),
    _h("business_capital", "float", "Registered capital (注册资本)", **MONEY),
    _h("land_contract_mu", "float", "Contracted farmland in 亩 (土地承包)", minimum=0.0, maximum=100_000.0),
    # --- household: expenditure (支出) -------------------------------------------------------
    _h("medical_bills", "log", "Medical out-of-pocket per bill (医疗自付)", **MONEY),
    _h("education_spending", "log", "Education spending (教育支出)", **MONEY),
    _h("rent_m", "float", "Rent per month (房租)", **MONEY),
    _h("care_costs", "log", "Paid care and rehabilitation (护理康复支出)", **MONEY),
    _h("debts_total", "float", "Outstanding debts (负债)", **MONEY),
    _h("medical_debt", "float", "Debts for medical treatment (因病负债)", **MONEY),
    _h("utility_arrears_months", "int", "Months behind on water, power or gas (水电气欠费)", minimum=0, maximum=120),
    _h("funerals", "log", "Funeral costs (丧葬支出)", **MONEY),
    # --- household: other circumstances (其他情况) --------------------------------------------
    _h("disasters", "log", "Natural disasters, amount = loss (受灾)", **MONEY),
    _h("accidents", "log", "Serious accidents, amount = loss (意外事故)", **MONEY),
    _h("temporary_assistance", "log", "Temporary assistance received (临时救助)", **MONEY),
    _h("applications_refused", "log", "Assistance applications refused (申请未通过)", **MONEY),
    _h("assistance_exit_on", "date", "Date the family left assistance (救助退出)"),
    _h("critical_illness_insurance", "bool", "Holds critical-illness insurance (惠民保)"),
    _h("receives_dibao", "bool", "Receives the minimum living allowance (低保金)"),
    _h("receives_tekun", "bool", "Receives destitute support (特困供养)"),
    _h("receives_medical_aid", "bool", "Receives medical assistance (医疗救助)"),
    _h("receives_housing_aid", "bool", "Receives housing assistance (住房救助)"),
    _h("receives_employment_aid", "bool", "Receives employment assistance (就业救助)"),
    _h("receives_elder_care_subsidy", "bool", "Receives an elder-care subsidy (养老服务补贴)"),
    _h("veteran_household", "bool", "A veteran or martyr's family (优抚对象)"),
    _h("domestic_violence", "bool", "A reported domestic-violence case (家暴)"),
    _h("petitions", "log", "Petitions filed (信访)", **MONEY),
    _h("visits", "log", "Door-to-door visits (走访)", **MONEY),
    _h("worker_concern", "bool", "A worker flagged the family after a visit (重点关注)"),
    _h("declared_difficulty", "bool", "Declared its own difficulty and it was accepted (主动申报)"),
]}

INCOME_FACTS = ("income_wages_m", "income_business_m", "income_property_m", "income_transfer_m",
                "income_pension_m", "income_assistance_m")


class InvalidFactValue(ValueError):
    """A value does not fit its fact; the message never quotes the value."""


def coerce(spec: FactSpec, value: Any, code_lists: dict[str, frozenset[str]]) -> Any:
    """The value in its stored form, or InvalidFactValue saying what was expected."""
    t = spec.type
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InvalidFactValue("expected true or false")
    if t in ("int", "float", "log"):
        if value is None and t == "log":
            return 0.0
        if isinstance(value, bool):
            raise InvalidFactValue(f"expected a number ({'integer' if t == 'int' else 'decimal'})")
        try:
            number = int(value) if t == "int" and not isinstance(value, float) else float(value)
        except (TypeError, ValueError):
            raise InvalidFactValue(f"expected a number ({'integer' if t == 'int' else 'decimal'})") from None
        if t == "int" and isinstance(value, float) and not value.is_integer():
            raise InvalidFactValue("expected an integer")
        if isinstance(number, float) and not math.isfinite(number):
            raise InvalidFactValue("expected a finite number")
        if (spec.minimum is not None and number < spec.minimum) or (spec.maximum is not None and number > spec.maximum):
            raise InvalidFactValue(f"out of range [{spec.minimum}, {spec.maximum}]")
        return int(number) if t == "int" else float(number)
    if t == "enum":
        if not isinstance(value, str) or value not in spec.values:
            raise InvalidFactValue("not one of the allowed values: " + ", ".join(spec.values))
        return value
    if t == "codes":
        allowed = code_lists.get(spec.values[0], frozenset())
        if not isinstance(value, str) or value not in allowed:
            raise InvalidFactValue(f"not a code of the configured list {spec.values[0]}")
        return value
    if t == "date":
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise InvalidFactValue("expected a date YYYY-MM-DD") from None
    raise InvalidFactValue("unknown fact type")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a value came from: a department and its record, or a channel and its act."""

    source: str  # department code, or survey / declaration / worker
    record: str | None
    effective: date
    received_at: str  # ISO timestamp


@dataclass(frozen=True, slots=True)
class Change:
    """One fact that took a new value (old/new are plain values: None when unknown)."""

    fact: str
    old: Any
    new: Any
    effective: date
    source: str
    record: str | None
    item_value: Any = None  # what the record carried (the code added, the amount logged)


def _ref(p: Provenance) -> str:
    return f"{p.source}:{p.record}" if p.record else f"{p.source}@{p.received_at}"


def apply(facts: dict[str, Any], spec: FactSpec, value: Any, p: Provenance, today: date) -> Change | None:
    """Apply an already coerced value to a fact dictionary in place; None when nothing changed.

    Idempotent by record: the same record applied twice changes nothing, and an older effective
    date never overwrites a newer value.
    """
    entry = facts.get(spec.key)
    eff = p.effective.isoformat()
    meta = {"src": p.source, "rec": p.record, "eff": eff, "at": p.received_at}
    if spec.type == "codes":
        codes = dict(entry["v"]) if entry else {}
        if value in codes:
            return None
        old = sorted(codes)
        codes[value] = eff
        facts[spec.key] = {"v": codes, **meta}
        return Change(spec.key, old, sorted(codes), p.effective, p.source, p.record, value)
    if spec.type == "log":
        ref = _ref(p)
        items = list(entry["v"]) if entry else []
        if any(i[2] == ref for i in items):
            return None
        horizon = (today - timedelta(days=LOG_KEEP_DAYS)).isoformat()
        items = [i for i in items if i[0] >= horizon]
        items.append([eff, value, ref])
        items.sort(key=lambda i: i[0])
        facts[spec.key] = {"v": items, **meta}
        return Change(spec.key, None, value, p.effective, p.source, p.record, value)
    if entry is not None:
        if entry["v"] == value or entry["eff"] > eff:
            return None  # unchanged, or stale: a newer value is already known
        if p.record is not None and entry.get("rec") == p.record and entry.get("src") == p.source:
            return None
    old = entry["v"] if entry else None
    # The previous value stays beside the new one: "worsened in 12 months" and the income
    # trend are read from it.
    facts[spec.key] = {"v": value, **meta, "prev": old, "pe": entry["eff"] if entry else None}
    return Change(spec.key, old, value, p.effective, p.source, p.record, value)


def value_of(facts: dict[str, Any], key: str) -> Any:
    entry = facts.get(key)
    return None if entry is None else entry["v"]
