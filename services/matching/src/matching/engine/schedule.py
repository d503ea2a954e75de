"""Incremental matching on its own: a leased periodic job (one replica at a time) that runs the
engine when needs or offers changed since its last run -- a new or reopened need, an offer
published, paused or edited -- and at least every catch-up interval, since a new period frees
capacity without anything changing."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi import FastAPI

from servicekit.db import Database
from servicekit.jobs import PeriodicJob
from servicekit.tables import utcnow

from matching.engine import repository
from matching.engine.runner import RunReport, run
from matching.profile import Profile
from matching.settings import MatchingSettings


class IncrementalMatching:
    def __init__(self, db: Database, profile: Profile, catch_up_seconds: float) -> None:
        self.db, self.profile, self.catch_up = db, profile, catch_up_seconds
        self.last_started: datetime | None = None
        self.last_clock = float("-inf")

    async def __call__(self) -> RunReport | None:
        due = time.monotonic() - self.last_clock >= self.catch_up
        if not due and self.last_started is not None:
            async with self.db.sessionmaker() as session:
                if not await repository.work_waiting(session, self.last_started):
                    return None
        started = utcnow()
        report = await run(self.db, self.profile, mode="incremental", triggered_by="job:incremental-matching")
        self.last_started, self.last_clock = started, time.monotonic()
        return report


def matching_job(app: FastAPI) -> PeriodicJob | None:
    settings: MatchingSettings = app.state.settings
    if settings.auto_match_interval_seconds <= 0:
        return None
    work = IncrementalMatching(app.state.db, app.state.profile, settings.auto_match_catch_up_seconds)
    return PeriodicJob("incremental-matching", settings.auto_match_interval_seconds, work, db=app.state.db)
