"""The compiled models a process holds, by version, and which one is active.

A stored model version never changes, so each is compiled once per process. The active version
is read from the database in every transaction that scores (the ``scoring_state`` row, held
shared), so every replica follows an activation as soon as it commits.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from scoring.engine.runtime import ModelRuntime
from scoring.models import repository as models
from scoring.rules.validation import RulesContext, compile_model


class NoActiveModel(RuntimeError):
    """No model has been activated yet."""


class Runtimes:
    def __init__(self, ctx: RulesContext) -> None:
        self.ctx = ctx
        self._by_version: dict[str, ModelRuntime] = {}

    def put(self, runtime: ModelRuntime) -> ModelRuntime:
        self._by_version[runtime.version] = runtime
        return runtime

    async def get(self, session: AsyncSession, version: str) -> ModelRuntime | None:
        found = self._by_version.get(version)
        if found is not None:
            return found
        stored = await models.get(session, version)
        if stored is None:
            return None
        model, _report = compile_model(stored.document, self.ctx)
        if model is None:
            return None
        return self.put(ModelRuntime(model, self.ctx))

    async def active(self, session: AsyncSession, *, lock: str | None = None) -> ModelRuntime:
        version = await models.active_version(session, lock=lock)
        if version is None:
            raise NoActiveModel("no scoring model is active")
        runtime = await self.get(session, version)
        if runtime is None:
            raise NoActiveModel(f"the active model {version} cannot be compiled")
        return runtime
