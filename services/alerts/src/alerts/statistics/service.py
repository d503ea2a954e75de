"""Aggregating the statistics: counts, on-time verification, medians and rule precision."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from alerts.profile import Profile
from alerts.raising.service import CLOSED
from alerts.statistics.schemas import AreaStatistics, RulePrecision

DISPOSITIONS = ("policy_referral", "service_referral", "no_need", "false_alarm", CLOSED)


def aggregate(area: str, facts: Iterable[Any], outcomes: Iterable[Any], profile: Profile) -> AreaStatistics:
    raised = open_ = overdue_open = overdue_total = verified = on_time = 0
    hours: list[float] = []
    dispositions = dict.fromkeys(DISPOSITIONS, 0)
    for f in facts:
        raised += 1
        is_open = f.status != "disposed"
        open_ += is_open
        if f.overdue_at is not None:
            overdue_total += 1
            overdue_open += is_open
        if f.verified_at is not None:
            verified += 1
            on_time += _utc(f.verified_at) <= _utc(f.deadline_at)
            hours.append((_utc(f.verified_at) - _utc(f.raised_at)).total_seconds() / 3600)
        if f.disposition:
            dispositions[f.disposition] = dispositions.get(f.disposition, 0) + 1
    return AreaStatistics(
        area_code=area, raised=raised, open=open_, overdue_open=overdue_open, overdue_total=overdue_total,
        verified=verified, verified_on_time=on_time, on_time_rate=round(on_time / verified, 4) if verified else None,
        median_hours_to_verification=round(statistics.median(hours), 2) if hours else None,
        dispositions=dispositions, rules=_precision(outcomes, profile),
    )


def _precision(outcomes: Iterable[Any], profile: Profile) -> list[RulePrecision]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # alerts, disposed, false alarms
    for o in outcomes:
        c = counts[o.rule_code]
        c[0] += 1
        if o.disposition and o.disposition != CLOSED:  # no worker judged the rule
            c[1] += 1
            c[2] += o.disposition == "false_alarm"
    out = []
    for code in sorted(counts):
        alerts, disposed, false_alarm = counts[code]
        rule = profile.rule(code)
        out.append(RulePrecision(
            code=code, name_zh=rule.name_zh if rule else code, alerts=alerts, disposed=disposed,
            confirmed=disposed - false_alarm, false_alarm=false_alarm,
            precision=round((disposed - false_alarm) / disposed, 4) if disposed else None,
        ))
    return out


def by_area(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        grouped[r.area].append(r)
    return grouped


def _utc(moment: datetime) -> datetime:
    # the UTCDateTime columns already give aware UTC; this guards a plain column read
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
