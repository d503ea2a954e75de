"""Opaque keyset cursors: ``limit`` (default 20, max 100) and ``cursor`` from the previous page."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from servicekit.errors import BadRequest

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; absent on the last")


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The cursor is not one this API handed out.") from exc
    if not isinstance(values, list):
        raise BadRequest("The cursor is not one this API handed out.")
    return values


class PageParams(BaseModel):
    limit: int
    after: list[Any] | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="Opaque cursor from `next_cursor`")] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


Paging = Annotated[PageParams, Depends(page_params)]


def paginate(rows: list[Any], params: PageParams, key: Any) -> tuple[list[Any], str | None]:
    """Given up to ``limit + 1`` rows fetched in key order, the page and the next cursor."""
    page = rows[: params.limit]
    next_cursor = encode_cursor(list(key(page[-1]))) if len(rows) > params.limit and page else None
    return page, next_cursor
