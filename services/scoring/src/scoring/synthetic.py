"""Synthetic scoring views with plausible distributions, generated column by column (seeded).

For tests, benchmarks and calibrating the model: never real data. Shapes follow the brief
(83k on-register and 140k off-register households, 1-7 members, illness and disability rates
of a low-income population) and the fields hang together (members add up, ratios are computed
from the amounts they divide, a null ratio when income is 0 is named as missing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.rules.view import ViewCatalogue

DISTRICT_WEIGHTS = {
    "330102000000": 0.08, "330105000000": 0.09, "330106000000": 0.08, "330108000000": 0.04,
    "330109000000": 0.13, "330110000000": 0.10, "330111000000": 0.08, "330112000000": 0.07,
    "330113000000": 0.06, "330114000000": 0.05, "330122000000": 0.06, "330127000000": 0.08,
    "330182000000": 0.07, "330161000000": 0.01,
}
# Nullable fields whose null means "not applicable" (the registry does not call them missing).
NOT_APPLICABLE = ("off_register_source", "months_since_exit", "disability_grade_min", "employment_rate")


def generate(view: ViewCatalogue, n: int, seed: int = 20261128, unknown_rate: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A (fields, n) matrix of encoded facts and a (fields, n) mask of facts named as missing.

    ``unknown_rate`` additionally blanks that share of every field at random (and names them
    missing), to exercise the treatment of unknown facts.
    """
    g = _Generator(view, n, seed)
    columns = g.run()
    matrix = np.full((len(view), n), np.nan)
    for name, values in columns.items():
        f = view.by_name[name]
        col = np.asarray(values, dtype=np.float64)
        if f.lo is not None and f.hi is not None:
            col = np.clip(col, f.lo, f.hi)
        matrix[f.index] = col
    missing = np.isnan(matrix)
    for name in NOT_APPLICABLE:
        missing[view.by_name[name].index] = False
    if unknown_rate > 0:
        blank = g.rng.random(matrix.shape) < unknown_rate
        matrix[blank] = np.nan
        missing |= blank
    return matrix, missing


def to_views(view: ViewCatalogue, matrix: np.ndarray, missing: np.ndarray) -> list[tuple[dict[str, Any], list[str]]]:
    """The JSON views (as the registry sends them) of a generated matrix."""
    names = view.names
    decoded = []
    for f in view.fields:
        col = matrix[f.index]
        known = ~np.isnan(col)
        if f.type == "bool":
            values = [bool(v) if k else None for v, k in zip(col.tolist(), known.tolist(), strict=True)]
        elif f.type == "enum":
            if f.values is None:
                values = [f"{int(v):012d}" if k else None for v, k in zip(col.tolist(), known.tolist(), strict=True)]
            else:
                values = [f.values[int(v)] if k else None for v, k in zip(col.tolist(), known.tolist(), strict=True)]
        elif f.type == "int":
            values = [int(v) if k else None for v, k in zip(col.tolist(), known.tolist(), strict=True)]
        else:
            values = [v if k else None for v, k in zip(col.tolist(), known.tolist(), strict=True)]
        decoded.append(values)
    out = []
    miss_rows = missing.T
    for i, row in enumerate(zip(*decoded, strict=True)):
        out.append((dict(zip(names, row, strict=True)), [names[j] for j in np.flatnonzero(miss_rows[i])]))
    return out


class _Generator:
    def __init__(self, view: ViewCatalogue, n: int, seed: int) -> None:
        self.view = view
        self.n = n
        self.rng = np.random.default_rng(seed)

    def p(self, prob: float | np.ndarray) -> np.ndarray:
        return self.rng.random(self.n) < prob

    def enum(self, name: str, weights: dict[str, float]) -> np.ndarray:
        values = self.view.by_name[name].values or ()
        probs = np.array([weights.get(v, 0.0) for v in values])
        return self.rng.choice(len(values), size=self.n, p=probs / probs.sum()).astype(np.float64)

    def lognormal(self, median: float | np.ndarray, sigma: float) -> np.ndarray:
        return np.round(median * np.exp(self.rng.normal(0, sigma, self.n)), 2)

    def run(self) -> dict[str, Any]:  # noqa: PLR0915 - one field after another reads best
        rng, n, c = self.rng, self.n, {}
        status = self.enum("register_status", {"dibao": 0.22, "dibian": 0.10, "tekun": 0.05, "off_register": 0.63})
        dibao, dibian, tekun, off = (status == 0), (status == 1), (status == 2), (status == 3)
        on = ~off
        c["register_status"] = status
        source = self.enum("off_register_source", {"assistance_exit": 0.25, "application_refused": 0.15,
                                                   "temporary_assistance": 0.2, "proactive_discovery": 0.25,
                                                   "other_department": 0.15})
        c["off_register_source"] = np.where(off, source, np.nan)
        c["channel"] = self.enum("channel", {"survey": 0.35, "declaration": 0.15, "data_sharing": 0.35, "big_data": 0.15})
        c["months_on_register"] = np.minimum(rng.exponential(40, n).astype(int), 720)
        exited = off & (source == 0)
        c["months_since_exit"] = np.where(exited, rng.integers(0, 37, n), np.nan)
        c["applications_refused_24m"] = rng.poisson(0.15, n) + (off & (source == 1))
        c["declared_difficulty"] = self.p(0.08)
        rural = self.p(0.35)
        c["rural_hukou"] = rural
        codes = list(DISTRICT_WEIGHTS)
        weights = np.array(list(DISTRICT_WEIGHTS.values()))
        c["district_code"] = np.array([float(x) for x in codes])[rng.choice(len(codes), n, p=weights / weights.sum())]

        # --- members ------------------------------------------------------------------------
        size = rng.choice(np.arange(1, 8), n, p=[0.22, 0.28, 0.22, 0.15, 0.08, 0.04, 0.01])
        parts = rng.multinomial(size, [0.07, 0.15, 0.04, 0.47, 0.20, 0.07])
        u6, c6, teen, adult, e60, e80 = parts.T
        minors = u6 + c6 + teen
        a16 = adult + teen
        elders = e60 + e80
        c.update(members_total=size, children_under_6=u6, children_6_15=c6, minors_total=minors, adults_16_59=a16,
                 elders_60_79=e60, elders_80_plus=e80)
        c["dependency_ratio"] = np.round((minors + elders) / np.maximum(a16, 1), 4)
        died = self.p(0.03)
        c["members_deceased_12m"] = died.astype(int)
        c["breadwinner_lost_12m"] = died & self.p(0.4)
        c["members_born_12m"] = ((u6 >= 1) & self.p(0.15)).astype(int)
        c["single_parent"] = (minors >= 1) & (adult == 1) & self.p(0.5)
        head_age = np.where(elders > 0, rng.integers(60, 96, n), rng.integers(22, 60, n)).astype(float)
        c["head_age"] = np.where(self.p(0.03), np.nan, head_age)
        c["head_female"] = self.p(0.4)
        c["living_alone_elder"] = ((size == 1) & (elders == 1)) | ((elders >= 1) & self.p(0.02))
        c["left_behind_children"] = np.where(rural, rng.binomial(minors, 0.15), 0)
        c["left_behind_elders"] = np.where(rural, rng.binomial(elders, 0.1), 0)
        c["orphans"] = ((minors >= 1) & (adult == 0) & self.p(0.3)).astype(int) + ((minors >= 1) & self.p(0.005))
        c["pregnant_members"] = ((adult >= 1) & self.p(0.02)).astype(int)
        c["members_in_custody"] = self.p(0.01).astype(int)
        c["members_missing"] = self.p(0.003).astype(int)
        higher = np.minimum(rng.binomial(adult, 0.05), adult)
        c["students_higher_education"] = higher
        c["students_away"] = rng.binomial(higher, 0.6)
        c["students_compulsory"] = c6 + rng.binomial(teen, 0.3)

        # --- health -------------------------------------------------------------------------
        major = np.minimum(rng.poisson(0.06 + 0.12 * elders + 0.05 * on), size)
        c["major_illness_members"] = major
        c["major_illness_new_12m"] = rng.binomial(major, 0.3)
        chronic = np.minimum(rng.binomial(size, 0.12) + rng.binomial(elders, 0.35), size)
        c["chronic_illness_members"] = chronic
        c["chronic_conditions_total"] = chronic + rng.poisson(0.4 * chronic)
        disabled = np.minimum(rng.binomial(size, 0.06 + 0.04 * on), size)
        severe = rng.binomial(disabled, 0.35)
        c["disabled_members"] = disabled
        c["severe_disability_members"] = severe
        grade = np.where(severe > 0, rng.integers(1, 3, n), rng.integers(3, 5, n)).astype(float)
        c["disability_grade_min"] = np.where(disabled > 0, grade, np.nan)
        c["intellectual_or_mental_disability"] = rng.binomial(disabled, 0.25)
        c["disability_worsened_12m"] = (disabled > 0) & self.p(0.05)
        care = np.minimum(rng.binomial(elders, 0.12) + rng.binomial(severe, 0.5), size)
        c["members_needing_care"] = care
        c["fully_disabled_elders"] = np.minimum(rng.binomial(care, 0.4), elders)
        stays = rng.poisson(0.15 + 0.8 * major + 0.2 * chronic)
        c["hospital_stays_12m"] = np.minimum(stays, 60)
        c["hospital_days_12m"] = np.minimum(np.round(stays * rng.gamma(2.0, 5.0, n)), 366)
        c["severe_mental_illness"] = self.p(0.01)
        c["long_term_medication"] = (chronic + major > 0) & self.p(0.7)
        c["members_uninsured_medical"] = self.p(0.05).astype(int)
        c["critical_illness_insurance"] = self.p(0.45)

        # --- money --------------------------------------------------------------------------
        median_pc = np.select([dibao, tekun, dibian], [700.0, 650.0, 1500.0], 3400.0)
        pc = self.lognormal(median_pc, np.where(off, 0.55, 0.35))
        pc = np.where(self.p(0.04), 0.0, pc)
        household = pc * size
        shares = rng.dirichlet([3.0, 0.6, 0.3, 0.8, 1.0, 0.2], n)
        shares[:, 5] += np.where(on, 1.5, 0.0)  # assistance matters for those on the register
        shares /= shares.sum(axis=1, keepdims=True)
        for i, name in enumerate(("income_wages_m", "income_business_m", "income_property_m", "income_transfer_m",
                                  "income_pension_m", "income_assistance_m")):
            c[name] = np.round(household * shares[:, i], 2)
        c["income_monthly_per_capita"] = np.round(pc, 2)
        trend = np.round(np.exp(rng.normal(0, 0.15, n)) * np.where(self.p(0.08), rng.uniform(0.3, 0.7, n), 1.0), 4)
        c["income_trend_12m"] = np.where(self.p(0.1), np.nan, trend)
        deposits = np.where(self.p(0.2), 0.0, self.lognormal(np.where(on, 4000.0, 20000.0), 1.0))
        securities = np.where(self.p(0.9), 0.0, self.lognormal(30000.0, 1.0))
        c["deposits"], c["securities"] = deposits, securities
        c["financial_assets_per_capita"] = np.round((deposits + securities) / np.maximum(size, 1), 2)
        units = rng.choice([0, 1, 2], n, p=[0.25, 0.70, 0.05])
        c["housing_units"] = units
        c["housing_area_per_capita"] = np.where(units > 0, self.lognormal(25.0, 0.4), 0.0)
        renter = self.enum("housing_status", {"rented": 0.6, "public_rental": 0.2, "lodging": 0.15, "none": 0.05})
        housing = np.where(units > 0, 0.0, renter)  # 0 = owned
        c["housing_status"] = housing
        c["housing_unsafe"] = (housing == 0) & self.p(np.where(rural, 0.06, 0.01))
        vehicles = rng.choice([0, 1, 2], n, p=[0.85, 0.13, 0.02])
        c["vehicles"] = vehicles
        c["vehicle_value"] = np.where(vehicles > 0, self.lognormal(40000.0, 0.6) * vehicles, 0.0)
        business = self.p(0.06).astype(int)
        c["business_registrations"] = business
        c["business_capital"] = np.where(business > 0, self.lognormal(50000.0, 1.0), 0.0)
        c["land_contract_mu"] = np.where(rural & self.p(0.8), self.lognormal(2.0, 0.6), 0.0)

        # --- expenditure ----------------------------------------------------------------------
        oop = np.select([major > 0, chronic > 0], [self.lognormal(30000.0, 0.8), self.lognormal(3000.0, 0.8)],
                        np.where(self.p(0.4), 0.0, self.lognormal(500.0, 0.8)))
        c["medical_oop_12m"] = oop
        annual = household * 12
        safe = np.where(annual > 0, annual, 1.0)
        c["medical_oop_ratio"] = np.where(annual > 0, np.round(oop / safe, 4), np.nan)
        c["large_medical_expense_12m"] = (oop >= 20000) & self.p(0.7)
        students = higher + c["students_compulsory"]
        c["education_12m"] = np.round(higher * self.lognormal(12000.0, 0.4) + c["students_compulsory"] * self.lognormal(1500.0, 0.5), 2)
        rent = np.select([housing == 1, housing == 2], [self.lognormal(1500.0, 0.4), self.lognormal(400.0, 0.3)], 0.0)
        c["rent_m"] = rent
        care_costs = np.where(care > 0, self.lognormal(12000.0, 0.7), 0.0)
        c["care_costs_12m"] = care_costs
        rigid = oop + c["education_12m"] + rent * 12 + care_costs
        c["rigid_expenditure_ratio"] = np.where(annual > 0, np.round(rigid / safe, 4), np.nan)
        debts = np.where(self.p(0.3 + 0.3 * (major > 0)), self.lognormal(50000.0, 1.0), 0.0)
        c["debts_total"] = debts
        c["medical_debt"] = np.where(major > 0, np.round(debts * rng.uniform(0.3, 1.0, n), 2), 0.0)
        c["debt_to_income"] = np.where(annual > 0, np.round(debts / safe, 4), np.nan)
        c["utility_arrears_months"] = rng.poisson(np.where(pc < 800, 0.4, 0.05))
        c["funeral_costs_12m"] = np.where(died, self.lognormal(25000.0, 0.5), 0.0)

        # --- employment --------------------------------------------------------------------
        working = np.maximum(a16 - higher, 0)
        c["working_age_members"] = working
        able = np.maximum(working - rng.binomial(working, np.where(on, 0.25, 0.08)), 0)
        employed = rng.binomial(able, np.where(on, 0.35, 0.6))
        flexible = rng.binomial(able - employed, 0.5)
        unemployed = able - employed - flexible
        c.update(employed_members=employed, flexible_employed_members=flexible, unemployed_members=unemployed)
        c["registered_unemployed"] = rng.binomial(unemployed, 0.4)
        lost = rng.binomial(unemployed, 0.3)
        c["job_lost_12m"] = lost
        partial = np.minimum(working - able + rng.binomial(e60, 0.4), size - able)
        c["full_labour_members"] = able
        c["partial_labour_members"] = partial
        c["no_labour_members"] = size - able - partial
        c["employment_rate"] = np.where(working > 0, np.round((employed + flexible) / np.maximum(working, 1), 4), np.nan)
        c["social_insurance_members"] = np.minimum(employed + rng.binomial(flexible, 0.4), size)
        c["unemployment_benefit"] = (lost > 0) & self.p(0.3)
        c["public_welfare_job"] = on & (able > 0) & self.p(0.05)
        c["vocational_training_12m"] = (self.p(0.08) & (working > 0)).astype(int)
        education = self.enum("head_education", {"none": 0.08, "primary": 0.25, "junior": 0.35, "senior": 0.15,
                                                 "vocational": 0.1, "college": 0.06, "postgraduate": 0.01})
        c["head_education"] = np.where(self.p(0.05), np.nan, education)

        # --- other --------------------------------------------------------------------------
        disaster = self.p(0.012)
        c["disaster_affected_12m"] = disaster
        c["accident_12m"] = self.p(0.01)
        c["fire_or_flood_loss"] = np.where(disaster, self.lognormal(20000.0, 0.8), 0.0)
        c["temporary_assistance_12m"] = rng.poisson(np.where(off & (source == 2), 1.2, 0.05))
        c["receives_dibao"] = dibao & self.p(0.98)
        c["receives_tekun"] = tekun & self.p(0.98)
        c["receives_disability_allowance"] = (disabled > 0) & self.p(0.7)
        c["receives_education_aid"] = (students > 0) & on & self.p(0.6)
        c["receives_medical_aid"] = on & ((major > 0) | (oop > 5000)) & self.p(0.6)
        c["receives_housing_aid"] = (c["housing_unsafe"] | (housing == 2)) & self.p(0.5)
        c["receives_employment_aid"] = (unemployed > 0) & self.p(0.3)
        c["receives_elder_care_subsidy"] = (e80 > 0) & self.p(0.5)
        c["veteran_household"] = self.p(0.03)
        c["domestic_violence"] = self.p(0.005)
        c["member_in_rehab"] = self.p(0.003)
        c["petitions_12m"] = rng.poisson(0.05, n)
        visits = rng.poisson(np.where(on, 2.0, 0.8))
        c["survey_visits_12m"] = visits
        c["worker_concern"] = self.p(0.05)
        days = np.where(visits > 0, rng.integers(0, 366, n), rng.integers(180, 900, n)).astype(float)
        c["days_since_last_visit"] = np.where((visits == 0) & self.p(0.6), np.nan, days)
        return c
