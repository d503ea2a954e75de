"""The scoring view of a household (config/scoring-view.yaml), computed from its facts.

Pure and flat: one pass over the members, then one value per field. A field the registry cannot
vouch for (never reported, or a value outside the contract) is sent as null and named in
``missing``; the scoring model decides what a missing value means. No names, ID numbers,
phones or addresses ever enter here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, timedelta
from typing import Any

from registry.facts.vocabulary import INCOME_FACTS

Facts = dict[str, Any]


# Not frozen: a frozen dataclass sets each field through object.__setattr__ (1.4 against 0.3 us
# for eight fields), and a batch makes one HouseholdFacts and two MemberFacts a household it
# changes. Nothing assigns to them after they are made.
@dataclass(slots=True)
class MemberFacts:
    birth_date: date
    sex: str
    relation: str
    facts: Facts


@dataclass(slots=True)
class HouseholdFacts:
    area_code: str
    register_status: str
    off_register_source: str | None
    channel: str
    status_since: date
    rural_hukou: bool
    facts: Facts
    members: list[MemberFacts] = field(default_factory=list)


# The fields the registry sends as null, and names in ``missing``, when it cannot vouch for them
# (never reported, or not to be worked out from what was): the scoring model decides what that
# means. Other fields have a value always (a count, a flag) or are null by definition (a ratio
# over nothing).
VOUCHED = (
    "months_since_exit",
    "head_age",
    "income_monthly_per_capita",
    *INCOME_FACTS,
    "income_trend_12m",
    "deposits",
    "securities",
    "financial_assets_per_capita",
    "housing_units",
    "housing_area_per_capita",
    "housing_status",
    "vehicles",
    "vehicle_value",
    "business_registrations",
    "business_capital",
    "land_contract_mu",
    "medical_oop_ratio",
    "rent_m",
    "rigid_expenditure_ratio",
    "debts_total",
    "debt_to_income",
    "head_education",
    "days_since_last_visit",
)


# The view's fields that carry a fact's value as stored (its numbers), not one computed here: a
# fact written before its type was enforced may hold an int where the contract says float, so
# these are cast. Every other field is computed in the contract's type (tests/facts/test_view.py).
FACT_VALUES = frozenset({
    *INCOME_FACTS, "deposits", "securities", "housing_units", "vehicles", "vehicle_value", "business_registrations",
    "business_capital", "land_contract_mu", "rent_m", "debts_total", "medical_debt", "utility_arrears_months",
    "disability_grade_min",
})


@dataclass(frozen=True, slots=True)
class ViewParameters:
    large_medical_expense: float  # CNY, one bill


def _v(facts: Facts, key: str) -> Any:
    entry = facts.get(key)
    return None if entry is None else entry["v"]


def age_on(birth: date, today: date) -> int:
    """Whole years on ``today``: the view's age bands, a member's age, member_ages."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _months(since: date, today: date) -> int:
    return max(0, (today.year - since.year) * 12 + today.month - since.month - (today.day < since.day))


def _log(facts: Facts, key: str, cutoff: str) -> list[list[Any]]:
    entry = facts.get(key)
    return [] if entry is None else [i for i in entry["v"] if i[0] >= cutoff]


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _value_then(facts: Facts, key: str, cutoff: str) -> float | None:
    """The value a fact had on the cutoff date, as far as the registry knows."""
    entry = facts.get(key)
    if entry is None:
        return None
    if entry["eff"] <= cutoff:
        return entry["v"]
    return entry.get("prev") if entry.get("pe") is not None and entry["pe"] <= cutoff else None


@lru_cache(maxsize=64)
def _cutoffs(today: date) -> tuple[str, str, str]:
    """``today``, a year and two years before it, as ISO text (what fact dates are compared to)."""
    return today.isoformat(), (today - timedelta(days=365)).isoformat(), (today - timedelta(days=730)).isoformat()


def compute_view(h: HouseholdFacts, today: date, params: ViewParameters) -> tuple[dict[str, Any], list[str]]:
    today_iso, y1, y2 = _cutoffs(today)
    hf = h.facts

    # --- one pass over the members ------------------------------------------------------
    living: list[tuple[MemberFacts, int]] = []
    deceased_12m = born_12m = 0
    breadwinner_lost = False
    head: tuple[MemberFacts, int] | None = None
    for m in h.members:
        died = _v(m.facts, "deceased_on")
        if died is not None and died <= today_iso:
            if died >= y1:
                deceased_12m += 1
                if m.relation == "head" or _v(m.facts, "employment_status") in ("employed", "flexible"):
                    breadwinner_lost = True
            continue
        age = age_on(m.birth_date, today)
        living.append((m, age))
        if m.birth_date.isoformat() >= y1:
            born_12m += 1
        if m.relation == "head":
            head = (m, age)

    # Counters as locals, not a dictionary: this loop runs for every member of every household
    # a batch changes.
    u6 = c6_15 = minor = a16_59 = e60_79 = e80 = left_child = left_elder = orphans = pregnant = 0
    custody = missing_members = away = major_members = major_new = chronic_members = chronic_total = 0
    disabled = severe = intel = needing_care = full_care_elder = stays = days = uninsured = working_age = 0
    employed = flexible = unemployed = reg_unemployed = job_lost = full = partial = no_labour = pension = 0
    trained = higher = compulsory = 0
    grades: list[int] = []
    mental = medication = worsened = benefit = welfare_job = disability_allowance = education_aid = False
    veteran = rehab = alone_elder = spouse = False
    for m, age in living:
        f = m.facts
        # Each fact's value read once (a member has a dozen facts; the loop asks for forty).
        v = {k: e["v"] for k, e in f.items()}.get
        left_behind, care_need = v("left_behind"), v("care_need")
        if age < 6:
            u6 += 1
        elif age <= 15:
            c6_15 += 1
        if age < 18:
            minor += 1
            left_child += left_behind is True
        elif age >= 60:
            if age >= 80:
                e80 += 1
            else:
                e60_79 += 1
            left_elder += left_behind is True
            alone_elder |= v("living_alone") is True
            full_care_elder += care_need == "full"
        stage = v("school_stage")
        if 16 <= age <= 59:
            a16_59 += 1
            if stage in (None, "none"):
                working_age += 1
        higher += stage in ("college", "postgraduate")
        compulsory += stage in ("primary", "junior")
        spouse |= m.relation == "spouse"
        orphans += v("orphan") is True
        pregnant += v("pregnant") is True
        custody += v("in_custody") is True
        missing_members += v("missing_person") is True
        away += v("studying_away") is True
        major = v("major_illnesses") or {}
        major_members += bool(major)
        major_new += sum(1 for d in major.values() if d >= y1)
        chronic = v("chronic_conditions") or {}
        chronic_members += bool(chronic)
        chronic_total += len(chronic)
        grade = v("disability_grade")
        if grade is not None:
            grades.append(grade)
            disabled += 1
            severe += grade <= 2
            entry = f["disability_grade"]
            if entry.get("prev") is not None and grade < entry["prev"] and entry["eff"] >= y1:
                worsened = True
        intel += v("disability_type") in ("intellectual", "mental")
        needing_care += care_need in ("partial", "full")
        if "hospital_stays" in f:
            recent = _log(f, "hospital_stays", y1)
            stays += len(recent)
            days += int(sum(i[1] for i in recent))
        mental |= v("severe_mental_illness") is True
        medication |= v("long_term_medication") is True
        uninsured += v("medical_insured") is False
        status = v("employment_status")
        employed += status == "employed"
        flexible += status == "flexible"
        capacity = v("labour_capacity")
        unemployed += capacity != "none" and status in ("unemployed", "registered_unemployed")
        reg_unemployed += status == "registered_unemployed"
        lost = v("job_lost_on")
        job_lost += lost is not None and lost >= y1
        if capacity == "full":
            full += 1
        elif capacity == "partial":
            partial += 1
        elif capacity == "none":
            no_labour += 1
        pension += v("pension_insured") is True
        trained += "vocational_training" in f and bool(_log(f, "vocational_training", y1))
        benefit |= v("unemployment_benefit") is True
        welfare_job |= v("public_welfare_job") is True
        disability_allowance |= v("disability_allowance") is True
        education_aid |= v("education_aid") is True
        veteran |= v("veteran") is True
        rehab |= v("in_rehab") is True

    n = len(living)
    per_head = max(n, 1)

    # --- money ---------------------------------------------------------------------------
    hv = {k: e["v"] for k, e in hf.items()}.get  # each household fact's value, read once
    incomes = {k: hv(k) for k in INCOME_FACTS}
    known_incomes = [v for v in incomes.values() if v is not None]
    income_m = sum(known_incomes) if known_incomes else None
    income_y = income_m * 12 if income_m is not None else None
    then = [_value_then(hf, k, y1) for k in INCOME_FACTS]
    income_then = sum(v for v in then if v is not None) if any(v is not None for v in then) else None
    deposits, securities = hv("deposits"), hv("securities")
    assets = None if deposits is None and securities is None else (deposits or 0.0) + (securities or 0.0)
    housing_area = hv("housing_area")
    # Sums start at 0.0: the view's amounts are floats even when nothing was spent.
    bills = _log(hf, "medical_bills", y1)
    medical = sum((i[1] for i in bills), 0.0)
    education = sum((i[1] for i in _log(hf, "education_spending", y1)), 0.0)
    care = sum((i[1] for i in _log(hf, "care_costs", y1)), 0.0)
    rent = hv("rent_m")
    debts = hv("debts_total")
    disasters = _log(hf, "disasters", y1)
    visits = hv("visits") or []
    exit_on = hv("assistance_exit_on")
    status = h.register_status

    view: dict[str, Any] = {
        "register_status": status,
        "off_register_source": h.off_register_source if status == "off_register" else None,
        "channel": h.channel,
        "months_on_register": _months(h.status_since, today),
        "months_since_exit": _months(date.fromisoformat(exit_on), today) if exit_on else None,
        "applications_refused_24m": len(_log(hf, "applications_refused", y2)),
        "declared_difficulty": hv("declared_difficulty") is True,
        "rural_hukou": h.rural_hukou,
        "district_code": h.area_code[:6] + "000000",
        "members_total": n,
        "members_deceased_12m": deceased_12m,
        "members_born_12m": born_12m,
        "children_under_6": u6,
        "children_6_15": c6_15,
        "minors_total": minor,
        "adults_16_59": a16_59,
        "elders_60_79": e60_79,
        "elders_80_plus": e80,
        "dependency_ratio": round((minor + e60_79 + e80) / max(a16_59, 1), 4),
        "single_parent": bool(minor and head is not None and not spouse and 18 <= head[1] < 60),
        "head_age": head[1] if head else None,
        "head_female": head is not None and head[0].sex == "female",
        "living_alone_elder": alone_elder or (n == 1 and e60_79 + e80 == 1),
        "left_behind_children": left_child,
        "left_behind_elders": left_elder,
        "orphans": orphans,
        "breadwinner_lost_12m": breadwinner_lost,
        "pregnant_members": pregnant,
        "members_in_custody": custody,
        "members_missing": missing_members,
        "students_away": away,
        "major_illness_members": major_members,
        "major_illness_new_12m": major_new,
        "chronic_illness_members": chronic_members,
        "chronic_conditions_total": chronic_total,
        "disabled_members": disabled,
        "severe_disability_members": severe,
        "disability_grade_min": min(grades) if grades else None,
        "intellectual_or_mental_disability": intel,
        "disability_worsened_12m": worsened,
        "members_needing_care": needing_care,
        "fully_disabled_elders": full_care_elder,
        "hospital_stays_12m": stays,
        "hospital_days_12m": days,
        "severe_mental_illness": mental,
        "long_term_medication": medication,
        "members_uninsured_medical": uninsured,
        "critical_illness_insurance": hv("critical_illness_insurance") is True,
        "income_monthly_per_capita": round(income_m / per_head, 2) if income_m is not None else None,
        **incomes,
        "income_trend_12m": _ratio(income_m, income_then) if income_m is not None else None,
        "deposits": deposits,
        "securities": securities,
        "financial_assets_per_capita": round(assets / per_head, 2) if assets is not None else None,
        "housing_units": hv("housing_units"),
        "housing_area_per_capita": round(housing_area / per_head, 2) if housing_area is not None else None,
        "housing_status": hv("housing_status"),
        "housing_unsafe": hv("housing_unsafe") is True,
        "vehicles": hv("vehicles"),
        "vehicle_value": hv("vehicle_value"),
        "business_registrations": hv("business_registrations"),
        "business_capital": hv("business_capital"),
        "land_contract_mu": hv("land_contract_mu"),
        "medical_oop_12m": round(medical, 2),
        "medical_oop_ratio": _ratio(medical, income_y),
        "large_medical_expense_12m": any(i[1] >= params.large_medical_expense for i in bills),
        "education_12m": round(education, 2),
        "students_higher_education": higher,
        "students_compulsory": compulsory,
        "rent_m": rent if rent is not None else (0.0 if hv("housing_status") in ("owned", "public_rental", "lodging") else None),
        "care_costs_12m": round(care, 2),
        "rigid_expenditure_ratio": _ratio(medical + education + (rent or 0.0) * 12 + care, income_y),
        "debts_total": debts,
        "medical_debt": hv("medical_debt") or 0.0,
        "debt_to_income": _ratio(debts, income_y) if debts is not None else None,
        "utility_arrears_months": hv("utility_arrears_months") or 0,
        "funeral_costs_12m": round(sum((i[1] for i in _log(hf, "funerals", y1)), 0.0), 2),
        "working_age_members": working_age,
        "employed_members": employed,
        "flexible_employed_members": flexible,
        "unemployed_members": unemployed,
        "registered_unemployed": reg_unemployed,
        "job_lost_12m": job_lost,
        "full_labour_members": full,
        "partial_labour_members": partial,
        "no_labour_members": no_labour,
        "employment_rate": _ratio(employed + flexible, working_age),
        "social_insurance_members": pension,
        "unemployment_benefit": benefit,
        "public_welfare_job": welfare_job,
        "vocational_training_12m": trained,
        "head_education": _v(head[0].facts, "education_attained") if head else None,
        "disaster_affected_12m": bool(disasters),
        "accident_12m": bool(_log(hf, "accidents", y1)),
        "fire_or_flood_loss": round(sum((i[1] for i in disasters), 0.0), 2),
        "temporary_assistance_12m": len(_log(hf, "temporary_assistance", y1)),
        "receives_dibao": _bool_or(hf, "receives_dibao", status == "dibao"),
        "receives_tekun": _bool_or(hf, "receives_tekun", status == "tekun"),
        "receives_disability_allowance": disability_allowance,
        "receives_education_aid": education_aid,
        "receives_medical_aid": hv("receives_medical_aid") is True,
        "receives_housing_aid": hv("receives_housing_aid") is True,
        "receives_employment_aid": hv("receives_employment_aid") is True,
        "receives_elder_care_subsidy": hv("receives_elder_care_subsidy") is True,
        "veteran_household": hv("veteran_household") is True or veteran,
        "domestic_violence": hv("domestic_violence") is True,
        "member_in_rehab": rehab,
        "petitions_12m": len(_log(hf, "petitions", y1)),
        "survey_visits_12m": sum(1 for i in visits if i[0] >= y1),
        "worker_concern": hv("worker_concern") is True,
        "days_since_last_visit": (today - date.fromisoformat(visits[-1][0])).days if visits else None,
    }
    return view, [name for name in VOUCHED if view[name] is None]


def _bool_or(facts: Facts, key: str, default: bool) -> bool:
    value = _v(facts, key)
    return default if value is None else value is True


class ScoringView:
    """The view computation bound to the contract: exactly the fields of scoring-view.yaml, in
    its order, with values outside the declared enums sent as missing."""

    def __init__(self, spec: Any, params: ViewParameters) -> None:
        self.spec = spec
        self.params = params
        casts = {"int": int, "float": float, "bool": bool}
        self._names = list(spec.names)
        self._enums = [(name, spec.enum_values[name]) for name in spec.names if spec.enum_values.get(name) is not None]
        self._casts = [(name, casts[spec.fields[name].type]) for name in spec.names
                       if name in FACT_VALUES and spec.enum_values.get(name) is None and spec.fields[name].type in casts]
        probe, _ = compute_view(
            HouseholdFacts("330100000000", "off_register", None, "survey", date(2000, 1, 1), False, {}),
            date(2000, 1, 2), params,
        )
        extra, absent = set(probe) - set(spec.names), set(spec.names) - set(probe)
        self._ordered = list(probe) == self._names  # computed in the contract's order: no copy
        if extra or absent:
            raise RuntimeError(
                f"the registry's scoring view does not match config/scoring-view.yaml: "
                f"not in the contract {sorted(extra)}, not computed {sorted(absent)}"
            )

    def __call__(self, h: HouseholdFacts, today: date) -> tuple[dict[str, Any], list[str]]:
        raw, missing = compute_view(h, today, self.params)
        view = raw if self._ordered else {name: raw[name] for name in self._names}
        for name, allowed in self._enums:
            value = view[name]
            if value is not None and value not in allowed:
                view[name] = None
                missing.append(name)
        # A fact's value in another type than the contract's (an int for a float) is cast; the
        # fields computed here have their type already.
        for name, cast in self._casts:
            value = view[name]
            if value is not None and type(value) is not cast:
                view[name] = cast(value)
        return view, sorted(set(missing))
