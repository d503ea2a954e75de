"""Dependencies declared once: the scoring engine of the process and who may do what."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from servicekit.auth import Caller, Role, require_roles
from servicekit.db import Database
from scoring.assessments.rescore_worker import RescoreWorker
from scoring.engine.runtimes import Runtimes
from scoring.profile import ScoringProfile
from scoring.settings import ScoringSettings


@dataclass
class ScoringEngine:
    """What every request and job of the process shares."""

    settings: ScoringSettings
    profile: ScoringProfile
    runtimes: Runtimes
    db: Database
    wake: Callable[[int], None]
    jobs: set[asyncio.Task[None]] = field(default_factory=set)
    rescore_worker: RescoreWorker | None = None  # PostgreSQL: builds a city's rescore (started with the service)

    def start_rescore_worker(self) -> None:
        if self.db.is_postgres and self.settings.rescore_worker_process and self.rescore_worker is None:
            self.rescore_worker = RescoreWorker()
            self.rescore_worker.start()

    def spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)
        return task

    async def wait_jobs(self, timeout: float | None = None) -> None:
        if self.jobs:
            await asyncio.wait(set(self.jobs), timeout=timeout)

    async def stop_jobs(self, grace: float = 20.0) -> None:
        await self.wait_jobs(grace)
        for task in list(self.jobs):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.rescore_worker is not None:
            await self.rescore_worker.stop()
            self.rescore_worker = None


def get_engine(request: Request) -> ScoringEngine:
    return request.app.state.engine


Engine = Annotated[ScoringEngine, Depends(get_engine)]
# Officials read assessments of their jurisdiction; auditors read everything.
Reader = Annotated[Caller, Depends(require_roles(Role.city_admin, Role.district_officer, Role.town_worker,
                                                 Role.village_worker, Role.auditor))]
# Officers who may record a reviewed level.
Reviewer = Annotated[Caller, Depends(require_roles(Role.city_admin, Role.district_officer, Role.town_worker))]
# City administrators configure the model.
Admin = Annotated[Caller, Depends(require_roles(Role.city_admin))]
