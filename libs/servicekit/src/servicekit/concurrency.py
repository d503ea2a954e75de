"""Optimistic concurrency: mutable resources carry an ``ETag``; writes must send ``If-Match``.

A missing ``If-Match`` is 428, a stale one 412. Repositories load the row for update before
comparing, so of two writers holding the same version exactly one wins.
"""

from __future__ import annotations

import re

from fastapi import Request, Response

from servicekit.errors import PreconditionFailed, PreconditionRequired


# An entity tag this API hands out: "v" and the version's digits (ASCII; a version fits 18).
_VERSION_TAG = re.compile(r"v([0-9]{1,18})", re.ASCII)


def etag(version: int) -> str:
    return f'"v{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def expected_version(request: Request) -> int:
    """The version the client last saw, from ``If-Match``; 428 when absent."""
    value = request.headers.get("if-match")
    if not value:
        raise PreconditionRequired("Send If-Match with the ETag you last read, so no change is lost.")
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    found = _VERSION_TAG.fullmatch(value.strip('"'))
    if found is None:  # not one of this API's tags (other digits than ASCII's, too long): no version has it
        raise PreconditionFailed("If-Match does not match the current version of this resource.")
    return int(found.group(1))


def check_version(expected: int, actual: int) -> None:
    if expected != actual:
        raise PreconditionFailed("Someone changed this resource since you read it; read it again and retry.")
