"""The problems each kind of route can answer with, so every emitted status is declared.

A route adds the groups that apply to it; the OpenAPI test checks the declarations against the
route's shape and against every status the test suite saw it answer.
"""

from __future__ import annotations

from typing import Any

from servicekit.errors import (
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, PreconditionRequired, ProblemError,
    ServiceUnavailable, TooManyRequests, Unauthorized, Unprocessable, UnsupportedMediaType, problem_responses,
)

AUTH = (Unauthorized, Forbidden)
ONE = (NotFound, Unprocessable)  # an id in the path: unknown or out of jurisdiction, or malformed
LIST = (BadRequest, Unprocessable)  # a cursor that is not ours, bad filters
BODY = (PayloadTooLarge, UnsupportedMediaType, Unprocessable)
IDEMPOTENT = (BadRequest, Unprocessable)  # a malformed key, a key reused with another body
IF_MATCH = (PreconditionFailed, PreconditionRequired)
CONFLICT = (Conflict,)
LIMITED = (TooManyRequests,)
# The database was lost, or aborted the work for a concurrent transaction's (a department's batch
# and a worker's change meeting on the same household): nothing of it was applied; send it again.
BUSY = (ServiceUnavailable,)


def problems(*groups: tuple[type[ProblemError], ...], extra: dict[int | str, Any] | None = None) -> dict[int | str, Any]:
    classes: list[type[ProblemError]] = []
    for group in (AUTH, *groups):
        classes += [c for c in group if c not in classes]
    return problem_responses(*classes) | (extra or {})


NEEDS_REVIEW = {202: {"description": "Accepted for a city-level check (reconciliation); nothing else changed yet"}}
