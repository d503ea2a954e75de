"""``Idempotency-Key``: a retried create or transition never happens twice.

The key is claimed in the request's own transaction (an insert that waits on a concurrent
duplicate), the response is stored in that same transaction, and a retry with the same key and
body gets the stored response back. The same key with a different body is a client error (422).
A request that fails rolls back and releases its key.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import CurrentCaller
from servicekit.db import dialect_insert, get_session
from servicekit.errors import BadRequest, Unprocessable
from servicekit.tables import IdempotencyKey, utcnow

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
REPLAY_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("content-type", "location", "etag")


class IdempotentReplay(Exception):
    """Raised to answer with the stored response; the route rolls back and sends it."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


class IdempotencyClaim:
    def __init__(self, caller: str, key: str) -> None:
        self.caller = caller
        self.key = key

    async def store(self, session: AsyncSession, response: Response) -> None:
        headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.caller == self.caller, IdempotencyKey.key == self.key)
            .values(
                status_code=response.status_code,
                response_body=bytes(response.body).decode("utf-8"),
                response_headers=headers,
            )
        )


# Declared on every operation that takes it, with its form (checked here: a key of another form is
# a 400 that says which form, not the 422 of a request field).
KeyHeader = Annotated[str | None, Header(
    alias=HEADER, json_schema_extra={"pattern": KEY_PATTERN.pattern},
    description="A key of your own for this request (8 to 128 letters, digits and . _ : -). Sent again with "
                "the same body, the request is not done twice: the first answer comes back, marked "
                f"{REPLAY_HEADER}: true. The same key with another body is refused (422).")]


# ``openapi_extra`` of an operation whose dependency refuses a request without a key: the document
# then declares the header required there (the kit's OpenAPI turns the mark into that).
KEY_REQUIRED_MARK = "x-idempotency-key-required"
KEY_REQUIRED = {KEY_REQUIRED_MARK: True}


async def idempotency(request: Request, caller: CurrentCaller, key: KeyHeader = None) -> IdempotencyClaim | None:
    if key is None:
        return None
    if not KEY_PATTERN.match(key):
        raise BadRequest("Idempotency-Key must be 8 to 128 characters of letters, digits and . _ : -")
    session = get_session(request)
    body = await request.body()
    digest = hashlib.sha256(b"\n".join([request.method.encode(), request.url.path.encode(), body])).hexdigest()
    who = f"{caller.role}:{caller.subject}"
    values = {
        "caller": who, "key": key, "method": request.method, "path": request.url.path[:512],
        "request_hash": digest, "status_code": 0, "response_body": "", "response_headers": {},
        "created_at": utcnow(),
    }
    insert_fn = dialect_insert(session)
    # On PostgreSQL a concurrent duplicate waits here until the first transaction ends.
    claimed = await session.execute(
        insert_fn(IdempotencyKey).values(**values).on_conflict_do_nothing().returning(IdempotencyKey.key)
    )
    if claimed.first() is not None:
        claim = IdempotencyClaim(who, key)
        request.state.idempotency = claim
        return claim
    stored = (
        await session.execute(select(IdempotencyKey).where(IdempotencyKey.caller == who, IdempotencyKey.key == key))
    ).scalar_one()
    if stored.request_hash != digest:
        raise Unprocessable("This Idempotency-Key was already used with a different request.")
    headers = dict(stored.response_headers)
    headers[REPLAY_HEADER] = "true"
    media_type = headers.pop("content-type", "application/json")
    raise IdempotentReplay(
        Response(content=stored.response_body, status_code=stored.status_code, headers=headers, media_type=media_type)
    )


Idempotency = Annotated[IdempotencyClaim | None, Depends(idempotency)]

__all__ = ["KEY_REQUIRED", "KEY_REQUIRED_MARK", "Idempotency", "IdempotencyClaim", "IdempotentReplay", "idempotency", "json"]
