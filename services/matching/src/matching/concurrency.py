"""If-Match on state changes: optional (the state machine already refuses a stale transition),
but honoured when sent, so a client that read a version can insist on it."""

from __future__ import annotations

from fastapi import Request

from servicekit.concurrency import check_version, expected_version


def check_if_match(request: Request, actual: int) -> None:
    if request.headers.get("if-match"):
        check_version(expected_version(request), actual)
