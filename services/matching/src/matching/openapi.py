"""The OpenAPI document: statuses every operation can answer with, whatever the handler does.

Every /api/v1 operation checks a token (401) and may get a malformed request (400: a cursor, an
Idempotency-Key, JSON); operations with a body may get one too large (413) or of another type
(415) from the request guard. Handlers declare their own statuses with ``problem_responses``;
these are added here once. (A candidate for servicekit's app factory: it is the same everywhere.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from servicekit.errors import BadRequest, PayloadTooLarge, ProblemError, Unauthorized, UnsupportedMediaType

EVERYWHERE: tuple[type[ProblemError], ...] = (BadRequest, Unauthorized)
WITH_BODY: tuple[type[ProblemError], ...] = (PayloadTooLarge, UnsupportedMediaType)


def _entry(cls: type[ProblemError]) -> dict[str, Any]:
    return {"description": cls.title,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def complete(app: FastAPI) -> None:
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_completed", False):
            return app.openapi_schema  # type: ignore[return-value]
        schema = build()
        for path, ops in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for op in ops.values():
                if not isinstance(op, dict):
                    continue
                extra = EVERYWHERE + (WITH_BODY if "requestBody" in op else ())
                for cls in extra:
                    op.setdefault("responses", {}).setdefault(str(cls.status), _entry(cls))
        app.state.openapi_completed = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
