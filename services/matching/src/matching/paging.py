"""Reading the keyset cursors this service hands out: a cursor that does not fit is a 400, never
a 500 (cursors are opaque to clients, but they can still send anything)."""

from __future__ import annotations

from datetime import datetime

from servicekit.errors import BadRequest
from servicekit.pagination import PageParams

_BAD = "The cursor is not one this API handed out."


def after_time(paging: PageParams) -> tuple[datetime, str] | None:
    """A (timestamp, id) cursor: lists ordered newest first."""
    if not paging.after:
        return None
    try:
        at, last = paging.after
        return datetime.fromisoformat(at), str(last)
    except (TypeError, ValueError):
        raise BadRequest(_BAD) from None


def after_key(paging: PageParams) -> str | None:
    """A single-key cursor: lists ordered by code or id."""
    if not paging.after:
        return None
    if len(paging.after) != 1 or not isinstance(paging.after[0], str):
        raise BadRequest(_BAD)
    return paging.after[0]


def after_number(paging: PageParams) -> int | None:
    if not paging.after:
        return None
    if len(paging.after) != 1 or not isinstance(paging.after[0], int) or isinstance(paging.after[0], bool):
        raise BadRequest(_BAD)
    return paging.after[0]
